"""Fused ``shift → synapse → cuba`` chains (:mod:`slayerc.runtime.fixed.fused`) against the
same simulator run node by node: bit for bit on convolutions of every stride, padding,
dilation and grouping, dense layers with either sign of weight exponent and biases, graded
neurons, delays of 0..3 steps, batches, streamed chunks, integer payloads up to the int32
and int64 accumulator bounds, and the fallbacks (non-integer input, numba off, recorded
inner nodes)."""

from __future__ import annotations

import os

import numpy as np
import pytest

from slayerc.errors import RuntimeSimError
from slayerc.ir import ops
from slayerc.ir.core import Graph, GraphBuilder
from slayerc.passes import shape_infer
from slayerc.runtime.fixed import fast, fused
from slayerc.runtime.fixed.simulator import Simulator

pytestmark = pytest.mark.skipif(not fast.AVAILABLE, reason="the fused path needs numba")


def _w(rng: np.random.Generator, shape: tuple[int, ...], hi: int = 120) -> np.ndarray:
    return (rng.integers(-hi // 2, hi // 2 + 1, shape) * 2 / 64).astype(np.float32)


def _net(seed: int, delay: int = 1, graded: bool = False, bias: bool = False) -> Graph:
    """input -> [shift] conv -> cuba -> [shift] grouped conv -> cuba -> flatten -> [shift]
    dense -> cuba, random geometry."""
    rng = np.random.default_rng(seed)
    c0, c1 = int(rng.integers(1, 4)), 2 * int(rng.integers(1, 4))
    k, stride, pad = int(rng.integers(1, 5)), int(rng.integers(1, 3)), int(rng.integers(0, 3))
    lif = {"threshold": 0.5, "current_decay": 0.25, "voltage_decay": 0.0625}
    b = GraphBuilder()
    x = b.add(ops.Input, "inp", shape=(c0, 11, 9), dtype="f32")

    def shifted(y: str, name: str) -> str:
        return b.add(ops.Shift, f"{name}_shift", [y], steps=delay) if delay else y

    extra = {"bias": b.param("c1.b", _w(rng, (c1,), 40))} if bias else {}
    strides, pads, dils = (stride, 1 + seed % 2), (pad, pad % 2), (1 + seed % 3, 1 + seed // 2 % 2)
    y = b.add(ops.Conv, "c1", [shifted(x, "c1")], weight=b.param("c1.w", _w(rng, (c1, c0, k, k))),
              stride=strides, padding=pads, dilation=dils, **extra)
    y = b.add(ops.Cuba, "n1", [y], **lif)
    w2 = b.param("c2.w", _w(rng, (4, c1 // 2, 3, 3)))
    y = b.add(ops.Conv, "c2", [shifted(y, "c2")], weight=w2, padding=(1, 1), groups=2)
    y = b.add(ops.Cuba, "n2", [y], **lif, graded=graded)
    y = b.add(ops.Flatten, "flat", [y])
    hw = [(n + 2 * p - d * (k - 1) - 1) // s + 1
          for n, p, d, s in zip((11, 9), pads, dils, strides)]
    width = 4 * hw[0] * hw[1]
    w = _w(rng, (6, width), 250 if seed % 2 else 16)  # small weights: a weight_exp
    extra = {"bias": b.param("fc.b", _w(rng, (6,), 40))} if bias else {}
    y = b.add(ops.Dense, "fc", [shifted(y, "fc")], weight=b.param("fc.w", w), **extra)
    y = b.add(ops.Cuba, "n3", [y], **lif)
    b.add(ops.Output, "out", [y])
    return shape_infer.run(b.build())


def _spikes(seed: int, shape: tuple[int, ...], rate: float = 0.3) -> np.ndarray:
    return (np.random.default_rng(seed).random(shape) < rate).astype(np.float32)


def _unfused(g: Graph, x: np.ndarray, record: str | list[str] = "layers",
             steps: int | None = None) -> dict[str, np.ndarray]:
    sim = Simulator(g, None)
    sim.fusions = {}
    return sim.run(x, steps, record=record)


def _counting(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    calls: list[bool] = []
    orig = fused.run

    def run(*a, **k):  # noqa: ANN002, ANN003, ANN202
        calls.append(orig(*a, **k))
        return calls[-1]
    monkeypatch.setattr(fused, "run", run)
    return calls


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("delay", [0, 1, 3])
def test_fused_equals_node_by_node(seed: int, delay: int, monkeypatch: pytest.MonkeyPatch) -> None:
    graded = seed % 3 == 1
    g = _net(seed, delay, graded=graded, bias=seed % 2 == 0)
    sim = Simulator(g, None)
    assert set(sim.fusions) == {"n1", "n2", "n3"}
    x = _spikes(seed, (3, *g["inp"].shape, 14))
    calls = _counting(monkeypatch)
    got = sim.run(x, record="layers")
    assert calls == [True] * (2 if graded else 3)  # graded messages into fc: node by node
    ref = _unfused(g, x)
    assert any(got[n].any() for n in ("n1", "n2")), "the test net must spike"
    for name, arr in ref.items():
        np.testing.assert_array_equal(got[name], arr, err_msg=name)


@pytest.mark.parametrize("chunk", [1, 2, 5])
def test_streamed_chunks_carry_state_and_delay(chunk: int) -> None:
    g = _net(4, delay=2)
    x = _spikes(9, (2, *g["inp"].shape, 11))
    whole = _unfused(g, x)
    parts = list(Simulator(g, None).stream(x, record="layers", chunk_steps=chunk))
    for name, arr in whole.items():
        streamed = np.concatenate([p[name] for p in parts])  # time-major
        np.testing.assert_array_equal(np.moveaxis(streamed, 0, -1), arr, err_msg=name)


def test_integer_payloads_take_int64_then_the_ordinary_path(
        monkeypatch: pytest.MonkeyPatch) -> None:
    g = _net(2, delay=1)
    rng = np.random.default_rng(1)
    x = rng.integers(-3, 4, (2, *g["inp"].shape, 9)).astype(np.float64)
    calls = _counting(monkeypatch)
    got = Simulator(g, None).run(x, record="layers")
    assert calls[0] is True
    ref = _unfused(g, x)
    for name, arr in ref.items():
        np.testing.assert_array_equal(got[name], arr, err_msg=name)
    tables = Simulator(g, None).fusions["n1"].tables
    big = np.zeros_like(x)
    big[0, 0, 3, 4, 2] = np.floor(fused.I32_MAX / tables.reach) + 1  # int64 accumulator
    big[1, 0, 5, 5, 4] = -(1 << 20)
    np.testing.assert_array_equal(Simulator(g, None).run(big, record="layers")["n1"],
                                  _unfused(g, big)["n1"])
    # beyond the int64 bound (lowered here: inputs are at most 2^31): node by node
    monkeypatch.setattr(fused, "I64_SAFE", float(1 << 21) * tables.reach)
    calls.clear()
    np.testing.assert_array_equal(Simulator(g, None).run(big, record="layers")["n1"],
                                  _unfused(g, big)["n1"])
    assert calls[0] is False


def test_non_integer_input_falls_back_and_names_the_synapse() -> None:
    g = _net(1, delay=1)
    x = _spikes(2, (*g["inp"].shape, 5))
    x[0, 1, 1, 3] = 0.5
    with pytest.raises(RuntimeSimError, match="c1.*integer spikes"):
        Simulator(g, None).run(x)


def test_recorded_inner_nodes_and_numba_off_run_node_by_node(
        monkeypatch: pytest.MonkeyPatch) -> None:
    g = _net(3, delay=1)
    x = _spikes(4, (2, *g["inp"].shape, 8))
    calls = _counting(monkeypatch)
    got = Simulator(g, None).run(x, record=["c1", "c2_shift", "n3"])
    assert len(calls) == 1  # only n3's chain is fused: c1 and c2_shift are recorded
    ref = _unfused(g, x, record=["c1", "c2_shift", "n3"])
    for name, arr in ref.items():
        np.testing.assert_array_equal(got[name], arr, err_msg=name)
    old = fast.set_enabled(False)
    try:
        calls.clear()
        off = Simulator(g, None).run(x, record="layers")
    finally:
        fast.set_enabled(old)
    assert not calls
    on = Simulator(g, None).run(x, record="layers")
    for name, arr in on.items():
        np.testing.assert_array_equal(off[name], arr, err_msg=name)


def test_samples_split_over_threads_equal_one_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    g = _net(5, delay=1, bias=True)
    x = _spikes(6, (5, *g["inp"].shape, 10))
    monkeypatch.setattr(fused, "THREADS", 1)
    one = Simulator(g, None).run(x, record="layers")
    monkeypatch.setattr(fused, "THREADS", 3)
    calls = _counting(monkeypatch)
    three = Simulator(g, None).run(x, record="layers")
    assert calls and all(calls)
    for name, arr in one.items():
        np.testing.assert_array_equal(three[name], arr, err_msg=name)
    monkeypatch.setattr(fused, "THREADS", 0)
    assert 1 <= fused.threads() <= (os.cpu_count() or 1)  # from the load average


def test_scalar_conv_attributes_and_a_single_neuron_dense() -> None:
    rng = np.random.default_rng(8)
    b = GraphBuilder()
    x = b.add(ops.Input, "inp", shape=(2, 7, 7), dtype="f32")
    y = b.add(ops.Conv, "c", [x], weight=b.param("c.w", _w(rng, (3, 2, 3, 3))), stride=2,
              padding=1, dilation=1)
    y = b.add(ops.Cuba, "n", [y], threshold=0.25, current_decay=0.5, voltage_decay=0.125)
    y = b.add(ops.Flatten, "f", [y])
    y = b.add(ops.Dense, "d", [y], weight=b.param("d.w", _w(rng, (1, 48))))
    y = b.add(ops.Cuba, "m", [y], threshold=0.25, current_decay=0.5, voltage_decay=0.125)
    b.add(ops.Output, "out", [y])
    g = shape_infer.run(b.build())
    assert set(Simulator(g, None).fusions) == {"n", "m"}
    x = _spikes(3, (4, 2, 7, 7, 9), 0.5)
    got = Simulator(g, None).run(x, record="layers")
    for name, arr in _unfused(g, x).items():
        np.testing.assert_array_equal(got[name], arr, err_msg=name)


@pytest.mark.parametrize("width", [1, 7, 40])
def test_dense_rows_four_at_a_time_with_payloads(width: int) -> None:
    rng = np.random.default_rng(width)
    b = GraphBuilder()
    x = b.add(ops.Input, "inp", shape=(23,), dtype="f32")
    y = b.add(ops.Shift, "s", [x], steps=1)
    y = b.add(ops.Dense, "d", [y], weight=b.param("d.w", _w(rng, (width, 23), 250)))
    y = b.add(ops.Cuba, "n", [y], threshold=0.25, current_decay=0.5, voltage_decay=0.125,
              graded=True)
    b.add(ops.Output, "out", [y])
    g = shape_infer.run(b.build())
    assert set(Simulator(g, None).fusions) == {"n"}
    spikes = _spikes(width, (3, 23, 12), 0.6)
    payloads = spikes * rng.integers(-5, 6, spikes.shape)  # 0/1 rows and others mixed
    for x in (spikes, payloads):
        got = Simulator(g, None).run(x, record="layers")
        np.testing.assert_array_equal(got["n"], _unfused(g, x)["n"])
