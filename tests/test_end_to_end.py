"""The whole flow: PyTorch model → trace → netlist → fixed-point run, against eager and lava-dl."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import refcases
import torch

from slayerc.backends.files import save
from slayerc.errors import BackendError
from slayerc.frontend.trace import trace

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "tests" / "data" / "lava-dl"
sys.path.insert(0, str(ROOT / "tests" / "backends"))


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "slayerc.cli", *args], capture_output=True,
                          text=True, timeout=300, cwd=cwd)


def test_readme_flow_equals_the_pytorch_model(tmp_path: Path) -> None:
    import models

    run = _cli("compile", f"{ROOT}/examples/models.py:ConvSNN", "--input-shape", "2,16,16",
               "--steps", "40", "-o", "conv_snn.net", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert "total" in run.stdout  # the per-layer summary
    run = _cli("run", "conv_snn.net", "--input", f"{ROOT}/examples/spikes_2x16x16.npy",
               "--output", "out.npy", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert run.stdout.startswith("wrote out.npy: int32[10, 40]")
    out = np.load(tmp_path / "out.npy")
    x = torch.tensor(np.load(ROOT / "examples" / "spikes_2x16x16.npy"))[None]
    with torch.no_grad():
        want = models.ConvSNN()(x)[0].numpy()
    np.testing.assert_array_equal(out, want)
    assert out.sum() > 50


_build = refcases.build
CASES = refcases.CASES


@pytest.mark.parametrize("case", [c for c in CASES if c != "cuba_norm"])
def test_traced_model_writes_lava_dl_netlist(case: str, tmp_path: Path) -> None:
    """Tracing a lava-dl model and writing it gives the datasets lava-dl's own export gave."""
    from test_hdf5_util import assert_same_datasets

    net, x = _build(case)
    out = tmp_path / f"{case}.net"
    save(trace(net, x), out, target="slayerc")
    assert_same_datasets(out, DATA / f"{case}.net")


def test_bias_head_start_is_refused_not_silently_shifted(tmp_path: Path) -> None:
    net, x = _build("cuba_norm")
    with pytest.raises(BackendError, match="bias head-start"):
        save(trace(net, x), tmp_path / "n.net")
    assert not (tmp_path / "n.net").exists()


@pytest.mark.parametrize("case, shape", [("cuba_conv", "2,10,12"), ("sdnn_dense", None),
                                         ("rf", None), ("cuba_rec", None)])
def test_cli_netlist_to_sir_and_back(case: str, shape: str | None, tmp_path: Path) -> None:
    """``slayerc opt X.net -o X.sir`` and back gives the same datasets (issue: round trips)."""
    from test_hdf5_util import assert_same_datasets

    extra = ["--input-shape", shape] if shape else []
    run = _cli("opt", str(DATA / f"{case}.net"), *extra, "-o", "x.sir", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    run = _cli("opt", "x.sir", "-o", "x.net", "--target", "slayerc", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert_same_datasets(tmp_path / "x.net", DATA / f"{case}.net")
