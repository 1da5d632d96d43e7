"""Large CPU buffers of the training and inference paths: huge pages, and memory kept for reuse.

A CPU training step of an NMNIST-size conv net allocates and frees about 700 MB of tensors of
tens of megabytes each.  glibc serves every allocation above 32 MiB (and, until its threshold
has adapted, above 128 KiB) with a fresh ``mmap`` and returns it with ``munmap`` when freed, so
each step takes a first-touch page fault per 4 KiB page of every such tensor: measured 179,000
faults and 0.26-0.32 s of kernel time in a 1.05 s step.  :func:`reuse_freed_memory` tells
glibc to keep freed memory in its heap for the next allocation instead (no ``mmap`` for large
blocks, no trimming of the heap top): the same step then takes 3 page faults and 0.80-0.88 s
(``benchmarks/peers.py --net conv``).  Values are unchanged (only where the bytes live moves).

The cost is that a process's resident memory stays at its peak after the tensors are freed,
as with a GPU framework's caching allocator.  slayerc turns this on the first time it
allocates a large CPU buffer (:func:`huge_empty`, every block's forward); set the environment
variable ``SLAYERC_KEEP_FREED_MEMORY=0`` before that to leave the C library's defaults, or call
``reuse_freed_memory(False)`` to go back to them (memory already kept stays kept until freed
again).  Only glibc (Linux) is adjusted; elsewhere nothing changes.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import math
import os

import numpy as np
import torch

_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD, _M_MMAP_MAX = -1, -3, -4
_DEFAULTS = {_M_TRIM_THRESHOLD: 128 * 1024, _M_MMAP_THRESHOLD: 128 * 1024, _M_MMAP_MAX: 65536}
"""glibc's documented defaults (``mallopt(3)``), restored by ``reuse_freed_memory(False)``."""
_KEEP = {_M_TRIM_THRESHOLD: 2**31 - 1, _M_MMAP_MAX: 0}
_STATE = {"asked": False, "on": False}


def _libc() -> ctypes.CDLL | None:
    """The C library when it is glibc (it has ``mallopt`` and ``gnu_get_libc_version``)."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.gnu_get_libc_version  # noqa: B018 - glibc only
        return libc
    except (OSError, AttributeError):
        return None


def reuse_freed_memory(on: bool = True) -> bool:
    """Keep freed memory in the C library's heap for the next allocation (``on``), or restore
    glibc's defaults.  Returns whether the setting is now on (False where the C library is not
    glibc, or where a call failed)."""
    _STATE["asked"] = True
    libc = _libc()
    if libc is None:
        _STATE["on"] = False
        return False
    settings = _KEEP if on else _DEFAULTS
    ok = all(libc.mallopt(ctypes.c_int(key), ctypes.c_int(value)) == 1
             for key, value in settings.items())
    _STATE["on"] = bool(on and ok)
    return _STATE["on"]


def keeping_freed_memory() -> bool:
    """Whether :func:`reuse_freed_memory` is on in this process."""
    return _STATE["on"]


def ensure_default() -> None:
    """Turn :func:`reuse_freed_memory` on the first time slayerc needs large CPU buffers,
    unless ``SLAYERC_KEEP_FREED_MEMORY=0`` or the caller already chose."""
    if _STATE["asked"]:
        return
    if os.environ.get("SLAYERC_KEEP_FREED_MEMORY", "1").strip().lower() in ("0", "false", "no"):
        _STATE["asked"] = True
        return
    reuse_freed_memory(True)


_NP_DTYPES = {torch.float32: np.float32, torch.float64: np.float64}


def huge_empty(shape: tuple[int, ...], dtype: torch.dtype,
               device: torch.device | str = "cpu") -> torch.Tensor:
    """``torch.empty(shape, dtype=dtype, device=device)``; large CPU ones allocated by numpy.

    A training step's traces and gradients are tens of megabytes each, written right after
    allocation.  numpy asks for transparent huge pages for large arrays
    (``madvise(MADV_HUGEPAGE)``, where the kernel allows it), which measured 58 → 45 ms for the
    CUBA forward of a 32×16×17×17×100 input when each buffer was fresh memory (the tensor is
    an ordinary one, except that its storage cannot be resized).  The first large CPU buffer
    also turns :func:`reuse_freed_memory` on (see the module docstring).
    """
    np_dtype = _NP_DTYPES.get(dtype)
    if np_dtype is None or math.prod(shape) < (1 << 20) or torch.device(device).type != "cpu":
        return torch.empty(shape, dtype=dtype, device=device)
    ensure_default()
    return torch.from_numpy(np.empty(shape, dtype=np_dtype))
