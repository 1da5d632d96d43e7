"""Load and save graphs by file suffix: ``.sir`` text IR, ``.net``/``.h5``/``.hdf5`` netlists.

Both readers refuse anything but a regular file (a FIFO, device or directory) with a
:class:`~slayerc.errors.SlayerError` naming it; both writers are atomic and all-or-nothing and
never replace a device, FIFO or symlink (see :mod:`slayerc.ir.fileio`).
"""

from __future__ import annotations

import importlib
import os
from pathlib import Path
from typing import Any

from slayerc.errors import BackendError
from slayerc.ir import serialize
from slayerc.ir.core import Graph

NETLIST_SUFFIXES = (".net", ".h5", ".hdf5")
SUFFIXES = (".sir", *NETLIST_SUFFIXES)


def _hdf5() -> Any:
    return importlib.import_module("slayerc.backends.hdf5")


def _suffix(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise BackendError(f"{path}: unknown file type '{suffix or '(none)'}'; "
                           f"use one of {', '.join(SUFFIXES)}")
    return suffix


def load(path: str | os.PathLike, **options: Any) -> Graph:
    """Read a graph from a ``.sir`` file or an hdf5 netlist (``options`` go to the reader)."""
    path = Path(path)
    if _suffix(path) == ".sir":
        return serialize.load(path)
    return _hdf5().read(path, **options)  # refuses a missing or non-regular file


def save(g: Graph, path: str | os.PathLike, target: str = "loihi2") -> None:
    """Write a graph as ``.sir`` text or as an hdf5 netlist for ``target``."""
    path = Path(path)
    if _suffix(path) == ".sir":
        serialize.save(g, path)
        return
    _hdf5().write(g, path, target=target)
