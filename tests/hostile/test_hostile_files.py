"""Non-regular files and lying side files given to the readers: clear errors, never a hang.

A FIFO nobody writes would block ``open()`` forever, so those cases run in a child process that
the test kills after a time limit (each case also has its own alarm there).
"""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

import numpy as np
import pytest
from hostile_limits import CHILD_PRELUDE, run_child, time_limit

from slayerc.backends.files import load
from slayerc.errors import ParseError

SIR = 'slayerc.graph @g {params = "side.npz"}\nparam @w : f32[2, 2] = external\n' \
      "%x = io.input() : f32[2]\n%y = io.output(%x)\n"


def _cases(tmp: Path) -> dict[str, str]:
    """name -> path of a bad input (made here, read in the child)."""
    fifo = tmp / "fifo"
    os.mkfifo(fifo)
    out = {}
    for suffix in (".net", ".sir"):
        (tmp / f"pipe{suffix}").symlink_to(fifo)
        (tmp / f"dir{suffix}").mkdir()
        (tmp / f"zero{suffix}").symlink_to("/dev/zero")
        out[f"fifo{suffix}"] = str(tmp / f"pipe{suffix}")
        out[f"dir{suffix}"] = str(tmp / f"dir{suffix}")
        out[f"device{suffix}"] = str(tmp / f"zero{suffix}")
    for kind, make in (("fifo", lambda p: p.symlink_to(fifo)), ("dir", Path.mkdir),
                       ("device", lambda p: p.symlink_to("/dev/zero"))):
        d = tmp / f"side_{kind}"
        d.mkdir()
        (d / "g.sir").write_text(SIR)
        make(d / "side.npz")
        out[f"side-{kind}"] = str(d / "g.sir")
    return out


def test_non_regular_inputs_are_refused_without_blocking(tmp_path: Path) -> None:
    cases = _cases(tmp_path)
    got = run_child(CHILD_PRELUDE + f"""
from slayerc.backends.files import load
cases = {cases!r}
print(json.dumps({{k: outcome(lambda p=p: load(p)) for k, p in cases.items()}}))
""", timeout=90)
    kinds = {"fifo": "a FIFO (named pipe)", "dir": "a directory", "device": "a character device"}
    for name, (cls, message) in got.items():  # type: ignore[union-attr]
        kind = kinds[name.split("-")[-1].split(".")[0]]
        assert cls in ("BackendError", "ParseError"), (name, cls, message)
        assert f"is {kind}, not a regular file" in message, (name, message)
        if name.startswith("side-"):
            assert cls == "ParseError" and "g.sir:1:28: error: " in message, message
            assert "side.npz: the parameter side file" in message, message
        else:
            assert message.startswith(cases[name]), message


def _npz_with_header(path: Path, shape: tuple[int, ...], payload: bytes = b"",
                     dtype: str = "<f4", name: str = "w.npy") -> None:
    header = {"descr": dtype, "fortran_order": False, "shape": shape}
    with zipfile.ZipFile(path, "w") as zf, zf.open(name, "w") as f:
        np.lib.format.write_array_header_1_0(f, header)
        f.write(payload)


@pytest.mark.parametrize(("shape", "payload", "dtype", "name", "message"), [
    ((10 ** 12, 10 ** 3), b"", "<f4", "w.npy", r"declares float32\[1000000000000, 1000\] "
     r"\(4,000,000,000,000,000 bytes\), more than the [\d,]+ bytes of memory"),
    ((2, 2), b"\0" * 8, "<f4", "w.npy", r"declares float32\[2, 2\] \(16 bytes\) but holds only"),
    ((2, -2), b"", "<f4", "w.npy", "negative dimension"),
    ((2, 2), b"", "|O", "w.npy", "holds Python objects"),
    ((2, 2), b"\0" * 16, "<f4", "w.txt", "not a .npy array"),
])
def test_lying_side_files_are_refused_before_allocating(tmp_path: Path, shape, payload, dtype,
                                                        name, message) -> None:
    (tmp_path / "g.sir").write_text(SIR)
    _npz_with_header(tmp_path / "side.npz", shape, payload, dtype, name)
    with time_limit(10), pytest.raises(ParseError, match=message) as info:
        load(tmp_path / "g.sir")
    assert str(info.value).startswith(f"{tmp_path / 'g.sir'}:1:28: error: ")


def test_side_file_that_is_not_a_zip(tmp_path: Path) -> None:
    (tmp_path / "g.sir").write_text(SIR)
    (tmp_path / "side.npz").write_bytes(b"PK\x03\x04" + b"\xff" * 100)
    with time_limit(10), pytest.raises(ParseError, match="cannot read the parameter side file"):
        load(tmp_path / "g.sir")


def test_sir_that_is_binary(tmp_path: Path) -> None:
    (tmp_path / "g.sir").write_bytes(b"\x89HDF\r\n\x1a\n\xff\xfe")
    with time_limit(10), pytest.raises(ParseError, match="not a text file"):
        load(tmp_path / "g.sir")
