"""Reading and writing ``.sir`` files with their ``.npz`` side file of large parameters.

Writes are atomic and all-or-nothing (:mod:`slayerc.ir.fileio`): the side file and the text go
to temporaries in their folder and are renamed into place only when both are written, so a
failed write leaves neither.  The side file is a plain ``.npz`` whose bytes depend only on the
graph (members sorted, fixed timestamps).  Reading refuses non-regular files and checks every
array size the side file declares against its real size and the machine's memory first.
"""

from __future__ import annotations

import math
import os
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np

from slayerc.errors import ParseError
from slayerc.ir.core import Graph
from slayerc.ir.fileio import (
    atomic_write,
    atomic_write_many,
    memory_limit,
    open_regular,
    paused_gc,
)
from slayerc.ir.parser import parse, side_file_at
from slayerc.ir.printer import INLINE_LIMIT, external_params, print_graph

__all__ = ["atomic_write", "load", "save"]  # atomic_write: kept here for older callers

#: Fixed member timestamp, so equal graphs give equal bytes.
_EPOCH = (1980, 1, 1, 0, 0, 0)


def _side_path(path: Path, name: str | None = None) -> Path:
    """The side file ``name`` next to the real ``.sir`` file (a symlink is followed); by default
    the real file's name with suffix ``.npz``."""
    real = Path(os.path.realpath(path))
    return real.with_suffix(".npz") if name is None else real.parent / name


def save(g: Graph, path: str | os.PathLike, inline_limit: float = INLINE_LIMIT) -> None:
    """Write ``g`` to ``path`` (``.sir``), large parameters to ``path`` with suffix ``.npz``."""
    path = Path(path)
    big = external_params(g, inline_limit)
    side = _side_path(path)
    text = print_graph(g, inline_limit, params_file=side.name if big else None)
    outputs: list[tuple[Path, Callable[[str], None]]] = []
    if big:
        outputs.append((side, lambda tmp: _write_npz(tmp, big)))
    outputs.append((path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8")))
    atomic_write_many(outputs)


def _write_npz(tmp: str, arrays: dict[str, np.ndarray]) -> None:
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_STORED, allowZip64=True) as zf:
        for name in sorted(arrays):
            info = zipfile.ZipInfo(f"{name}.npy", date_time=_EPOCH)
            info.external_attr = 0o644 << 16
            with zf.open(info, "w", force_zip64=True) as f:
                np.lib.format.write_array(f, np.asanyarray(arrays[name]), allow_pickle=False)


def load(path: str | os.PathLike) -> Graph:
    """Read a ``.sir`` file and, when its header names one, its side file of parameters."""
    path = Path(path)
    with open_regular(path, ".sir file") as f:
        data = f.read()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ParseError("not a text file (is it an hdf5 netlist? use a .net suffix)",
                         str(path), 0, 0) from e
    side = side_file_at(text, str(path))
    params = None
    if side is not None:
        name, line, col = side
        params = _read_side(_side_path(path, name), lambda m: ParseError(m, str(path), line, col))
    with paused_gc():
        return parse(text, params=params, filename=str(path))


_ZIP_ERRORS = (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError, KeyError,
               NotImplementedError, RuntimeError, OverflowError)


def _read_side(side: Path, error: Callable[[str], ParseError]) -> dict[str, np.ndarray]:
    """Every array of an ``.npz`` side file, each size checked before it is allocated."""
    with open_regular(side, "parameter side file", error) as raw:
        try:
            with zipfile.ZipFile(raw) as zf:
                budget = memory_limit()
                out = {}
                for info in zf.infolist():
                    a = _member(zf, info, budget, side, error)
                    out[info.filename.removesuffix(".npy")] = a
                    budget -= a.nbytes
                return out
        except ParseError:
            raise
        except _ZIP_ERRORS as e:
            raise error(f"cannot read the parameter side file {side}: {e}") from e


def _member(zf: zipfile.ZipFile, info: zipfile.ZipInfo, budget: int, side: Path,
            error: Callable[[str], ParseError]) -> np.ndarray:
    where = f"parameter side file {side}, member {info.filename!r}"
    if not info.filename.endswith(".npy"):
        raise error(f"{where}: not a .npy array (an .npz holds only arrays)")
    with zf.open(info) as m:
        version = np.lib.format.read_magic(m)
        if version not in ((1, 0), (2, 0)):
            raise error(f"{where}: unsupported .npy format version {version}")
        read = np.lib.format.read_array_header_1_0 if version == (1, 0) else \
            np.lib.format.read_array_header_2_0
        shape, fortran, dtype = read(m)
        if dtype.hasobject:
            raise error(f"{where}: holds Python objects; parameters are numeric arrays")
        if any(d < 0 for d in shape):
            raise error(f"{where}: negative dimension in shape {list(shape)}")
        nbytes = math.prod(shape) * dtype.itemsize
        if nbytes > budget:
            raise error(f"{where}: declares {dtype}{list(shape)} ({nbytes:,} bytes), more than "
                        f"the {budget:,} bytes of memory this reader allows; the file is "
                        "corrupt or not meant for this machine")
        held = info.file_size - m.tell()
        if nbytes > held:
            raise error(f"{where}: declares {dtype}{list(shape)} ({nbytes:,} bytes) but "
                        f"holds only {held:,} bytes; the file is truncated or corrupt")
        data = m.read(nbytes)
        if len(data) != nbytes:
            raise error(f"{where}: truncated ({len(data):,} of {nbytes:,} bytes)")
        a = np.frombuffer(data, dtype) if nbytes else np.zeros(0, dtype)
        return np.array(a.reshape(shape, order="F" if fortran else "C"))  # writable copy
