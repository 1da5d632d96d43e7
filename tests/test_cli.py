"""The slayerc command line, run as a subprocess like a user would."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import slayerc

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "conv_net.sir"


def slayerc_cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "slayerc.cli", *args], capture_output=True,
                          text=True, timeout=120, cwd=cwd)


def test_version() -> None:
    run = slayerc_cli("--version")
    assert run.returncode == 0
    assert run.stdout.strip() == f"slayerc {slayerc.__version__}"


def test_console_script_is_installed() -> None:
    run = subprocess.run(["slayerc", "--version"], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0 and run.stdout.startswith("slayerc ")


def test_passes_lists_every_registered_pass() -> None:
    from slayerc.passes import REGISTRY

    run = slayerc_cli("passes")
    assert run.returncode == 0
    lines = run.stdout.strip().splitlines()
    assert [ln.split()[0] for ln in lines] == sorted(REGISTRY)
    assert all(len(ln.split(None, 1)) == 2 for ln in lines)  # each has a description


def test_inspect_prints_ir_and_layer_table() -> None:
    run = slayerc_cli("inspect", str(EXAMPLE))
    assert run.returncode == 0, run.stderr
    out = run.stdout
    assert out.startswith('slayerc.graph @conv_net {facts = ["shapes"]')
    assert "%flat = tensor.flatten(%pool1_shift) : f32[512]" in out
    table = out[out.index("node "):].splitlines()
    assert table[0].split() == ["node", "op", "shape", "neurons", "synapses", "params"]
    rows = {r.split()[0]: r.split() for r in table[2:] if r and not r.startswith("-")}
    # conv1_lif: 8 x 16 x 16 neurons; fc1: a 32 x 512 weight matrix
    assert rows["%conv1_lif"][-3] == str(8 * 16 * 16)
    assert rows["%fc1"][-1] == str(32 * 512)
    neurons = 8 * 16 * 16 + 8 * 8 * 8 + 32 + 10
    assert rows["total"][1] == str(neurons)


def test_opt_writes_output_file(tmp_path: Path) -> None:
    out = tmp_path / "net.sir"
    run = slayerc_cli("opt", str(EXAMPLE), "-p", "shape-infer", "-o", str(out), "--time-passes")
    assert run.returncode == 0, run.stderr
    assert "shape-infer" in run.stderr and "total" in run.stderr
    from slayerc.ir import load

    g = load(out)
    assert "shapes" in g.facts
    assert g["fc2_lif"].shape == (10,)
    assert (tmp_path / "net.npz").exists()


def test_opt_print_ir_after_all() -> None:
    run = slayerc_cli("opt", str(EXAMPLE), "-p", "shape-infer", "--print-ir-after-all")
    assert run.returncode == 0
    assert "IR after shape-infer" in run.stderr


def test_error_is_one_line_without_traceback(tmp_path: Path) -> None:
    bad = tmp_path / "bad.sir"
    bad.write_text("slayerc.graph @g\n%x = io.inptu()\n")
    run = slayerc_cli("opt", str(bad), "-p", "shape-infer")
    assert run.returncode == 1
    assert run.stderr == f"slayerc: error: {bad}:2:6: error: unknown op 'io.inptu'\n"
    run = slayerc_cli("--traceback", "opt", str(bad), "-p", "shape-infer")
    assert run.returncode == 1 and "Traceback" in run.stderr


@pytest.mark.parametrize("args, words", [
    (["opt", str(EXAMPLE), "-p", "no-such-pass"], "unknown pass 'no-such-pass'"),
    (["opt", str(EXAMPLE), "-p", "shape-infer{x=1}"], "pass 'shape-infer' has no option 'x'"),
    (["opt", str(EXAMPLE), "-p", "shape-infer,,"], "malformed pipeline"),
    (["opt", "net.xyz"], "net.xyz: unknown file type; slayerc reads .sir, .net"),
    (["inspect", "missing.sir"], "cannot read"),
])
def test_user_errors_exit_1(args: list[str], words: str) -> None:
    run = slayerc_cli(*args)
    assert run.returncode == 1, run.stderr
    assert words in run.stderr and "Traceback" not in run.stderr
    assert run.stderr.startswith("slayerc: error: ")


@pytest.mark.parametrize("args", [[], ["opt"], ["frobnicate"], ["opt", "x.sir", "--bogus"]])
def test_usage_errors_exit_2(args: list[str]) -> None:
    assert slayerc_cli(*args).returncode == 2


def test_split_input_file_keeps_line_numbers(tmp_path: Path) -> None:
    f = tmp_path / "s.sir"
    f.write_text("slayerc.graph @a\n%x = io.input() : f32[1]\n%y = io.output(%x)\n# -----\n"
                 "slayerc.graph @b\n%x = io.bogus()\n")
    run = slayerc_cli("opt", str(f), "-p", "shape-infer", "--split-input-file",
                      "--verify-diagnostics")
    assert run.returncode == 1  # the first chunk succeeds, which --verify-diagnostics rejects
    run = slayerc_cli("opt", str(f), "--split-input-file")
    assert run.returncode == 1
    assert f"{f}:6:6: error: unknown op 'io.bogus'" in run.stderr
