"""Careful file access shared by every reader and writer (``.sir``, ``.npz``, ``.net``).

Reading: :func:`open_regular` refuses anything but a regular file (a FIFO, a device, a
directory) *before* reading a byte, so a careless path can never block the compiler.

Writing: :func:`atomic_write` and :func:`atomic_write_many` write each output to a temporary
file in the target's folder and rename it into place only after every output of the call was
written, so a failed write leaves no file behind (and never a ``.npz`` without its ``.sir``).
The target is resolved first:

* a symlink is followed to its final target, which is replaced (the link stays a link);
* a character device or a FIFO (``/dev/null``, a pipe) is written through, never replaced; a
  FIFO that nobody reads is refused (writing to it would block forever);
* a directory, a block device or a socket is refused, as is a folder that does not exist.

Every failure is a :class:`~slayerc.errors.BackendError` naming the path and saying what to do.
This module lives in ``ir`` because ``.sir`` files are written here and ``ir`` imports nothing
above it; the backends use it too.
"""

from __future__ import annotations

import contextlib
import errno
import gc
import os
import shutil
import stat
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from slayerc.errors import BackendError

__all__ = ["atomic_write", "atomic_write_many", "memory_limit", "open_regular", "paused_gc"]

#: Writer callback: writes the whole file at the temporary path it is given.
Writer = Callable[[str], None]


def _kind(mode: int) -> str:
    for test, name in ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO (named pipe)"),
                       (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
                       (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return name
    return "not a regular file"


def open_regular(path: str | os.PathLike, what: str = "input file",
                 error: type[Exception] = BackendError) -> BinaryIO:
    """Open ``path`` for binary reading; refuse (with ``error``) anything but a regular file.

    The file is opened non-blocking first, so a FIFO without a writer cannot hang the open, and
    the check runs on the opened descriptor (no window between check and use).
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise error(f"{path}: cannot read the {what}: no such file") from None
    except OSError as e:
        raise error(f"{path}: cannot read the {what} ({e.strerror})") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise error(f"{path}: the {what} is {_kind(st.st_mode)}, not a regular file; "
                        "give the path of a file")
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


@contextlib.contextmanager
def paused_gc() -> Iterator[None]:
    """Pause Python's cyclic garbage collector while a reader or writer runs.

    Reading a 10,000-layer netlist creates hundreds of thousands of small objects without
    cycles; the collector would rescan all of them again and again (a third of the time).
    Reference counting still frees everything; the collector resumes afterwards.
    """
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def memory_limit() -> int:
    """Bytes one declared array may take: half the machine's physical memory (4 GiB if unknown).

    Readers compare sizes declared in file headers against this before allocating, so a header
    claiming terabytes is an error that says so instead of a MemoryError.
    """
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2
    except (ValueError, OSError, AttributeError):
        return 4 << 30


# ----------------------------------------------------------------------------------- writing


@dataclass
class _Out:
    """One output: where it goes and how its bytes get there."""

    path: Path  # as given (for messages)
    target: Path  # the file to replace, or the device/FIFO to write through
    through: bool  # write through (device, FIFO) instead of rename
    write: Writer
    tmp: str = ""


def _resolve(path: Path) -> tuple[Path, bool]:
    """(what to write, whether to write through) for an output path; refuse the rest."""
    try:
        st = os.stat(path)  # follows symlinks
    except FileNotFoundError:
        st = None
    except OSError as e:
        raise BackendError(f"{path}: cannot write ({e.strerror})") from None
    if st is not None and (stat.S_ISCHR(st.st_mode) or stat.S_ISFIFO(st.st_mode)):
        return path, True
    if st is not None and not stat.S_ISREG(st.st_mode):
        raise BackendError(f"{path}: cannot write: it is {_kind(st.st_mode)}; give a file path")
    target = Path(os.path.realpath(path))  # a symlink (even dangling) names its final target
    parent = target.parent
    if not parent.is_dir():
        shown = path.parent if str(path.parent) else Path(".")
        raise BackendError(f"{path}: cannot write: the folder {shown} does not exist; create it "
                           "first")
    return target, False


def _open_through(out: _Out) -> BinaryIO:
    """Open a device or FIFO for writing without blocking on a FIFO nobody reads."""
    try:
        fd = os.open(out.target, os.O_WRONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError as e:
        why = "no process is reading the FIFO" if e.errno == errno.ENXIO else e.strerror
        raise BackendError(f"{out.path}: cannot write ({why})") from None
    os.set_blocking(fd, True)
    return os.fdopen(fd, "wb")


def _umask_mode() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def _mkstemp(out: _Out) -> str:
    folder = None if out.through else str(out.target.parent)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{out.target.name}.", suffix=".tmp", dir=folder)
    except OSError as e:
        raise BackendError(f"{out.path}: cannot write in {folder or 'the temporary folder'} "
                           f"({e.strerror})") from None
    os.close(fd)
    if not out.through:
        with contextlib.suppress(OSError):  # mkstemp makes 0600; outputs follow the umask
            mode = os.stat(out.target).st_mode & 0o7777 if out.target.exists() else _umask_mode()
            os.chmod(tmp, mode)
    return tmp


def _commit(out: _Out) -> None:
    if not out.through:
        os.replace(out.tmp, out.target)
        return
    with open(out.tmp, "rb") as src, _open_through(out) as dst:
        shutil.copyfileobj(src, dst, 1 << 20)


@contextlib.contextmanager
def _cleanup(outs: Sequence[_Out]) -> Iterator[None]:
    try:
        yield
    finally:
        for out in outs:
            if out.tmp:
                with contextlib.suppress(OSError):
                    os.unlink(out.tmp)


def atomic_write_many(outputs: Sequence[tuple[str | os.PathLike, Writer]]) -> None:
    """Write several files all or nothing: every ``write(tmp)`` runs before any rename.

    Files are put in place in the order given (put a side file before the file that names it).
    An ``OSError`` from a writer becomes a :class:`BackendError` naming its path; any other
    exception propagates unchanged, after the temporaries are removed.
    """
    outs = [_Out(Path(p), *_resolve(Path(p)), write) for p, write in outputs]
    seen: dict[Path, Path] = {}
    for out in outs:
        if out.target in seen:
            raise BackendError(f"{out.path}: written twice in one command (also as "
                               f"{seen[out.target]}); give each output its own path")
        seen[out.target] = out.path
    with _cleanup(outs):
        for out in outs:
            out.tmp = _mkstemp(out)
            _guard(out, lambda o=out: o.write(o.tmp))
        for out in outs:
            _guard(out, lambda o=out: _commit(o))


def _guard(out: _Out, step: Callable[[], None]) -> None:
    try:
        step()
    except IsADirectoryError:
        raise BackendError(f"{out.path}: cannot write: it is a directory") from None
    except OSError as e:
        raise BackendError(f"{out.path}: cannot write: {e.strerror or e}") from e


def atomic_write(path: str | os.PathLike, write: Writer) -> None:
    """Call ``write(tmp_path)``, then put ``tmp_path`` in place of ``path`` (see the module)."""
    atomic_write_many([(path, write)])
