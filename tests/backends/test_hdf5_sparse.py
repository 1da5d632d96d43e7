"""Synapses marked ``sparse``: CSR ``weight_csr`` (target slayerc), plain ``weight`` (loihi2)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest
from test_hdf5_util import REFERENCE, assert_same_datasets, dump, input_shape
from test_hdf5_util import del_key as _del
from test_hdf5_util import set_key as _set

from slayerc.backends import hdf5
from slayerc.backends.hdf5 import schema
from slayerc.errors import BackendError
from slayerc.ir import Graph
from slayerc.passes import sparsify_masks


def _ref(name: str) -> Path:
    return [p for p in REFERENCE if p.stem == name][0]


def _marked(g: Graph, names: tuple[str, ...]) -> Graph:
    """``g`` with some synapses marked sparse, their weights thinned to ~1/5 non-zero."""
    params, nodes = dict(g.params), []
    for n in g:
        if n.name in names:
            w = params[n.weight.name]
            params[n.weight.name] = np.where(np.arange(w.size).reshape(w.shape) % 5 == 0, w, 0
                                             ).astype(w.dtype)
            n = n.replace(sparse=True)
        nodes.append(n)
    return g.replace(nodes=nodes, params=params)


def _reloc(g: Graph, path: Path) -> Graph:
    return g.replace(nodes=[n.replace(loc=n.loc.__class__(n.loc.module, str(path))) for n in g])


CASES = [("cuba_dense", ("layer0_syn", "layer1_syn")), ("cuba_conv", ("layer1_syn",)),
         ("cuba_rec", ("layer0_syn",))]


@pytest.mark.parametrize("name,syns", CASES, ids=[c[0] for c in CASES])
def test_sparse_round_trip_and_loihi2_unchanged(name: str, syns: tuple[str, ...],
                                                tmp_path: Path) -> None:
    ref = _ref(name)
    g = hdf5.read(ref, input_shape=input_shape(ref))
    sg = _marked(g, syns)
    dense = sg.replace(nodes=[n.replace(sparse=False) if n.name in syns else n for n in sg])

    out = tmp_path / "sparse.net"
    hdf5.write(sg, out, target="slayerc")
    back = hdf5.read(out, input_shape=input_shape(ref))
    assert back == _reloc(sg, out)
    assert all(back[s].sparse for s in syns)
    d = dump(out)
    for s in syns:
        k = g[s].loc.module.split("/")[1]
        assert f"{k}/weight" not in d
        assert [d[f"{k}/weight_csr/{key}"][0] for key in ("data", "indices", "indptr", "shape")
                ] == ["<f4", "<i8", "<i8", "<i8"]

    hdf5.write(sg, tmp_path / "s2.net")
    hdf5.write(dense, tmp_path / "d2.net")
    assert_same_datasets(tmp_path / "s2.net", tmp_path / "d2.net")
    hdf5.write(dense, tmp_path / "d.net", target="slayerc")
    assert hdf5.read(tmp_path / "d.net", input_shape=input_shape(ref)) == _reloc(
        dense, tmp_path / "d.net")


def test_sparsify_masks_then_slayerc_file_keeps_the_mark(tmp_path: Path) -> None:
    g = _marked(hdf5.read(_ref("cuba_dense")), ("layer0_syn",))
    g = g.replace(nodes=[n.replace(sparse=False) if n.name == "layer0_syn" else n for n in g])
    h = sparsify_masks.run(g, sparsify_masks.Options(threshold=0.3))
    assert h["layer0_syn"].sparse and not h["layer1_syn"].sparse
    hdf5.write(h, tmp_path / "a.net", target="slayerc")
    back = hdf5.read(tmp_path / "a.net")
    assert back["layer0_syn"].sparse
    assert all(np.array_equal(back.params[k], h.params[k]) for k in h.params)


def test_all_zero_sparse_weight(tmp_path: Path) -> None:
    g = hdf5.read(_ref("cuba_dense"))
    w = g.params["layer1.weight"]
    g = g.replace(params={**g.params, "layer1.weight": np.zeros_like(w)},
                  nodes=[n.replace(sparse=True) if n.name == "layer1_syn" else n for n in g])
    hdf5.write(g, tmp_path / "z.net", target="slayerc")
    assert hdf5.read(tmp_path / "z.net") == _reloc(g, tmp_path / "z.net")


def _sparse_file(tmp_path: Path) -> Path:
    g = _marked(hdf5.read(_ref("cuba_dense")), ("layer0_syn",))
    path = tmp_path / "s.net"
    hdf5.write(g, path, target="slayerc")
    return path


C = "layer/0/weight_csr"
BAD = [
    (_del(f"{C}/data"), "key 'weight_csr/data': missing"),
    (_set(C, np.int64(1)), "key 'weight_csr': expected a group"),
    (_set(f"{C}/shape", np.array([24], np.int64)),
     r"key 'weight_csr/shape': expected integers of shape \[2\]"),
    (_set(f"{C}/shape", np.array([24, 0], np.int64)), "key 'weight_csr/shape': values"),
    (_set(f"{C}/data", np.ones((2, 2), np.float32)), "key 'weight_csr/data': expected a 1-d"),
    (lambda f: f[f"{C}/data"].__setitem__(0, 0.5), "key 'weight_csr/data': holds fractional"),
    (lambda f: f[f"{C}/indptr"].__setitem__(-1, 0), "key 'weight_csr/indptr'"),
    (lambda f: f[f"{C}/indptr"].__setitem__(0, 1), "key 'weight_csr/indptr'"),
    (_set(f"{C}/indptr", np.zeros(3, np.int64)),
     r"key 'weight_csr/indptr': expected integers of shape"),
    (lambda f: f[f"{C}/indices"].__setitem__(0, 10 ** 6),
     "key 'weight_csr/indices': values .* outside"),
    (lambda f: f[f"{C}/indices"].__setitem__(1, f[f"{C}/indices"][0]),
     "key 'weight_csr/indices': must increase strictly within each row"),
    (lambda f: f.copy(f["layer/1/weight"], "layer/0/weight"),
     "key 'weight_csr': a layer stores either weight or weight_csr"),
    (_set(f"{C}/shape", np.array([16, 24], np.int64)),  # rows and indptr disagree
     r"key 'weight_csr/indptr': expected integers of shape \[17\]"),
]


@pytest.mark.parametrize("change,message", BAD, ids=[str(i) for i in range(len(BAD))])
def test_malformed_csr_names_file_layer_and_key(tmp_path: Path, change: Any,
                                                message: str) -> None:
    path = _sparse_file(tmp_path)
    with h5py.File(path, "r+") as f:
        change(f)
    with pytest.raises(BackendError, match=rf"^{re.escape(str(path))}: layer/0: {message}"):
        hdf5.read(path)


def test_csr_on_a_pool_layer_is_refused(tmp_path: Path) -> None:
    ref = _ref("cuba_conv_pool")
    with h5py.File(ref, "r") as f:
        pools = [k for k in f["layer"] if f[f"layer/{k}/type"][()][0] == b"pool"]
    path = tmp_path / "p.net"
    path.write_bytes(ref.read_bytes())
    k = pools[0]
    with h5py.File(path, "r+") as f:
        w = f[f"layer/{k}/weight"][()]
        del f[f"layer/{k}/weight"]
        for key, v in schema.to_csr(w).items():
            f[f"layer/{k}/weight_csr/{key}"] = v
    with pytest.raises(BackendError, match=rf"layer/{k}: key 'weight_csr': only"):
        hdf5.read(path, input_shape=input_shape(ref))


# ------------------------------------------------------------------------- format version


def _version(path: Path) -> int | None:
    with h5py.File(path, "r") as f:
        return int(f["format_version"][()]) if "format_version" in f else None


def test_csr_files_carry_version_2_and_loihi2_files_stay_at_1(tmp_path: Path) -> None:
    g = _marked(hdf5.read(_ref("cuba_dense")), ("layer0_syn",))
    hdf5.write(g, tmp_path / "csr.net", target="slayerc")
    hdf5.write(g, tmp_path / "l2.net")  # loihi2: plain weights, what netx (and old slayerc) read
    plain = g.replace(nodes=[n.replace(sparse=False) if n.name == "layer0_syn" else n for n in g])
    hdf5.write(plain, tmp_path / "plain.net", target="slayerc")
    assert _version(tmp_path / "csr.net") == hdf5.FORMAT_VERSION == schema.CSR_VERSION == 2
    assert _version(tmp_path / "l2.net") == _version(tmp_path / "plain.net") == 1
    assert_same_datasets(tmp_path / "l2.net", tmp_path / "plain.net")


def test_a_reader_before_csr_refuses_a_csr_file(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    path = _sparse_file(tmp_path)
    hdf5.write(hdf5.read(_ref("cuba_dense")), tmp_path / "l2.net")
    monkeypatch.setattr(schema, "FORMAT_VERSION", 1)  # what slayerc before the bump checks
    with pytest.raises(BackendError, match=rf"^{re.escape(str(path))}: key 'format_version': 2 "
                       r"is newer than this slayerc reads \(versions up to 1\); upgrade"):
        hdf5.read(path)
    hdf5.read(tmp_path / "l2.net")  # loihi2 output is unaffected


@pytest.mark.parametrize("version", [None, 0, 1])
def test_older_versions_still_read(tmp_path: Path, version: int | None) -> None:
    # version 1 (and earlier, or none: lava-dl's files) with plain weights, and a version-1 file
    # holding CSR layers (written before the bump) all read the same graph
    for path in (tmp_path / "plain.net", _sparse_file(tmp_path)):
        if path.name == "plain.net":
            hdf5.write(hdf5.read(_ref("cuba_dense")), path, target="slayerc")
        want = hdf5.read(path)
        with h5py.File(path, "r+") as f:
            del f["format_version"]
            if version is not None:
                f["format_version"] = np.int64(version)
        assert hdf5.read(path) == want


def test_a_newer_version_is_refused(tmp_path: Path) -> None:
    path = _sparse_file(tmp_path)
    with h5py.File(path, "r+") as f:
        f["format_version"][()] = np.int64(3)
    with pytest.raises(BackendError, match=rf"^{re.escape(str(path))}: key 'format_version': 3 "
                       r"is newer than this slayerc reads \(versions up to 2\); upgrade "
                       "slayerc"):
        hdf5.read(path)
