"""The fixed-point simulator's fast paths against its step-by-step float64 reference.

The fast paths: every feed-forward node runs over the whole sequence at once (one convolution
over all ``T·N`` frames), convolutions run in float32 when the integer bound allows it, and a
large batch runs in groups of samples.  The reference steps every node one time step at a time
(``_Run._stepped`` on each component, as for a recurrent one) with float64 convolutions.  Both
must agree exactly, including on batches and on inputs large enough to force float64 and the
24-bit wrap.
"""

from __future__ import annotations

import numpy as np
import pytest

from slayerc.ir import ops
from slayerc.ir.core import Graph, GraphBuilder
from slayerc.passes import shape_infer
from slayerc.runtime.fixed import kernels, simulator
from slayerc.runtime.fixed.inputs import inputs as _inputs
from slayerc.runtime.fixed.simulator import Simulator, _Run


def _w(rng: np.random.Generator, shape: tuple[int, ...], hi: int = 120) -> np.ndarray:
    """Random netx-grid weights (integers / 64, even, within 8 bits)."""
    return (rng.integers(-hi // 2, hi // 2 + 1, shape) * 2 / 64).astype(np.float32)


def _conv_net(seed: int, width: int = 0) -> Graph:
    """A random conv -> pool -> grouped conv -> dense netlist with cuba neurons (first built
    without the dense layer to learn its input width)."""
    rng = np.random.default_rng(seed)
    c0, c1 = int(rng.integers(1, 4)), 2 * int(rng.integers(1, 4))
    k, stride, pad = int(rng.integers(2, 5)), int(rng.integers(1, 3)), int(rng.integers(0, 2))
    lif = {"threshold": 0.5, "current_decay": 0.25, "voltage_decay": 0.0625}
    b = GraphBuilder()
    x = b.add(ops.Input, "inp", shape=(c0, 12, 11), dtype="f32")
    s = b.add(ops.Shift, "c1_shift", [x], steps=1)
    y = b.add(ops.Conv, "c1", [s], weight=b.param("c1.w", _w(rng, (c1, c0, k, k))),
              stride=(stride, stride), padding=(pad, pad), dilation=(1, 1 + seed % 2))
    y = b.add(ops.Cuba, "n1", [y], **lif)
    pool = np.full((1, 1, 2, 2), 0.5, np.float32)
    y = b.add(ops.Pool, "p1", [y], weight=b.param("p1.w", pool), kernel=(2, 2))
    y = b.add(ops.Cuba, "n2", [y], **lif)
    s = b.add(ops.Shift, "c2_shift", [y], steps=1)
    y = b.add(ops.Conv, "c2", [s], weight=b.param("c2.w", _w(rng, (4, c1 // 2, 3, 3))),
              padding=(1, 1), groups=2)
    y = b.add(ops.Cuba, "n3", [y], **lif)
    y = b.add(ops.Flatten, "flat", [y])
    if not width:
        b.add(ops.Output, "out", [y])
        return _conv_net(seed, int(np.prod(shape_infer.run(b.build())["flat"].shape)))
    s = b.add(ops.Shift, "fc_shift", [y], steps=1)
    y = b.add(ops.Dense, "fc", [s], weight=b.param("fc.w", _w(rng, (5, width))))
    y = b.add(ops.Cuba, "n4", [y], **lif)
    b.add(ops.Output, "out", [y])
    return shape_infer.run(b.build())


def _stepped(g: Graph, x: np.ndarray) -> dict[str, np.ndarray]:
    """Every node one step at a time (float64 convolutions): the reference."""
    sim = Simulator(g, None)
    data, _ = _inputs(g, x, None)
    run = _Run(g, data, sim.kernels, sim.units, (None, frozenset()))
    for unit in run.units:
        if unit[0] not in run.values:
            run._stepped(unit)
    return {k: simulator._export(v, True) for k, v in run.values.items() if k in g.nodes}


def _spikes(seed: int, shape: tuple[int, ...], rate: float = 0.3) -> np.ndarray:
    return (np.random.default_rng(seed).random(shape) < rate).astype(np.float32)


@pytest.mark.parametrize("seed", range(4))
def test_sequence_path_equals_stepped_float64_reference(seed: int,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    g = _conv_net(seed)
    x = _spikes(seed, (3, *g["inp"].shape, 16))
    fast = Simulator(g, None).run(x, record="all")
    monkeypatch.setattr(kernels, "F32_EXACT", 0.0)
    ref = _stepped(g, x)
    assert any(fast[n].any() for n in ("n1", "n2", "n3")), "the test net must spike"
    for name, arr in fast.items():
        np.testing.assert_array_equal(arr, ref[name], err_msg=name)


def test_batch_groups_equal_one_run_and_single_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    g = _conv_net(5)
    x = _spikes(7, (5, *g["inp"].shape, 12))
    whole = Simulator(g, None).run(x, record="all")
    monkeypatch.setattr(simulator, "CHUNK_BYTES", 1)  # one sample per group
    assert simulator.chunk_size(g, 12, 5) == 1
    grouped = Simulator(g, None).run(x, record="all")
    for name, arr in whole.items():
        np.testing.assert_array_equal(grouped[name], arr, err_msg=name)
        for i in (0, 4):
            single = Simulator(g, None).run(x[i], record=[name])[name]
            np.testing.assert_array_equal(single, arr[i], err_msg=f"{name} sample {i}")


def test_large_integer_inputs_take_float64_and_wrap_like_the_reference(
        monkeypatch: pytest.MonkeyPatch) -> None:
    # integer payloads up to 2^17 straight into a conv: float32 sums would round, and the
    # 24-bit wrap of the synapse output is reached
    b = GraphBuilder()
    x = b.add(ops.Input, "inp", shape=(2, 6, 6), dtype="f32")
    w = np.full((3, 2, 3, 3), 254 / 64, np.float32)
    w[1] = -w[1]
    w[2, :, 1, 1] = 6 / 64
    y = b.add(ops.Conv, "c", [x], weight=b.param("c.w", w), padding=(1, 1))
    b.add(ops.Output, "out", [y])
    g = shape_infer.run(b.build())
    rng = np.random.default_rng(3)
    data = rng.integers(-(1 << 17), 1 << 17, (2, 2, 6, 6, 5)).astype(np.float64)
    data[0, :, :, :, 0] = (1 << 17) - 1  # 18·(2^17 − 1)·254 wraps at 24 bits
    got = Simulator(g, None).run(data)["out"]
    monkeypatch.setattr(kernels, "F32_EXACT", 0.0)
    ref = _stepped(g, data)["out"]
    np.testing.assert_array_equal(got, ref)
    acc = 18 * ((1 << 17) - 1) * 254
    wrapped = (acc + (1 << 23)) % (1 << 24) - (1 << 23)
    assert got[0, 0, 2, 2, 0] == wrapped and wrapped != acc


def test_float32_path_is_taken_for_spikes_and_skipped_when_inexact() -> None:
    rng = np.random.default_rng(0)
    b = GraphBuilder()
    x = b.add(ops.Input, "inp", shape=(4, 5, 5), dtype="f32")
    y = b.add(ops.Conv, "c", [x], weight=b.param("c.w", _w(rng, (2, 4, 3, 3), 250)))
    b.add(ops.Output, "out", [y])
    g = shape_infer.run(b.build())
    conv = Simulator(g, None).kernels["c"]
    assert isinstance(conv, kernels.Conv)
    assert conv.reach == float(np.abs(g.param("c.w") * 64).reshape(2, -1).sum(1).max())
    spikes = _spikes(1, (7, 4, 5, 5))
    y, bound = conv._convolve(kernels._frames(spikes.astype(np.float64), 3)[0])
    assert bound < kernels.F32_EXACT and y.dtype.is_floating_point
    big = np.full((1, 4, 5, 5), float(1 << 20))
    y, bound = conv._convolve(kernels._frames(big, 3)[0])
    assert bound >= kernels.F32_EXACT
    np.testing.assert_array_equal(y.numpy()[0, :, 0, 0],
                                  (g.param("c.w") * 64).sum(axis=(1, 2, 3)) * float(1 << 20))
