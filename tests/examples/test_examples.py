"""Every example under examples/ runs end to end with --quick (as CI runs it), in a subprocess,
and prints figures that hold: fixed point close to float, training better than untrained,
netlists and pictures written.  The four run at once (one thread each) to stay within a minute
on two cores."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ("nmnist_synthetic", "pilotnet_sdnn", "spike_regression", "recurrent_kwta")
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, tuple[subprocess.Popen, Path]]:
    """Start every example with --quick at once; each test waits for its own."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
           "NUMBA_NUM_THREADS": "1"}
    out = {}
    for name in EXAMPLES:
        folder = tmp_path_factory.mktemp(name)
        proc = subprocess.Popen([sys.executable, str(ROOT / "examples" / f"{name}.py"), "--quick",
                                 "--out", str(folder)], cwd=folder, env=env, text=True,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        out[name] = (proc, folder)
    yield out
    for proc, _ in out.values():
        if proc.poll() is None:
            proc.kill()


def finish(runs, name: str) -> tuple[str, Path]:
    proc, folder = runs[name]
    text, _ = proc.communicate(timeout=240)
    assert proc.returncode == 0, text[-3000:]
    assert re.search(r"^done in [0-9.]+ s$", text, re.M), text[-2000:]
    return text, folder


def number(pattern: str, text: str) -> list[float]:
    m = re.search(pattern, text)
    assert m, f"{pattern!r} not in:\n{text[-2000:]}"
    return [float(v) for v in m.groups()]


def pictures(folder: Path, *names: str) -> None:
    pytest.importorskip("matplotlib")
    for n in names:
        assert (folder / n).read_bytes()[:8] == PNG_MAGIC, n


def test_nmnist_float_and_fixed_point_agree(runs) -> None:
    text, folder = finish(runs, "nmnist_synthetic")
    flt, fixed = number(r"test accuracy: float ([0-9.]+)%, fixed point \(Loihi 2 netlist\) "
                        r"([0-9.]+)%", text)
    assert abs(flt - fixed) <= 2.0
    assert number(r"equal to float: ([0-9.]+)%", text)[0] >= 99.0
    import slayerc

    g = slayerc.load(folder / "nmnist.net", input_shape=(2, 16, 16))
    assert any(n.OP == "axon.delay" for n in g)  # the learned delays are in the netlist
    pictures(folder, "nmnist_graph.png", "nmnist_raster.png")


def test_pilotnet_regresses_and_reports_message_rates(runs) -> None:
    text, folder = finish(runs, "pilotnet_sdnn")
    flt, fixed, zero = number(r"float ([0-9.]+) deg, fixed point \(Loihi 2 netlist\) ([0-9.]+) "
                              r"deg; predicting 0 would give ([0-9.]+) deg", text)
    assert flt < zero and abs(fixed - flt) < 2.0
    rates = number(r"message rate: float model ([0-9.]+), fixed-point netlist ([0-9.]+)", text)
    assert all(0 < r < 0.5 for r in rates)  # sparse: far fewer messages than a dense net
    pictures(folder, "pilotnet_graph.png", "pilotnet_messages.png")


def test_spike_regression_learns_and_the_netlist_matches(runs) -> None:
    text, folder = finish(runs, "spike_regression")
    untrained, trained, netlist = number(
        r"untrained ([0-9.]+), trained float ([0-9.]+), trained Loihi 2 netlist \(fixed point\) "
        r"([0-9.]+)", text)
    assert trained < untrained / 3 and netlist <= trained * 1.1
    pictures(folder, "spike_regression.png")


def test_recurrent_kwta_compiles_and_agrees(runs) -> None:
    text, folder = finish(runs, "recurrent_kwta")
    flt, fixed = number(r"test accuracy: float ([0-9.]+)%, fixed point \(Loihi 2 netlist\) "
                        r"([0-9.]+)%", text)
    assert abs(flt - fixed) <= 10.0  # 32 test samples: one sample is 3 points
    assert number(r"all neuron outputs\s+([0-9.]+)%", text)[0] >= 99.0
    import slayerc

    g = slayerc.load(folder / "recurrent_kwta.net")
    out = slayerc.run_netlist(folder / "recurrent_kwta.net", np.zeros((24, 5), np.float32))
    assert out.shape == (4, 5) and len(g.outputs) == 1
    pictures(folder, "recurrent_kwta_graph.png", "recurrent_kwta_quant.png",
             "recurrent_kwta_raster.png")
