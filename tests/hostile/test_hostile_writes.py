"""Outputs are written all or nothing, and never replace what is not ours.

A failed write leaves no file (no ``.npz`` without its ``.sir``, no temporary); a symlink is
written through to its target; a device or FIFO is written through, never replaced by a regular
file; a FIFO nobody reads, a missing folder or a directory in the way is a clear BackendError.
"""

from __future__ import annotations

import os
import stat
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from hostile_limits import time_limit

from slayerc.backends.files import load, save
from slayerc.errors import BackendError
from slayerc.ir import serialize
from slayerc.ir.core import Graph, GraphBuilder
from slayerc.ir.ops import Cuba, Dense, Input, Output, Shift


def _graph(n_in: int = 32) -> Graph:
    """A one-layer netlist-shaped graph whose weight goes to the .npz side file."""
    b = GraphBuilder("g", facts=())
    x = b.add(Input, "inp", shape=(n_in,), dtype="f32")
    s = b.add(Shift, "layer1_shift", [x], steps=1)
    w = np.arange(4 * n_in, dtype=np.float32).reshape(4, n_in) % 7 / 32
    fc = b.add(Dense, "layer1_syn", [s], weight=b.param("layer1.weight", w))
    n = b.add(Cuba, "layer1", [fc], threshold=1.25, current_decay=0.25, voltage_decay=0.5)
    b.add(Output, "out", [n])
    return b.build()


def _files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_failed_sir_write_leaves_neither_file(tmp_path: Path, monkeypatch) -> None:
    def full(self, *args, **kwargs):
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(Path, "write_text", full)
    with time_limit(10), pytest.raises(BackendError, match=r"g\.sir: cannot write: No space"):
        save(_graph(), tmp_path / "g.sir")
    assert _files(tmp_path) == []


def test_failed_npz_write_keeps_old_files(tmp_path: Path, monkeypatch) -> None:
    save(_graph(), tmp_path / "g.sir")
    before = {p: (tmp_path / p).read_bytes() for p in _files(tmp_path)}
    assert sorted(before) == ["g.npz", "g.sir"]

    def boom(tmp, arrays):
        Path(tmp).write_bytes(b"partial")
        raise MemoryError
    monkeypatch.setattr(serialize, "_write_npz", boom)
    with time_limit(10), pytest.raises(MemoryError):
        save(_graph(8), tmp_path / "g.sir")
    assert {p: (tmp_path / p).read_bytes() for p in _files(tmp_path)} == before


@pytest.mark.parametrize("suffix", [".sir", ".net"])
def test_symlink_output_is_written_through(tmp_path: Path, suffix: str) -> None:
    real = tmp_path / "real"
    real.mkdir()
    (real / f"target{suffix}").write_bytes(b"old")
    link = tmp_path / f"link{suffix}"
    link.symlink_to(real / f"target{suffix}")
    g = _graph()
    with time_limit(20):
        save(g, link)
        assert link.is_symlink() and len(load(link)) >= len(g) - 1
    assert (real / f"target{suffix}").read_bytes() != b"old"
    assert os.readlink(link) == str(real / f"target{suffix}")
    want = ["target.npz", "target.sir"] if suffix == ".sir" else ["target.net"]
    assert _files(real) == want and _files(tmp_path) == [f"link{suffix}", "real"]


@pytest.mark.parametrize("suffix", [".sir", ".net"])
def test_device_output_is_written_through_not_replaced(tmp_path: Path, suffix: str) -> None:
    link = tmp_path / f"null{suffix}"
    link.symlink_to("/dev/null")
    with time_limit(20):
        save(_graph(2), link)  # 2 inputs: everything inline, no side file next to /dev/null
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)
    assert link.is_symlink() and _files(tmp_path) == [f"null{suffix}"]


def test_fifo_output_is_written_through(tmp_path: Path) -> None:
    (tmp_path / "ref.net").write_bytes(b"")
    save(_graph(), tmp_path / "ref.net")
    fifo = tmp_path / "out.net"
    os.mkfifo(fifo)
    fd = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)  # a reader exists before the write
    os.set_blocking(fd, True)
    got = bytearray()

    def read() -> None:  # until EOF after some data (no writer yet reads as EOF too)
        for _ in range(2000):
            chunk = os.read(fd, 1 << 16)
            if not chunk and got:
                return
            got.extend(chunk)
            if not chunk:
                time.sleep(0.01)
    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    with time_limit(20):
        save(_graph(), fifo)
    reader.join(20)
    os.close(fd)
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)
    assert bytes(got) == (tmp_path / "ref.net").read_bytes()


def test_fifo_without_reader_is_refused_at_once(tmp_path: Path) -> None:
    fifo = tmp_path / "out.net"
    os.mkfifo(fifo)
    with time_limit(10), pytest.raises(BackendError, match="no process is reading the FIFO"):
        save(_graph(), fifo)
    assert stat.S_ISFIFO(os.stat(fifo).st_mode) and _files(tmp_path) == ["out.net"]


@pytest.mark.parametrize(("make", "path", "message"), [
    (lambda d: None, "missing/g.net", r"missing/g\.net: cannot write: the folder .*missing does "
                                       "not exist; create it first"),
    (lambda d: None, "missing/g.sir", "does not exist; create it first"),
    (lambda d: (d / "g.net").mkdir(), "g.net", r"g\.net: cannot write: it is a directory"),
    (lambda d: (d / "g.sir").mkdir(), "g.sir", r"g\.sir: cannot write: it is a directory"),
    (lambda d: (d / "g.npz").mkdir(), "g.sir", r"g\.npz: cannot write: it is a directory"),
])
def test_bad_output_paths_are_backend_errors(tmp_path: Path, make, path: str,
                                             message: str) -> None:
    make(tmp_path)
    before = _files(tmp_path)
    with time_limit(10), pytest.raises(BackendError, match=message):
        save(_graph(), tmp_path / path)
    assert _files(tmp_path) == before


def test_new_outputs_follow_the_umask(tmp_path: Path) -> None:
    save(_graph(), tmp_path / "g.sir")
    save(_graph(), tmp_path / "g.net")
    mask = os.umask(0)
    os.umask(mask)
    for name in ("g.sir", "g.npz", "g.net"):
        assert stat.S_IMODE(os.stat(tmp_path / name).st_mode) == 0o666 & ~mask, name


def test_one_call_never_writes_a_path_twice(tmp_path: Path) -> None:
    from slayerc.ir.fileio import atomic_write_many
    (tmp_path / "a").write_text("x")
    (tmp_path / "b").symlink_to(tmp_path / "a")
    with pytest.raises(BackendError, match="written twice"):
        atomic_write_many([(tmp_path / "a", lambda t: None), (tmp_path / "b", lambda t: None)])
    assert (tmp_path / "a").read_text() == "x"
