"""Fused ``shift → synapse → cuba`` chains (:mod:`slayerc.runtime.fixed.fused`) against the
same simulator run node by node: bit for bit on convolutions of every stride, padding,
dilation and grouping, dense layers with either sign of weight exponent and biases, graded
neurons, delays of 0..3 steps, batches, streamed chunks, integer payloads up to the int32
and int64 accumulator bounds, and the fallbacks (non-integer input, numba off, recorded
inner nodes)."""

from __future__ import annotations

import os
import time

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


@pytest.mark.parametrize(("others", "want"), [(0, 4), (1, 3), (2, 2), (8, 1), (None, 2)])
def test_threads_leave_the_cores_other_work_uses_now(
        monkeypatch: pytest.MonkeyPatch, others: int | None, want: int) -> None:
    """Other processes' runnable threads at the call are the load; a stale load average (2.0
    here) counts only where that count is missing."""
    monkeypatch.setattr(fused, "THREADS", 0)
    monkeypatch.setattr(os, "cpu_count", lambda: 4)
    monkeypatch.setattr(os, "getloadavg", lambda: (2.0, 2.0, 2.0))
    monkeypatch.setattr(fused, "runnable", lambda: others)
    assert fused.threads() == want


def test_threads_ignore_a_passing_runnable_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    """A thread runnable in one look only (a kernel worker, a short command) does not take a
    core away; one in every look does."""
    monkeypatch.setattr(fused, "THREADS", 0)
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    looks = iter([1, 0, 1, 1])
    monkeypatch.setattr(fused, "runnable", lambda: next(looks))
    assert fused.threads() == 2
    looks = iter([1] * fused.SAMPLES)
    assert fused.threads() == 1


def test_runnable_counts_a_busy_process() -> None:
    if fused.runnable() is None:
        pytest.skip("no /proc/loadavg on this platform")
    import multiprocessing  # noqa: PLC0415

    quiet = min(fused.runnable() for _ in range(20))
    stop = multiprocessing.Event()
    busy = multiprocessing.Process(target=_spin, args=(stop,), daemon=True)
    busy.start()
    try:
        deadline = time.monotonic() + 5
        seen = quiet
        while seen <= quiet and time.monotonic() < deadline:
            seen = max(fused.runnable() for _ in range(20))
    finally:
        stop.set()
        busy.join()
    assert seen > quiet


def test_own_running_counts_this_process_busy_threads() -> None:
    """A worker thread of this process that is still running is not counted as another
    process's load (it is subtracted from the machine's runnable count)."""
    if fused.runnable() is None:
        pytest.skip("no /proc on this platform")
    import threading  # noqa: PLC0415

    done = threading.Event()
    big = np.random.default_rng(0).random(1 << 20)

    def work() -> None:  # numpy's sort releases the GIL: the thread runs beside this one
        while not done.is_set():
            np.sort(big)

    worker = threading.Thread(target=work, daemon=True)
    worker.start()
    try:
        deadline = time.monotonic() + 5
        seen = 1
        while seen < 2 and time.monotonic() < deadline:
            seen = fused.own_running()
    finally:
        done.set()
        worker.join()
    assert seen >= 2
    assert fused.own_running() >= 1


def _spin(stop) -> None:
    while not stop.is_set():
        pass


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


def _pixel_net(seed: int, cin: int, hi: int = 120, graded: bool = False) -> Graph:
    """input -> [shift] conv (``cin`` input channels, one group) -> cuba -> flatten -> dense ->
    cuba, random geometry."""
    rng = np.random.default_rng(seed)
    k, stride, pad = int(rng.integers(1, 4)), int(rng.integers(1, 3)), int(rng.integers(0, 2))
    lif = {"threshold": 0.5, "current_decay": 0.25, "voltage_decay": 0.0625}
    b = GraphBuilder()
    x = b.add(ops.Input, "inp", shape=(cin, 7, 6), dtype="f32")
    x = b.add(ops.Shift, "c_shift", [x], steps=1)
    y = b.add(ops.Conv, "c", [x], weight=b.param("c.w", _w(rng, (5, cin, k, k), hi)),
              stride=stride, padding=pad, dilation=1 + seed % 2)
    y = b.add(ops.Cuba, "n", [y], **lif, graded=graded)
    y = b.add(ops.Flatten, "flat", [y])
    dil = 1 + seed % 2
    width = 5 * np.prod([(n + 2 * pad - dil * (k - 1) - 1) // stride + 1 for n in (7, 6)])
    y = b.add(ops.Dense, "fc", [y], weight=b.param("fc.w", _w(rng, (3, int(width)), hi)))
    y = b.add(ops.Cuba, "m", [y], **lif)
    b.add(ops.Output, "out", [y])
    return shape_infer.run(b.build())


@pytest.mark.parametrize("cin", [8, 13, 64])
@pytest.mark.parametrize("seed", range(3))
def test_convolutions_by_pixel_equal_node_by_node(cin: int, seed: int) -> None:
    """8..64 input channels scatter by pixel (every spiking channel of a pixel summed first,
    up to all 64: bit 63 of the channel mask); spikes, payloads, graded neurons."""
    g = _pixel_net(seed, cin, graded=seed == 2)
    sim = Simulator(g, None)
    assert sim.fusions["n"].tables.mode == fused.PIXELS
    spikes = _spikes(seed, (2, *g["inp"].shape, 9), rate=0.5)
    spikes[0, :, 3, 2, 4] = 1  # every channel of one pixel at once
    payloads = spikes * np.random.default_rng(seed).integers(-3, 4, spikes.shape)
    for x in (spikes, payloads):
        got = sim.run(x, record="layers")
        ref = _unfused(g, x)
        assert got["n"].any()
        for name, arr in ref.items():
            np.testing.assert_array_equal(got[name], arr, err_msg=name)


def test_convolutions_outside_the_pixel_range_scatter_by_input() -> None:
    for cin, mode in ((7, fused.SEGMENTS), (65, fused.SEGMENTS), (8, fused.PIXELS)):
        g = _pixel_net(0, cin)
        assert Simulator(g, None).fusions["n"].tables.mode == mode, cin
    g = _pixel_net(1, 65)
    x = _spikes(1, (2, *g["inp"].shape, 6), rate=0.5)
    got = Simulator(g, None).run(x, record="layers")
    for name, arr in _unfused(g, x).items():
        np.testing.assert_array_equal(got[name], arr, err_msg=name)


def test_weights_beyond_int16_sums_run_node_by_node(monkeypatch: pytest.MonkeyPatch) -> None:
    """The scatter sums up to eight weights in int16 lanes, which needs ``|w| < 2^12``; a
    quant-legal graph's weights are below 2^8, but tables that could not promise it (here:
    forced to int32) leave the layer to the ordinary kernels, with the same result."""
    g = _pixel_net(4, 16)
    x = _spikes(4, (2, *g["inp"].shape, 8), rate=0.6)
    fast_run = Simulator(g, None).run(x, record="layers")
    assert set(Simulator(g, None).fusions) == {"n", "m"}
    monkeypatch.setattr(fused, "_weight_table", lambda w: np.ascontiguousarray(w, np.int32))
    sim = Simulator(g, None)
    assert not sim.fusions
    for name, arr in sim.run(x, record="layers").items():
        np.testing.assert_array_equal(fast_run[name], arr, err_msg=name)


def _neuron_types(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The integer type of the neuron state in each fused call."""
    seen: list[str] = []
    orig = fused._layer

    def layer(*a):  # noqa: ANN002, ANN202
        seen.append(str(a[-4].dtype))
        return orig(*a)
    monkeypatch.setattr(fused, "_layer", layer)
    return seen


def test_int32_neurons_only_within_their_bound(monkeypatch: pytest.MonkeyPatch) -> None:
    """The int32 neuron loop runs while every synaptic input stays below 2^18 (then one fold
    keeps the current in 24 bits); a larger input re-runs the layer with int64 neurons, which
    let the current leave 24 bits as the int64 loop always did.  Both equal node by node."""
    g = _pixel_net(5, 8)
    sim = Simulator(g, None)
    monkeypatch.setattr(fused, "THREADS", 1)
    types = _neuron_types(monkeypatch)
    x = _spikes(5, (2, *g["inp"].shape, 10), rate=0.5)
    got = sim.run(x, record="layers")
    assert types[0] == "int32"
    for name, arr in _unfused(g, x).items():
        np.testing.assert_array_equal(got[name], arr, err_msg=name)
    fusion = sim.fusions["n"]
    limit = fused.small_limit(fusion, [np.zeros((2, 1))])
    assert limit >= 1
    for value, want in ((limit, ["int32"]), (limit + 1, ["int32", "int64"])):
        types.clear()
        big = x.copy()
        big[1, 2, 3, 3, 2] = value
        got = sim.run(big, record="layers")
        assert types[:-1] == want, value  # the last call: the dense layer
        for name, arr in _unfused(g, big).items():
            np.testing.assert_array_equal(got[name], arr, err_msg=name)
    # a current beyond 2^23 left by an earlier chunk: int64 neurons from the start
    assert fused.small_limit(fusion, [np.full((2, 1), float(1 << 24))]) == 0


@pytest.mark.parametrize("chunk", [1, 4])
def test_binary_spikes_pass_between_layers_as_bytes(chunk: int) -> None:
    """Binary spikes travel between fused layers as uint8; recorded, streamed and exported
    values are the same integers."""
    g = _pixel_net(6, 8)
    x = _spikes(6, (2, *g["inp"].shape, 9), rate=0.5)
    whole = Simulator(g, None).run(x, record="layers")
    assert whole["n"].dtype == np.int32 and set(np.unique(whole["n"])) == {0, 1}
    parts = list(Simulator(g, None).stream(x, record="layers", chunk_steps=chunk))
    for name, arr in whole.items():
        streamed = np.moveaxis(np.concatenate([p[name] for p in parts]), 0, -1)
        np.testing.assert_array_equal(streamed, arr, err_msg=name)


@pytest.mark.parametrize(("value", "why"), [(np.nan, "is not a finite number"),
                                            (40000, "is out of range"),
                                            (-np.inf, "is not a finite number")])
def test_an_input_read_only_by_fused_layers_is_checked_by_their_scan(
        monkeypatch: pytest.MonkeyPatch, value: float, why: str) -> None:
    """No separate pass over such an input: the first layer's scan meets every non-zero
    entry, and a bad one (in a later chunk of samples, too) gets the usual error."""
    from slayerc.ir.target import LOIHI2  # noqa: PLC0415
    from slayerc.runtime.fixed import inputs, simulator  # noqa: PLC0415

    g = _pixel_net(7, 8)
    sim = Simulator(g, LOIHI2)
    checks: list[str] = []
    orig = inputs.Source.check_all
    monkeypatch.setattr(inputs.Source, "check_all",
                        lambda self, steps: (checks.append(self.node.name), orig(self, steps)))
    monkeypatch.setattr(simulator, "CHUNK_BYTES", 1)  # one sample per chunk
    monkeypatch.setattr(fused, "THREADS", 1)
    x = _spikes(7, (3, *g["inp"].shape, 6), rate=0.5)
    sim.run(x)
    assert checks == []
    assert sim.run(x, record="c_shift") and checks == ["inp"]  # a recorded shift: checked first
    checks.clear()
    x[2, 5, 1, 4, 3] = value
    with pytest.raises(RuntimeSimError, match=rf"input value {value:g} at step 3, sample 2, "
                                              rf"neuron \(5, 1, 4\) {why}"):
        sim.run(x)
    assert checks == ["inp"]


def _conv_chain(seed: int, graded: bool = False) -> Graph:
    """input -> conv (2 channels) -> cuba -> [shift] conv (8 channels, by pixel) -> cuba ->
    [shift] conv (12 channels, by pixel) -> cuba -> flatten -> dense -> cuba."""
    rng = np.random.default_rng(seed)
    lif = {"threshold": 0.25, "current_decay": 0.25, "voltage_decay": 0.0625}
    b = GraphBuilder()
    y = b.add(ops.Input, "inp", shape=(2, 9, 8), dtype="f32")
    for k, (cin, cout) in enumerate(((2, 8), (8, 12), (12, 4))):
        if k:
            y = b.add(ops.Shift, f"c{k}_shift", [y], steps=k)
        y = b.add(ops.Conv, f"c{k}", [y], weight=b.param(f"c{k}.w", _w(rng, (cout, cin, 3, 3))),
                  stride=1 + k % 2, padding=1)
        y = b.add(ops.Cuba, f"n{k}", [y], **lif, graded=graded and k == 1)
    y = b.add(ops.Flatten, "flat", [y])
    y = b.add(ops.Dense, "fc", [y], weight=b.param("fc.w", _w(rng, (3, 4 * 5 * 4))))
    y = b.add(ops.Cuba, "m", [y], **lif)
    b.add(ops.Output, "out", [y])
    return shape_infer.run(b.build())


def _links(monkeypatch: pytest.MonkeyPatch) -> list[tuple[bool, bool]]:
    """(channel-last input, channel-last output) of each fused call."""
    seen: list[tuple[bool, bool]] = []
    orig = fused.run

    def run(*a):  # noqa: ANN002, ANN202
        seen.append((a[6], a[7]))
        return orig(*a)
    monkeypatch.setattr(fused, "run", run)
    return seen


@pytest.mark.parametrize("seed", range(3))
def test_spikes_pass_channel_last_between_convolutions(
        monkeypatch: pytest.MonkeyPatch, seed: int) -> None:
    """A conv layer whose binary spikes only a by-pixel conv layer reads runs its neurons in
    H, W, C order and hands its spikes over channel-last (no transposes); the output, the
    state left for a next chunk and the delay carried across chunks are the same."""
    g = _conv_chain(seed)
    sim = Simulator(g, None)
    assert {k: f.feeds for k, f in sim.fusions.items()} == \
        {"n0": "n1", "n1": "n2", "n2": None, "m": None}
    links = _links(monkeypatch)
    x = _spikes(seed, (3, *g["inp"].shape, 12), rate=0.4)
    got = sim.run(x)["out"]
    assert links[:3] == [(False, True), (True, True), (True, False)]
    ref = _unfused(g, x, record="out")["out"]
    np.testing.assert_array_equal(got, ref)
    assert _unfused(g, x, record="n2")["n2"].any(), "the chain must spike"
    for chunk in (1, 5):
        parts = list(Simulator(g, None).stream(x, chunk_steps=chunk))
        np.testing.assert_array_equal(np.moveaxis(np.concatenate([p["out"] for p in parts]),
                                                  0, -1), ref)


@pytest.mark.parametrize("threads", [1, 2])
def test_neuron_states_reach_the_compiled_loop_in_rows(
        monkeypatch: pytest.MonkeyPatch, threads: int) -> None:
    """Each sample's state is a contiguous row in every fused layer, the channel-last ones
    included (their permuted state was column-major, which ran the layer 2.3x slower)."""
    g = _conv_chain(0)
    monkeypatch.setattr(fused, "THREADS", threads)
    seen: list[bool] = []
    orig = fused._layer

    def layer(*a):  # noqa: ANN002, ANN202
        seen.append(all(s.flags.c_contiguous for s in a[-4:-2]))
        return orig(*a)
    monkeypatch.setattr(fused, "_layer", layer)
    x = _spikes(0, (4, *g["inp"].shape, 6), rate=0.4)
    got = Simulator(g, None).run(x)["out"]
    assert len(seen) >= 4 and all(seen)
    np.testing.assert_array_equal(got, _unfused(g, x, record="out")["out"])


def test_channel_last_links_give_way(monkeypatch: pytest.MonkeyPatch) -> None:
    """No link to record a layer (its spikes stay channel-first), from a graded layer, or when
    the producer falls back to the ordinary kernels (its consumer then reads channel-first)."""
    g = _conv_chain(1)
    x = _spikes(1, (2, *g["inp"].shape, 10), rate=0.4)
    links = _links(monkeypatch)
    got = Simulator(g, None).run(x, record="n1")
    assert links[:3] == [(False, True), (True, False), (False, False)]
    ref = _unfused(g, x, record=["n1", "out"])
    for name in ("n1", "out"):
        np.testing.assert_array_equal(got[name], ref[name], err_msg=name)
    assert Simulator(_conv_chain(1, graded=True), None).fusions["n1"].feeds is None
    big = x * 1000.0  # beyond lowered accumulator bounds: n0 runs node by node
    tables = Simulator(g, None).fusions["n0"].tables
    monkeypatch.setattr(fused, "I32_MAX", 500.0 * tables.reach)
    monkeypatch.setattr(fused, "I64_SAFE", 500.0 * tables.reach)
    links.clear()
    got = Simulator(g, None).run(big)["out"]
    assert links[0] == (False, True) and links[1] == (False, True)
    np.testing.assert_array_equal(got, _unfused(g, big, record="out")["out"])


@pytest.mark.parametrize("graded", [False, True])
def test_int32_neuron_step_equals_the_int64_step_within_its_bounds(graded: bool) -> None:
    """:func:`fused._cuba_step32` against :func:`fused._cuba_step` over 40 steps from random
    and extreme states, decays, thresholds, biases and inputs at the edge of the bounds."""
    rng = np.random.default_rng(int(graded))
    m, w, y_max = 4096, 1 << 23, fused.SMALL_Y - 1
    edge = lambda lo, hi: np.concatenate([  # noqa: E731
        np.clip([lo, hi, lo + 1, hi - 1, 0, -1, 1], lo, hi), rng.integers(lo, hi + 1, m - 7)])
    u, v = edge(-w + 1, w), edge(-w + 1, w - 1)
    mu, mv = edge(0, 4096), rng.permutation(edge(0, 4096))
    vth, bias = rng.integers(0, w, m), rng.permutation(edge(-(1 << 20), 1 << 20))
    out64, out32 = np.zeros(m), np.zeros(m)
    u64, v64, u32, v32 = u.copy(), v.copy(), u.astype(np.int32), v.astype(np.int32)
    i32 = [a.astype(np.int32) for a in (mu, mv, vth, bias)]
    for _ in range(40):
        y = rng.permutation(edge(-y_max, y_max))
        fused._cuba_step(y, mu, mv, vth, bias, graded, u64, v64, out64)
        fused._cuba_step32(y.astype(np.int32), *i32, graded, u32, v32, out32)
        np.testing.assert_array_equal(u32, u64)
        np.testing.assert_array_equal(v32, v64)
        np.testing.assert_array_equal(out32, out64)
    assert out64.any() and (u64 < 0).any()
