"""``slayerc compile MODEL.py:NAME``: model loading, weights_only checkpoints, outputs, errors."""

from __future__ import annotations

import pickle
import subprocess
import sys
from pathlib import Path

import models
import torch

from slayerc.ir import load

ROOT = Path(__file__).resolve().parents[2]
MODELS = ROOT / "examples" / "models.py"


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "slayerc.cli", *args], capture_output=True,
                          text=True, timeout=300, cwd=cwd)


def test_compile_with_weights_to_sir(tmp_path: Path) -> None:
    model = models.RecurrentKWTA()
    with torch.no_grad():
        model.fc.synapse.weight.mul_(0.5)  # differs from a fresh model
    torch.save(model.state_dict(), tmp_path / "w.pt")
    run = _cli("compile", f"{MODELS}:RecurrentKWTA", "--weights", "w.pt", "--input-shape", "20",
               "--steps", "10", "-o", "net.sir", "-q", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    g = load(tmp_path / "net.sir")
    want = model.fc.synapse.effective_weight(fresh=True)[..., 0, 0, 0].detach().numpy()
    assert (g.param(g["fc_synapse"].weight) == want).all()


def test_function_returning_a_module(tmp_path: Path) -> None:
    run = _cli("compile", f"{MODELS}:seed_network", "--input-shape", "3,13,16", "--steps", "4",
               "-o", "seed.sir", "-q", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert any(n.OP == "neuron.rf_iz" for n in load(tmp_path / "seed.sir"))


class _Evil:
    def __reduce__(self):
        return (print, ("pwned",))


def test_checkpoints_are_never_unpickled(tmp_path: Path) -> None:
    with open(tmp_path / "evil.pt", "wb") as f:
        pickle.dump({"x": _Evil()}, f)
    run = _cli("compile", f"{MODELS}:RecurrentKWTA", "--weights", "evil.pt", "--input-shape",
               "20", "--steps", "4", "-o", "x.sir", cwd=tmp_path)
    assert run.returncode == 1
    assert "pwned" not in run.stdout
    assert "not a weights-only checkpoint" in run.stderr
    assert not (tmp_path / "x.sir").exists()


def test_wrong_checkpoint_and_model_errors(tmp_path: Path) -> None:
    torch.save({"nope": torch.zeros(1)}, tmp_path / "w.pt")
    (tmp_path / "m.py").write_text("import torch\nclass NeedsArgs(torch.nn.Module):\n"
                                   "    def __init__(self, n):\n        super().__init__()\n")
    cases = [
        ([f"{MODELS}:RecurrentKWTA", "--weights", "w.pt"], "does not fit the model"),
        ([f"{MODELS}:Missing"], "has no 'Missing'"),
        ([f"{MODELS}"], "expected MODEL.py:NAME"),
        (["m.py:NeedsArgs"], "constructible without arguments"),
        (["nofile.py:X"], "nofile.py: no such file"),
    ]
    for args, words in cases:
        run = _cli("compile", *args, "--input-shape", "20", "--steps", "4", "-o", "x.sir",
                   cwd=tmp_path)
        assert run.returncode == 1, (args, run.stderr)
        assert words in run.stderr and run.stderr.count("\n") == 1, run.stderr


def test_wrong_input_shape_is_one_line_naming_the_shape(tmp_path: Path) -> None:
    run = _cli("compile", f"{MODELS}:TorchCNN", "--input-shape", "2,2,16,16", "--steps", "5",
               "-o", "x.net", cwd=tmp_path)
    assert run.returncode == 1
    assert run.stderr.count("\n") == 1, run.stderr  # one line: no fx "While executing" dump
    assert "at fx node 'permute'" in run.stderr and "[1, 2, 2, 16, 16, 5]" in run.stderr
    assert not (tmp_path / "x.net").exists()


def test_batchnorm_torch_model_compiles_to_loihi2_netlist_with_latency(tmp_path: Path) -> None:
    run = _cli("compile", f"{MODELS}:TorchCNN", "--input-shape", "2,16,16", "--steps", "20",
               "--quant-report", "-o", "cnn.net", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert "output latency: +3 steps" in run.stdout
    assert "bias head-start" in run.stderr and "= unquantized" in run.stderr
    assert (tmp_path / "cnn.net").exists()


def test_slayerc_target_netlist_gets_netlist_layers_and_sir_keeps_the_models_timing(
        tmp_path: Path) -> None:
    common = [f"{MODELS}:TorchCNN", "--input-shape", "2,16,16", "--steps", "5", "--target",
              "slayerc", "-q"]
    run = _cli("compile", *common, "-o", "cnn.net", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    run = _cli("compile", *common, "-o", "cnn.sir", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    g = load(tmp_path / "cnn.sir")
    assert not any(n.OP == "axon.shift" for n in g)  # no holds added: the model's timing
    assert g["conv1"].bias is not None
