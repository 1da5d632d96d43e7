"""The low-level hdf5 reader and writer reuse types, dataspaces and dtypes across datasets
(one per distinct value, not one per dataset): the trees and the bytes must not show it."""

from __future__ import annotations

import h5py
import numpy as np

from slayerc.backends.hdf5.h5io import FixedStr, Str, dump_tree, load_tree


def _tree() -> dict:
    """Datasets that share dtypes and shapes, and ones that look alike but are not."""
    return {"layer": {str(i): {"type": FixedStr("dense"), "shape": np.array([4, i]),
                               "weight": np.full((2, 2), float(i), np.float32),
                               "w64": np.full((2, 2), i, np.float64), "n": np.int64(i),
                               "flag": np.bool_(i % 2), "empty": np.zeros((0, 3), np.int32),
                               "neuron": {"type": Str("CUBA" if i % 2 else "LIF"),
                                          "names": np.array([b"ab", b"c"], "S2"),
                                          "vlen": np.array(["x", "yy"], h5py.string_dtype())}}
                      for i in range(3)}}


def test_reused_types_and_spaces_keep_dtypes_values_and_bytes(tmp_path):
    dump_tree(tmp_path / "a.net", _tree())
    back = load_tree(tmp_path / "a.net")
    for i in range(3):
        layer = back["layer"][str(i)]
        assert layer["type"].dtype == np.dtype("S10") and layer["type"].tolist() == [b"dense"]
        assert layer["weight"].dtype == np.float32 and (layer["weight"] == i).all()
        assert layer["w64"].dtype == np.float64 and layer["n"].dtype == np.int64
        assert layer["n"].shape == () and layer["n"] == i
        assert layer["flag"].dtype == np.bool_ and bool(layer["flag"]) == bool(i % 2)
        assert layer["empty"].shape == (0, 3) and layer["empty"].dtype == np.int32
        neuron = layer["neuron"]
        assert neuron["type"].shape == () and neuron["type"].item() == (b"CUBA" if i % 2
                                                                        else b"LIF")
        assert neuron["vlen"].dtype.kind == "O" and neuron["vlen"].tolist() == [b"x", b"yy"]
        assert neuron["names"].dtype == np.dtype("S2") and neuron["names"].tolist() == [b"ab", b"c"]
    dump_tree(tmp_path / "b.net", back)
    dump_tree(tmp_path / "c.net", load_tree(tmp_path / "b.net"))
    assert (tmp_path / "b.net").read_bytes() == (tmp_path / "c.net").read_bytes()
