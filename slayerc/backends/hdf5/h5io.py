"""The only h5py code: an hdf5 file to and from a nested dict of numpy arrays.

Reading turns every h5py/OS failure (not hdf5, truncated, unreadable dataset, links) into a
:class:`BackendError` naming the file and the object.  Writing goes to a temporary file in the
target folder that is renamed into place, so a failed write leaves no half-written netlist.
"""

from __future__ import annotations

import math
import os
from typing import Any

import h5py
import numpy as np

from slayerc.errors import BackendError
from slayerc.ir.fileio import atomic_write, open_regular

#: Refuse datasets larger than this (a corrupt header can claim any size).
MAX_BYTES = 1 << 30
MAX_DEPTH = 8


class Str(str):
    """A value written as a variable-length string dataset (lava-dl's neuron ``type``)."""


class FixedStr(str):
    """A value written as lava-dl's layer ``type``: fixed-length ``S10`` bytes, shape (1,)."""


def load_tree(path: str | os.PathLike) -> dict[str, Any]:
    """Every group of the file as a dict, every dataset as a numpy array.

    Only a regular file is opened (a FIFO or device would block or never end).  The walk uses
    h5py's low-level API: one open and one read per dataset, so a netlist of 100,000 layers
    reads in seconds.
    """
    with open_regular(path, "netlist") as raw:
        try:
            with h5py.File(path, "r", **_in_memory(os.fstat(raw.fileno()).st_size)) as f:
                _small_cache(f.id)
                return _group(f.id, _File(str(path), raw, f), "", 0)
        except BackendError:
            raise
        except Exception as e:  # h5py raises OSError, KeyError, ValueError, RuntimeError, ...
            raise BackendError(f"{path}: not a readable hdf5 netlist ({type(e).__name__}: {e})") \
                from e


#: Files up to this size are read into memory whole (HDF5's core driver): one read instead of
#: a system call per object header and dataset, about a tenth of a deep netlist's read time.
CORE_MAX_BYTES = 256 << 20


#: HDF5's metadata cache limit for our reads and writes.  Each object header is visited once,
#: so a cache only costs: with the library's default (32 MiB, grown on demand) a 10,000-layer
#: netlist's 130,000 headers all stay cached, and reading it took 0.5 GB and 40 % longer.
CACHE_BYTES = 1 << 20


def _small_cache(fid: h5py.h5f.FileID) -> None:
    config = fid.get_mdc_config()
    config.set_initial_size = True
    config.initial_size = config.min_size = min(config.min_size, CACHE_BYTES)
    config.max_size = CACHE_BYTES
    fid.set_mdc_config(config)


def _in_memory(size: int) -> dict[str, Any]:
    return {"driver": "core", "backing_store": False} if size <= CORE_MAX_BYTES else {}


class _File:
    """The open file twice: through h5py and as raw bytes (to vet variable-length strings)."""

    def __init__(self, path: str, raw: Any, f: h5py.File):
        self.path, self.raw = path, raw
        self.size = os.fstat(raw.fileno()).st_size
        self.base = f.userblock_size
        self.addr, self.len = f.id.get_create_plist().get_sizes()
        #: global heap collection address -> {object index: size}, or None when corrupt
        self.heaps: dict[int, dict[int, int] | None] = {}
        #: numpy dtype -> h5py memory type (one per dtype instead of one per dataset)
        self.mtypes: dict[np.dtype, Any] = {}
        #: encoded hdf5 type -> numpy dtype
        self.dtypes: dict[bytes, np.dtype] = {}

    def read(self, offset: int, n: int) -> bytes:
        if offset < 0 or n < 0 or offset + n > self.size:
            return b""
        self.raw.seek(offset)
        return self.raw.read(n)

    def uint(self, offset: int, n: int) -> int | None:
        b = self.read(offset, n)
        return int.from_bytes(b, "little") if len(b) == n else None


def _group(gid: h5py.h5g.GroupID, f: _File, name: str, depth: int) -> dict[str, Any]:
    if depth > MAX_DEPTH:
        raise BackendError(f"{f.path}: {name or '/'}: groups nested deeper than {MAX_DEPTH}")
    links: list[tuple[bytes, int]] = []
    gid.links.iterate(lambda n, info: links.append((n, info.type)), info=True)
    out: dict[str, Any] = {}
    for raw_name, kind in links:
        key = raw_name.decode("utf-8", "replace")
        full = f"{name}/{key}"
        if kind != h5py.h5l.TYPE_HARD:
            raise BackendError(f"{f.path}: {full}: soft and external links are not supported")
        obj = h5py.h5o.open(gid, raw_name)
        if isinstance(obj, h5py.h5g.GroupID):
            out[key] = _group(obj, f, full, depth + 1)
        elif isinstance(obj, h5py.h5d.DatasetID):
            out[key] = _dataset(obj, f, full)
        else:
            raise BackendError(f"{f.path}: {full}: unsupported object (not a group or dataset)")
    return out


def _dataset(ds: h5py.h5d.DatasetID, f: _File, name: str) -> np.ndarray:
    space = ds.get_space()
    if space.get_simple_extent_type() == h5py.h5s.NULL:
        raise BackendError(f"{f.path}: {name}: empty (null) dataset")
    shape, dtype = space.shape, _dtype(ds, f)
    if math.prod(shape) * max(dtype.itemsize, 1) > MAX_BYTES:
        raise BackendError(f"{f.path}: {name}: dataset of shape {list(shape)} is too large")
    if dtype.kind not in "biufSOU":
        raise BackendError(f"{f.path}: {name}: unsupported dataset type {dtype}")
    if dtype.kind == "O" and not _vlen_ok(ds, f, math.prod(shape)):
        # A corrupt heap pointer can send the HDF5 library into an endless loop: vet it first.
        raise BackendError(f"{f.path}: {name}: corrupt variable-length string")
    arr = np.zeros(shape, dtype) if dtype.kind == "O" else np.empty(shape, dtype)
    if arr.size:
        mtype = f.mtypes.get(dtype) if dtype.kind != "O" else None  # (vlen metadata differs)
        if mtype is None:
            mtype = h5py.h5t.py_create(dtype)
            if dtype.kind != "O":
                f.mtypes[dtype] = mtype
        ds.read(h5py.h5s.ALL, h5py.h5s.ALL, arr, mtype)
    return np.asarray(arr[()]) if dtype.kind == "O" and not shape else arr


def _dtype(ds: h5py.h5d.DatasetID, f: _File) -> np.dtype:
    """The dataset's numpy dtype, converted once per distinct hdf5 type (keyed by its encoding:
    a deep netlist has a handful of types, and the conversion costs more than the read)."""
    tid = ds.get_type()
    try:
        key = tid.encode()
    except Exception:  # a type hdf5 cannot serialize: convert (or refuse) it as before
        return tid.dtype
    dtype = f.dtypes.get(key)
    if dtype is None:
        dtype = f.dtypes[key] = tid.dtype
    return dtype


def _vlen_ok(ds: h5py.h5d.DatasetID, f: _File, size: int) -> bool:
    """Every element's (length, heap collection, index) points at an object of that length."""
    if size > 64:
        return False
    offset = ds.get_offset()
    if offset is None:
        return ds.get_create_plist().get_layout() == h5py.h5d.COMPACT  # unvetted, small
    step = 4 + f.addr + 4
    for i in range(size):
        at = f.base + offset + i * step
        length, addr, index = f.uint(at, 4), f.uint(at + 4, f.addr), f.uint(at + 4 + f.addr, 4)
        if length is None or addr is None or index is None:
            return False
        if length and not _heap_object_ok(f, f.base + addr, index, length):
            return False
    return True


def _heap_object_ok(f: _File, at: int, index: int, length: int) -> bool:
    """Whether object ``index`` of the global heap collection at ``at`` holds ``length`` bytes."""
    if at not in f.heaps:
        f.heaps[at] = _heap_objects(f, at)
    objects = f.heaps[at]
    return objects is not None and objects.get(index, -1) >= length


def _heap_objects(f: _File, at: int) -> dict[int, int] | None:
    """Walk the whole global heap collection at ``at`` as HDF5 does: ``{index: size}``.

    HDF5 parses every object of a collection when it loads it and loops forever on an object
    whose size does not move it forward, so every step here must stay inside the collection
    (None: it does not).  Each collection is walked once per file.
    """
    size = f.uint(at + 8, f.len)
    if f.read(at, 5) != b"GCOL\x01" or size is None or not 0 < size <= f.size - at:
        return None
    hdr, objects = 8 + f.len, {}
    pos, end = at + hdr, at + size
    data = f.read(pos, end - pos)
    while pos + hdr <= end:
        rel = pos - at - hdr
        obj = int.from_bytes(data[rel:rel + 2], "little")
        osize = int.from_bytes(data[rel + 8:rel + 8 + f.len], "little")
        need = hdr + (osize + 7) // 8 * 8 if obj else osize
        if need <= 0 or pos + need > end:
            return None
        if obj:
            objects[obj] = osize
        pos += need
    return objects


def dump_tree(path: str | os.PathLike, tree: dict[str, Any]) -> None:
    """Write ``tree`` atomically (:func:`slayerc.ir.fileio.atomic_write`).

    The bytes depend only on ``tree``: no timestamps (h5py's default ``track_times=False`` is
    passed explicitly) and groups in the order given.
    """
    def write(tmp: str) -> None:
        # built in memory, written once at close (the same bytes as writing object by object)
        with h5py.File(tmp, "w", driver="core", backing_store=True, block_size=1 << 20) as f:
            _small_cache(f.id)
            _write_group(f.id, tree)
    atomic_write(path, write)


def write_into(group: Any, tree: dict[str, Any]) -> None:
    """Write ``tree`` into an open h5py group (a block's ``export_hdf5(handle)``), with the
    encodings :func:`dump_tree` uses: ``FixedStr`` as ``S10`` (1,), ``Str`` as a variable-length
    string, everything else as the numpy array it is."""
    _write_group(group.id, tree)


def _write_group(g: h5py.h5g.GroupID, tree: dict[str, Any],
                 cache: dict[Any, Any] | None = None) -> None:
    """The tree through h5py's low-level API (what ``create_dataset`` does, without its
    per-call overhead: a 100,000-layer netlist writes in seconds)."""
    if cache is None:
        dcpl = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
        dcpl.set_obj_track_times(False)  # no timestamps: equal graphs give equal bytes
        cache = {"dcpl": dcpl, "spaces": {}, "mtypes": {}}
    for key, value in tree.items():
        name = key.encode("utf-8")
        if isinstance(value, dict):
            _write_group(h5py.h5g.create(g, name), value, cache)
        elif isinstance(value, FixedStr):
            _write_array(g, name, np.array([value.encode("ascii")], "S10"), cache)
        elif isinstance(value, Str):  # vlen string, as lava-dl writes it
            _write_array(g, name, np.array(str(value), dtype=h5py.string_dtype()), cache)
        else:
            _write_array(g, name, np.asarray(value), cache)


def _write_array(g: h5py.h5g.GroupID, name: bytes, a: np.ndarray, cache: dict[Any, Any]) -> None:
    tid = cache.get(a.dtype)
    if tid is None:
        tid = cache[a.dtype] = h5py.h5t.py_create(a.dtype, logical=True)
    space = cache["spaces"].get(a.shape)  # one per shape: hdf5 copies it into the dataset
    if space is None:  # as create_dataset: rank 0 is a scalar
        space = cache["spaces"][a.shape] = h5py.h5s.create_simple(a.shape)
    ds = h5py.h5d.create(g, name, tid, space, dcpl=cache["dcpl"])
    if not a.size:
        return
    # the memory type write() would make, once per dtype ('O' dtypes compare equal whatever
    # their vlen metadata, so those keep write()'s own)
    mtype = cache["mtypes"].get(a.dtype) if a.dtype.kind != "O" else None
    if mtype is None and a.dtype.kind != "O":
        mtype = cache["mtypes"][a.dtype] = h5py.h5t.py_create(a.dtype)
    ds.write(h5py.h5s.ALL, h5py.h5s.ALL, np.ascontiguousarray(a), mtype)
