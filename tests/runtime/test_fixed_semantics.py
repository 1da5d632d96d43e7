"""Unit semantics of the fixed-point runtime on hand-built graphs, and its error messages."""

from __future__ import annotations

import numpy as np
import pytest

from slayerc.errors import SlayerError
from slayerc.ir import ops
from slayerc.ir.core import Graph, GraphBuilder
from slayerc.passes import shape_infer
from slayerc.runtime.fixed import neurons
from slayerc.runtime.fixed.quant import lava_rf_decays, netx_dense_weights
from slayerc.runtime.fixed_point import simulate


def _dense_net(weight: np.ndarray, **neuron: object) -> Graph:
    """io.input -> shift -> dense -> cuba -> output, netx's layout of one dense layer."""
    b = GraphBuilder()
    x = b.add(ops.Input, "x", shape=(weight.shape[1],), dtype="f32")
    s = b.add(ops.Shift, "fc_shift", [x], steps=1)
    d = b.add(ops.Dense, "fc", [s], weight=b.param("fc.weight", weight.astype(np.float32)))
    attrs = {"threshold": 1.0, "current_decay": 1.0, "voltage_decay": 0.0, **neuron}
    n = b.add(ops.Cuba, "lif", [d], **attrs)
    b.add(ops.Output, "out", [n])
    return shape_infer.run(b.build())


def test_lif_integrates_with_one_step_synapse_and_strict_threshold() -> None:
    # current decay 1 (iDecay 4096): u = a_in << 6 each step; v accumulates; spike when v > 64<<6
    g = _dense_net(np.array([[32 / 64]]))
    x = np.ones((1, 6))
    res = simulate(g, x, record=["fc", "lif"])
    np.testing.assert_array_equal(res["fc"], [[0, 32, 32, 32, 32, 32]])  # the shift: t=0 empty
    # v: 0, 2048, 4096 (= threshold, not above), 6144 -> spike, 0 + 2048, 4096
    np.testing.assert_array_equal(res["out"], [[0, 0, 0, 1, 0, 0]])


def test_bias_integrates_from_step_zero() -> None:
    g = _dense_net(np.array([[0.0, 2 / 64]]), bias=40 / 64)
    out = simulate(g, np.zeros((2, 4)), record=["lif"])["out"]
    # bias 40<<6 per step: v = 2560, 5120 -> spike at t=1, 2560, 5120 -> spike
    np.testing.assert_array_equal(out, [[0, 1, 0, 1]])


def test_netx_weight_optimisation_is_lossless_for_mixed_weights() -> None:
    rng = np.random.default_rng(0)
    w = rng.integers(-128, 128, size=(7, 9)) * 2
    opt = netx_dense_weights(w)
    s = rng.integers(0, 2, size=(9, 5))
    np.testing.assert_array_equal(np.floor((opt.weight @ s) / 2.0 ** -opt.weight_exp), w @ s)


def test_all_inhibitory_weights_lose_precision_as_in_lava() -> None:
    # netx scales [-2, -4] by 2**6 to [-128, -256]; Lava clips -256 to -255 (inhibitory mode),
    # then truncates to 1 weight bit: both become -128, so the second synapse gives -2, not -4.
    opt = netx_dense_weights(np.array([[-2, -4]]))
    assert opt.weight_exp == -6
    np.testing.assert_array_equal(opt.weight, [[-128, -128]])


def test_rf_decays_round_trip_like_lava() -> None:
    # values from Lava's RF process on netx's period/alpha (lavaref, numpy 1.26)
    sin, cos = lava_rf_decays(np.array([2607.0, 2287.0]), np.array([2607.0, 3148.0]))
    np.testing.assert_array_equal(sin, [2606, 2286])
    np.testing.assert_array_equal(cos, [2607, 3148])
    rng = np.random.default_rng(1)
    s, c = rng.integers(1, 2800, 500).astype(float), rng.integers(0, 2800, 500).astype(float)
    got_s, got_c = lava_rf_decays(s, c)
    assert set(np.unique(s - got_s)) <= {0.0, 1.0} and set(np.unique(c - got_c)) <= {0.0, 1.0}


def test_current_wraps_at_24_bits_like_lava() -> None:
    u = np.array([2.0 ** 23, 2.0 ** 23 + 5, -(2.0 ** 23), -(2.0 ** 23) + 1])
    neurons._wrap24(u)
    np.testing.assert_array_equal(u, [2 ** 23, -(2 ** 23) + 5, 2 ** 23, -(2 ** 23) + 1])


def test_per_channel_delay_adds_to_the_synapse_step() -> None:
    b = GraphBuilder()
    x = b.add(ops.Input, "x", shape=(1,), dtype="f32")
    s = b.add(ops.Shift, "s", [x], steps=1)
    d = b.add(ops.Dense, "fc", [s], weight=b.param("w", np.full((3, 1), 2.0, np.float32)))
    dl = b.add(ops.Delay, "dl", [d], delay=b.param("d", np.array([0, 1, 3])))
    n = b.add(ops.Cuba, "lif", [dl], threshold=1.0, current_decay=1.0, voltage_decay=1.0)
    b.add(ops.Output, "out", [n])
    out = simulate(shape_infer.run(b.build()), np.array([[1, 0, 0, 0, 0, 0]]))["out"]
    # DelayDense: delay d arrives d + 1 steps after the spike
    np.testing.assert_array_equal(out, [[0, 1, 0, 0, 0, 0], [0, 0, 1, 0, 0, 0],
                                        [0, 0, 0, 0, 1, 0]])


def test_unbatched_and_batched_shapes() -> None:
    g = _dense_net(np.eye(2) * 2)
    assert simulate(g, np.ones((2, 5)))["out"].shape == (2, 5)
    assert simulate(g, np.ones((4, 2, 5)))["out"].shape == (4, 2, 5)
    assert simulate(g, np.ones((2, 5)), steps=9)["out"].shape == (2, 9)


def test_off_grid_weight_is_not_quant_legal() -> None:
    g = _dense_net(np.array([[0.3]]))
    with pytest.raises(SlayerError, match=r"%fc \(synapse.dense.*not quant-legal"):
        simulate(g, np.ones((1, 3)))


def test_out_of_range_threshold_names_the_node() -> None:
    g = _dense_net(np.array([[0.5]]))
    g = g.with_node(g["lif"].replace(current_decay=1.5))  # past verify, as a pass bug would
    with pytest.raises(SlayerError, match=r"%lif \(neuron.cuba.*current_decay"):
        simulate(g, np.ones((1, 3)))


def test_wrong_input_shape_names_the_input() -> None:
    g = _dense_net(np.eye(2))
    with pytest.raises(SlayerError, match=r"%x \(io.input\).*\[3, 5\].*\[2,T\]"):
        simulate(g, np.ones((3, 5)))


def test_graded_input_to_a_synapse_is_refused() -> None:
    g = _dense_net(np.eye(2))
    with pytest.raises(SlayerError, match=r"%fc .*integer spikes"):
        simulate(g, np.full((2, 5), 0.5))


def test_op_without_fixed_point_form_is_named() -> None:
    b = GraphBuilder()
    x = b.add(ops.Input, "x", shape=(2,), dtype="f32")
    nb = b.add(ops.MeanOnlyNorm, "bn", [x], mean=b.param("m", np.zeros(2, np.float32)))
    b.add(ops.Output, "out", [nb])
    with pytest.raises(SlayerError, match=r"%bn \(norm.mean_only\).*no fixed-point semantics"):
        simulate(shape_infer.run(b.build()), np.ones((2, 3)))


def test_missing_shapes_are_reported() -> None:
    b = GraphBuilder()
    x = b.add(ops.Input, "x", shape=(2,), dtype="f32")
    b.add(ops.Output, "out", [x])
    with pytest.raises(SlayerError, match="shape-infer"):
        simulate(b.build(), np.ones((2, 3)))
