"""``slayerc run``: the fixed-point simulator from the command line, as a subprocess."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np

DATA = Path(__file__).resolve().parents[1] / "data" / "lava-dl"


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "slayerc.cli", "run", *args],
                          capture_output=True, text=True, timeout=120)


def test_run_conv_netlist_matches_lava(tmp_path: Path) -> None:
    out, layers = tmp_path / "out.npy", tmp_path / "layers.npz"
    got = _run(str(DATA / "cuba_conv.net"), "--input", str(DATA / "cuba_conv.input.npy"),
               "--output", str(out), "--all-layers", str(layers))
    assert got.returncode == 0, got.stderr
    arr = np.load(out)
    assert arr.dtype == np.int32
    np.testing.assert_array_equal(arr, np.load(DATA / "cuba_conv.lava_out.npy"))
    ref = np.load(DATA / "cuba_conv.lava_layers.npz")
    with np.load(layers) as rec:
        assert sorted(rec.files) == sorted(ref.files)
        for key in ref.files:
            np.testing.assert_array_equal(rec[key], ref[key])


def test_run_batched_with_steps(tmp_path: Path) -> None:
    x = np.load(DATA / "cuba_dense.input.npy")
    inp, out = tmp_path / "in.npy", tmp_path / "out.npy"
    np.save(inp, np.stack([x, x]))
    got = _run(str(DATA / "cuba_dense.net"), "--input", str(inp), "--output", str(out),
               "--steps", "60")
    assert got.returncode == 0, got.stderr
    arr = np.load(out)
    assert arr.shape == (2, 8, 60)
    np.testing.assert_array_equal(arr[1, :, :50], np.load(DATA / "cuba_dense.lava_out.npy"))


def test_run_reports_bad_inputs(tmp_path: Path) -> None:
    out = tmp_path / "out.npy"
    wrong = tmp_path / "wrong.npy"
    np.save(wrong, np.zeros((15, 10)))
    got = _run(str(DATA / "cuba_dense.net"), "--input", str(wrong), "--output", str(out))
    assert got.returncode == 1 and "Traceback" not in got.stderr
    assert "%inp (io.input" in got.stderr and "[16,T]" in got.stderr
    got = _run(str(DATA / "cuba_dense.net"), "--input", str(DATA / "cuba_dense.net"),
               "--output", str(out))
    assert got.returncode == 1 and "cuba_dense.net: not a .npy array file" in got.stderr
    assert not out.exists()
