"""Graded messages must fit the target's message bits (16 for loihi2: netx's SDNN setting).

Messages are data dependent, so the fixed-point runtime checks them as it runs and names the
node, the step, the value and the limit of the first one that does not fit.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from slayerc.driver import run_netlist
from slayerc.errors import RuntimeSimError
from slayerc.ir import ops
from slayerc.ir.core import Graph, GraphBuilder
from slayerc.ir.target import LOIHI2, SLAYERC, generic
from slayerc.passes import shape_infer
from slayerc.runtime.fixed_point import Simulator, simulate

DATA = Path(__file__).resolve().parents[1] / "data" / "lava-dl"


def _sdnn(weight: float, activation: str = "relu") -> Graph:
    """io.input -> axon.delta -> shift -> dense (one weight) -> sigma_delta -> output."""
    b = GraphBuilder()
    x = b.add(ops.Input, "x", shape=(1,), dtype="f32")
    enc = b.add(ops.Delta, "enc", [x], threshold=0.0)
    s = b.add(ops.Shift, "fc_shift", [enc], steps=1)
    d = b.add(ops.Dense, "fc", [s], weight=b.param("w", np.array([[weight]], np.float32)))
    sd = b.add(ops.SigmaDelta, "sd", [d], threshold=1 / 64, activation=activation)
    b.add(ops.Output, "out", [sd])
    return shape_infer.run(b.build())


def test_targets_message_bits() -> None:
    assert LOIHI2.message_bits == 16 and LOIHI2.message_range == (-32768, 32767)
    assert SLAYERC.message_bits == 24


def test_messages_within_bits_run_and_match_the_unchecked_run() -> None:
    g = _sdnn(1.0)
    x = np.array([[0.5, 0.5, 7.5, 7.5, 0.0, 0.0]])  # Δ ≤ 7.5 → 30720 < 2^15
    got = simulate(g, x, record="enc")
    np.testing.assert_array_equal(got["enc"], [[2048, 0, 28672, 0, -30720, 0]])
    unchecked = simulate(g, x, record="enc", target=None)
    for key in got:
        np.testing.assert_array_equal(got[key], unchecked[key])


def test_delta_message_over_16_bits_names_node_step_value_and_limit() -> None:
    g = _sdnn(1.0)
    x = np.array([[0.5, 0.5, 9.5, 9.5]])  # Δ = 9 at step 2: 9·4096 = 36864 > 32767
    with pytest.raises(RuntimeSimError, match=r"%enc \(axon.delta\): step 2: graded message "
                       r"36864 .*16-bit messages of target loihi2 \(\[-32768, 32767\]"):
        simulate(g, x)
    assert simulate(g, x, target="slayerc")["out"].shape == (1, 4)  # 24 bits hold it


def test_negative_sigma_delta_message_over_bits_is_found_in_a_batch() -> None:
    g = _sdnn(-3.0, "identity")  # the hidden layer's Δ = -3·Δx: a negative message
    x = np.stack([np.full((1, 5), 0.5), np.array([[0.0, 0.0, 3.0, 0.0, 0.0]])])
    with pytest.raises(RuntimeSimError, match=r"%sd \(neuron.sigma_delta\): step 3: graded "
                       r"message -36864 .*sample 1, neuron \(0,\)"):
        simulate(g, x)
    narrow = generic(message_bits=12)  # any Target works, not only the registered ones
    with pytest.raises(RuntimeSimError, match=r"%enc .*step 0: .*12-bit messages of target "
                       r"generic \(\[-2048, 2047\]"):
        Simulator(g, narrow).run(x)


def test_graded_cuba_payload_is_a_message() -> None:
    b = GraphBuilder()
    x = b.add(ops.Input, "x", shape=(1,), dtype="f32")
    s = b.add(ops.Shift, "fc_shift", [x], steps=1)
    d = b.add(ops.Dense, "fc", [s], weight=b.param("w", np.array([[3.0]], np.float32)))
    n = b.add(ops.Cuba, "lif", [d], threshold=8.0, current_decay=1.0, voltage_decay=0.0,
              graded=True)
    b.add(ops.Output, "out", [n])
    g = shape_infer.run(b.build())
    # v: 3, 6, 9 (> 8: payload 9·4096 = 36864 at step 3, after the synapse's step)
    with pytest.raises(RuntimeSimError, match=r"%lif \(neuron.cuba\): step 3: graded message "
                       r"36864"):
        simulate(g, np.ones((1, 5)))
    np.testing.assert_array_equal(simulate(g, np.ones((1, 5)), target="slayerc")["out"],
                                  [[0, 0, 0, 36864, 0]])


def test_recurrent_graded_layer_is_checked_too() -> None:
    b = GraphBuilder()
    x = b.add(ops.Input, "x", shape=(1,), dtype="f32")
    s = b.add(ops.Shift, "fc_shift", [x], steps=1)
    d = b.add(ops.Dense, "fc", [s], weight=b.param("w", np.array([[3.0]], np.float32)))
    rs = b.add(ops.Shift, "rec_shift", ["lif"], steps=1)
    rd = b.add(ops.Dense, "rec", [rs], weight=b.param("wr", np.array([[0.0]], np.float32)))
    a = b.add(ops.Add, "add", [d, rd])
    n = b.add(ops.Cuba, "lif", [a], threshold=8.0, current_decay=1.0, voltage_decay=0.0,
              graded=True)
    b.add(ops.Output, "out", [n])
    g = shape_infer.run(b.build())
    with pytest.raises(RuntimeSimError, match=r"%lif \(neuron.cuba\): step 3: graded message"):
        simulate(g, np.ones((1, 5)))


def test_reference_sdnn_netlists_fit_16_bits_but_not_13() -> None:
    x = np.load(DATA / "sdnn_dense.input.npy")
    out = run_netlist(DATA / "sdnn_dense.net", x)  # default loihi2: 16 bits
    np.testing.assert_array_equal(out, np.load(DATA / "sdnn_dense.lava_out.npy"))
    with pytest.raises(RuntimeSimError, match=r"%layer1 \(neuron.sigma_delta, from module "
                       r"layer/1 .*13-bit messages"):
        run_netlist(DATA / "sdnn_dense.net", x, target=generic(message_bits=13))


def test_unknown_target_is_refused() -> None:
    with pytest.raises(RuntimeSimError, match="unknown target 'loihi3'.*loihi2, slayerc"):
        simulate(_sdnn(1.0), np.zeros((1, 2)), target="loihi3")


def test_cli_run_takes_the_target_whose_message_width_it_enforces(tmp_path: Path) -> None:
    import subprocess
    import sys

    from slayerc.backends.files import save

    save(_sdnn(1.0), tmp_path / "sd.net", target="slayerc")
    np.save(tmp_path / "x.npy", np.array([[0.5, 0.5, 9.5, 9.5]], np.float32))
    cmd = [sys.executable, "-m", "slayerc.cli", "run", "sd.net", "--input", "x.npy",
           "--output", "y.npy"]
    run = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert run.returncode == 1 and "16-bit messages of target loihi2" in run.stderr
    assert not (tmp_path / "y.npy").exists()
    run = subprocess.run([*cmd, "--target", "slayerc"], capture_output=True, text=True,
                         cwd=tmp_path, timeout=120)
    assert run.returncode == 0, run.stderr
    assert np.load(tmp_path / "y.npy").shape == (1, 4)
