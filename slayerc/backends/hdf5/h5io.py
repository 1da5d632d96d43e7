"""The only h5py code: an hdf5 file to and from a nested dict of numpy arrays.

Reading turns every h5py/OS failure (not hdf5, truncated, unreadable dataset, links) into a
:class:`BackendError` naming the file and the object.  Writing goes to a temporary file in the
target folder that is renamed into place, so a failed write leaves no half-written netlist.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from slayerc.errors import BackendError

#: Refuse datasets larger than this (a corrupt header can claim any size).
MAX_BYTES = 1 << 30
MAX_DEPTH = 8


class Str(str):
    """A value written as a variable-length string dataset (lava-dl's neuron ``type``)."""


class FixedStr(str):
    """A value written as lava-dl's layer ``type``: fixed-length ``S10`` bytes, shape (1,)."""


def load_tree(path: str | os.PathLike) -> dict[str, Any]:
    """Every group of the file as a dict, every dataset as a numpy array."""
    try:
        with h5py.File(path, "r") as f, open(path, "rb") as raw:
            return _group(f, _File(str(path), raw, f), 0)
    except BackendError:
        raise
    except Exception as e:  # h5py raises OSError, KeyError, ValueError, RuntimeError, ...
        raise BackendError(f"{path}: not a readable hdf5 netlist ({type(e).__name__}: {e})") \
            from e


class _File:
    """The open file twice: through h5py and as raw bytes (to vet variable-length strings)."""

    def __init__(self, path: str, raw: Any, f: h5py.File):
        self.path, self.raw = path, raw
        self.size = os.fstat(raw.fileno()).st_size
        self.base = f.userblock_size
        self.addr, self.len = f.id.get_create_plist().get_sizes()

    def read(self, offset: int, n: int) -> bytes:
        if offset < 0 or n < 0 or offset + n > self.size:
            return b""
        self.raw.seek(offset)
        return self.raw.read(n)

    def uint(self, offset: int, n: int) -> int | None:
        b = self.read(offset, n)
        return int.from_bytes(b, "little") if len(b) == n else None


def _group(g: h5py.Group, path: _File, depth: int) -> dict[str, Any]:
    if depth > MAX_DEPTH:
        raise BackendError(f"{path.path}: {g.name}: groups nested deeper than {MAX_DEPTH}")
    out: dict[str, Any] = {}
    for name in g:
        link = g.get(name, getlink=True)
        if not isinstance(link, h5py.HardLink):
            raise BackendError(f"{path.path}: {g.name}/{name}: soft and external links are not "
                               "supported")
        obj = g[name]
        if isinstance(obj, h5py.Group):
            out[name] = _group(obj, path, depth + 1)
        else:
            out[name] = _dataset(obj, path)
    return out


def _dataset(ds: h5py.Dataset, path: _File) -> np.ndarray:
    if ds.shape is None:
        raise BackendError(f"{path.path}: {ds.name}: empty (null) dataset")
    if ds.size * max(ds.dtype.itemsize, 1) > MAX_BYTES:
        raise BackendError(f"{path.path}: {ds.name}: dataset of shape {list(ds.shape)} is "
                           "too large")
    if ds.dtype.kind not in "biufSOU":
        raise BackendError(f"{path.path}: {ds.name}: unsupported dataset type {ds.dtype}")
    if ds.dtype.kind == "O" and not _vlen_ok(ds, path):
        # A corrupt heap pointer can send the HDF5 library into an endless loop: vet it first.
        raise BackendError(f"{path.path}: {ds.name}: corrupt variable-length string")
    return np.asarray(ds[()])


def _vlen_ok(ds: h5py.Dataset, f: _File) -> bool:
    """Every element's (length, heap collection, index) points at an object of that length."""
    if ds.size > 64:
        return False
    offset = ds.id.get_offset()
    if offset is None:
        return ds.id.get_create_plist().get_layout() == h5py.h5d.COMPACT  # unvetted, small
    step = 4 + f.addr + 4
    for i in range(ds.size):
        at = f.base + offset + i * step
        length, addr, index = f.uint(at, 4), f.uint(at + 4, f.addr), f.uint(at + 4 + f.addr, 4)
        if length is None or addr is None or index is None:
            return False
        if length and not _heap_object_ok(f, f.base + addr, index, length):
            return False
    return True


def _heap_object_ok(f: _File, at: int, index: int, length: int) -> bool:
    """Walk the whole global heap collection at ``at`` as HDF5 does; find object ``index``.

    HDF5 parses every object of a collection when it loads it and loops forever on an object
    whose size does not move it forward, so every step here must stay inside the collection.
    """
    size = f.uint(at + 8, f.len)
    if f.read(at, 5) != b"GCOL\x01" or size is None or not 0 < size <= f.size - at:
        return False
    hdr, found = 8 + f.len, False
    pos, end = at + hdr, at + size
    while pos + hdr <= end:
        obj, osize = f.uint(pos, 2), f.uint(pos + 8, f.len)
        if obj is None or osize is None:
            return False
        need = hdr + (osize + 7) // 8 * 8 if obj else osize
        if need <= 0 or pos + need > end:
            return False
        found |= obj == index and osize >= length
        pos += need
    return found


def dump_tree(path: str | os.PathLike, tree: dict[str, Any]) -> None:
    """Write ``tree`` atomically: a temporary file in the same folder, then ``os.replace``."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp",
                               dir=path.parent if str(path.parent) else ".")
    os.close(fd)
    try:
        with h5py.File(tmp, "w") as f:
            _write_group(f, tree)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _write_group(g: h5py.Group, tree: dict[str, Any]) -> None:
    for key, value in tree.items():
        if isinstance(value, dict):
            _write_group(g.create_group(key), value)
        elif isinstance(value, FixedStr):
            g.create_dataset(key, (1,), "S10", [value.encode("ascii")])
        elif isinstance(value, Str):
            g.create_dataset(key, data=str(value))  # vlen string, as lava-dl writes it
        else:
            g.create_dataset(key, data=value)
