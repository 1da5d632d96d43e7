"""Seeded corruptions of the reference netlists: each reads correctly or raises SlayerError.

Never another exception type, never a hang: each chunk of cases runs in a child process with
a time limit, because a hang inside the HDF5 C library cannot be interrupted by a signal.
"""

from __future__ import annotations

import random
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest
from test_hdf5_util import REFERENCE, input_shape

from slayerc.backends import hdf5
from slayerc.errors import SlayerError

CASES_PER_CHUNK = 110
CHUNKS = 5  # 550 corruptions in all


def _datasets(f: h5py.File) -> list[str]:
    names: list[str] = []
    f.visititems(lambda n, o: names.append(n) if isinstance(o, h5py.Dataset) else None)
    return sorted(names)


def _groups(f: h5py.File) -> list[str]:
    names: list[str] = []
    f.visititems(lambda n, o: names.append(n) if isinstance(o, h5py.Group) else None)
    return sorted(names)


BAD_VALUES: list[Callable[[random.Random, np.ndarray], Any]] = [
    lambda r, v: np.float32(np.nan),
    lambda r, v: np.full(v.shape, np.inf, np.float32),
    lambda r, v: np.full(v.shape, 1e30),
    lambda r, v: np.full(v.shape, -(2 ** 40), np.int64),
    lambda r, v: np.full(v.shape, r.choice([-1, 0, 4097, 70, 255, 257]), np.int64),
    lambda r, v: np.asarray(v, np.float64) + 0.5,
    lambda r, v: "garbage",
    lambda r, v: np.bool_(True),
    lambda r, v: np.zeros((0,), np.float32),
    lambda r, v: np.zeros((*np.shape(v), 2), np.float32),
    lambda r, v: np.ones((3, 1, 2), np.int64),
    lambda r, v: np.int64(r.randint(-5, 100)),
    lambda r, v: np.array([b"dense", b"conv"], "S10"),
    lambda r, v: np.array([r.choice([b"pool", b"kwta", b"dense_comp", b"concat", b"input",
                                     b"SDNN", b"ALIF", b"RF", b"\xff\xfe"])], "S10"),
]


def _replace(f: h5py.File, r: random.Random) -> None:
    name = r.choice(_datasets(f))
    old = f[name][()]
    new = r.choice(BAD_VALUES)(r, np.asarray(old))
    del f[name]
    f[name] = new


def _delete(f: h5py.File, r: random.Random) -> None:
    del f[r.choice(_datasets(f) + _groups(f))]


def _dataset_to_group(f: h5py.File, r: random.Random) -> None:
    name = r.choice(_datasets(f))
    del f[name]
    f.create_group(name).create_dataset("x", data=1)


def _group_to_dataset(f: h5py.File, r: random.Random) -> None:
    name = r.choice(_groups(f))
    del f[name]
    f[name] = np.arange(3)


def _renumber(f: h5py.File, r: random.Random) -> None:
    keys = list(f["layer"])
    f.move(f"layer/{r.choice(keys)}", f"layer/{r.choice(['7', 'x', '-1', '01', str(len(keys))])}")


def _add_junk(f: h5py.File, r: random.Random) -> None:
    group = f[r.choice(["/", *_groups(f)])]
    key = r.choice(["junk", "neuron", "weight", "format_version", "layer", "delay", "bias"])
    if key in group:
        del group[key]
    group[key] = r.choice([np.int64(99), np.arange(5.0), "text"])


def _soft_link(f: h5py.File, r: random.Random) -> None:
    name = r.choice(_datasets(f))
    del f[name]
    f[name] = h5py.SoftLink("/nowhere")


STRUCTURAL = [_replace, _replace, _replace, _delete, _dataset_to_group, _group_to_dataset,
              _renumber, _add_junk, _soft_link]


def _corrupt(src: Path, dst: Path, r: random.Random) -> None:
    kind = r.random()
    data = src.read_bytes()
    if kind < 0.15:  # truncated
        dst.write_bytes(data[:r.randrange(len(data))])
    elif kind < 0.3:  # flipped bytes
        b = bytearray(data)
        for _ in range(r.randint(1, 20)):
            b[r.randrange(len(b))] = r.randrange(256)
        dst.write_bytes(bytes(b))
    elif kind < 0.33:  # not hdf5 at all
        dst.write_bytes(r.choice([b"", b"hello", b"\x89HDF\r\n\x1a\n" + b"\0" * 10]))
    else:
        dst.write_bytes(data)
        with h5py.File(dst, "r+") as f:
            for _ in range(r.choice([1, 1, 1, 2, 3])):
                try:
                    r.choice(STRUCTURAL)(f, r)
                except (ValueError, KeyError, IndexError, TypeError):
                    pass  # the mutation did not apply (e.g. the name exists); keep going


def run_chunk(chunk: int, tmp: Path) -> dict[str, int]:
    """Run one chunk of cases; raise AssertionError on any non-SlayerError exception."""
    outcomes = {"ok": 0, "error": 0}
    for i in range(CASES_PER_CHUNK):
        seed = chunk * CASES_PER_CHUNK + i
        r = random.Random(seed)
        src = r.choice(REFERENCE)
        path = tmp / f"c{seed}.net"
        _corrupt(src, path, r)
        try:
            g = hdf5.read(path, input_shape=input_shape(src))
            hdf5.write(g, tmp / "w.net", target="slayerc")
            outcomes["ok"] += 1
        except SlayerError as e:
            assert str(path) in str(e) or "%" in str(e), (seed, str(e))
            outcomes["error"] += 1
        except Exception as e:  # noqa: BLE001 - the point of the test
            raise AssertionError(f"seed {seed} ({src.name}): {type(e).__name__}: {e}") from e
        path.unlink()
    return outcomes


@pytest.mark.parametrize("chunk", range(CHUNKS))
def test_corrupted_netlists_fail_cleanly(chunk: int, tmp_path: Path) -> None:
    try:
        done = subprocess.run([sys.executable, __file__, str(chunk), str(tmp_path)],
                              capture_output=True, text=True, timeout=60)
    except subprocess.TimeoutExpired:
        pytest.fail(f"chunk {chunk}: reading did not finish within 60 s (a hang)")
    assert done.returncode == 0, done.stdout + done.stderr
    ok, error = map(int, done.stdout.split())
    assert ok + error == CASES_PER_CHUNK and error > CASES_PER_CHUNK // 2, (ok, error)


if __name__ == "__main__":
    result = run_chunk(int(sys.argv[1]), Path(sys.argv[2]))
    print(result["ok"], result["error"])
