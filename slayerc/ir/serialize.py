"""Reading and writing ``.sir`` files with their ``.npz`` side file of large parameters.

Writes are atomic: each file goes to a temporary name in the same folder and is renamed into
place, so a failed write never leaves a half-written graph behind.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import zipfile
from pathlib import Path

import numpy as np

from slayerc.errors import ParseError
from slayerc.ir.core import Graph
from slayerc.ir.parser import parse, side_file
from slayerc.ir.printer import INLINE_LIMIT, external_params, print_graph


def atomic_write(path: str | os.PathLike, write) -> None:
    """Call ``write(tmp_path)`` then rename ``tmp_path`` to ``path``; clean up on failure."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent or ".")
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def save(g: Graph, path: str | os.PathLike, inline_limit: float = INLINE_LIMIT) -> None:
    """Write ``g`` to ``path`` (``.sir``), large parameters to ``path`` with suffix ``.npz``."""
    path = Path(path)
    big = external_params(g, inline_limit)
    side = path.with_suffix(".npz")
    text = print_graph(g, inline_limit, params_file=side.name if big else None)
    if big:
        atomic_write(side, lambda tmp: _write_npz(tmp, big))
    atomic_write(path, lambda tmp: Path(tmp).write_text(text))


def _write_npz(tmp: str, arrays: dict[str, np.ndarray]) -> None:
    with open(tmp, "wb") as f:
        np.savez(f, **arrays)


def load(path: str | os.PathLike) -> Graph:
    """Read a ``.sir`` file and, when its header names one, its side file of parameters."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as e:
        raise ParseError(f"cannot read: {e.strerror}", str(path), 0, 0) from e
    except UnicodeDecodeError as e:
        raise ParseError("not a text file (is it an hdf5 netlist? use a .net suffix)",
                         str(path), 0, 0) from e
    side = side_file(text)
    params = None
    if side is not None:
        side_path = path.parent / side
        try:
            with np.load(side_path, allow_pickle=False) as z:
                params = {k: z[k] for k in z.files}
        except (OSError, ValueError, zipfile.BadZipFile) as e:
            raise ParseError(f"cannot read the parameter side file {side_path}: {e}",
                             str(path), 1, 1) from e
    return parse(text, params=params, filename=str(path))
