"""Helpers shared by the hdf5 backend tests: reference files and a recursive dataset dump."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import h5py
import numpy as np

DATA = Path(__file__).resolve().parent.parent / "data" / "lava-dl"
REFERENCE = sorted(DATA.glob("*.net"))
#: Conv-first netlists have no input layer; their input shape (C, H, W) comes from the manifest.
INPUT_SHAPES = {"cuba_conv": (2, 10, 12), "cuba_conv_pool": (2, 8, 8)}


def input_shape(path: Path) -> tuple[int, ...] | None:
    """The ``input_shape`` to pass to ``read`` for a reference netlist."""
    return INPUT_SHAPES.get(path.stem)


def dump(path: Path, root: str = "layer") -> dict[str, tuple[Any, ...]]:
    """Every dataset under ``root``: (dtype, string info, shape, value) by path."""
    out: dict[str, tuple[Any, ...]] = {}
    with h5py.File(path, "r") as f:
        def visit(name: str, obj: Any) -> None:
            if isinstance(obj, h5py.Dataset):
                info = h5py.check_string_dtype(obj.dtype)
                value = obj[()]
                out[name] = (obj.dtype.str if obj.dtype.kind != "O" else "O",
                             None if info is None else (info.encoding, info.length),
                             obj.shape, value.tolist() if isinstance(value, np.ndarray) else value)
            else:
                out[name] = ("group",)
        f[root].visititems(visit)
    return out


def assert_same_datasets(a: Path, b: Path) -> None:
    """Same keys, dtypes, string kinds, shapes and values under ``layer/``."""
    da, db = dump(a), dump(b)
    assert sorted(da) == sorted(db), (sorted(set(da) ^ set(db)))
    for key in da:
        assert da[key] == db[key], (key, da[key], db[key])


def set_key(key: str, value: Any) -> Callable[[h5py.File], None]:
    """A file edit that (re)writes dataset ``key`` (for corrupting a copy of a netlist)."""
    def change(f: h5py.File) -> None:
        if key in f:
            del f[key]
        f[key] = value
    return change


def del_key(key: str) -> Callable[[h5py.File], None]:
    """A file edit that deletes ``key``."""
    def change(f: h5py.File) -> None:
        del f[key]
    return change
