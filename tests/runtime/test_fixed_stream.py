"""Streamed runs (``Simulator.stream``): chunks of steps with the neuron and delay state carried
across chunks must reproduce the whole-sequence run bit for bit, in every layer, on every
lava-dl reference netlist; with the compiled (numba) neuron loops and with the numpy kernels."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from slayerc.driver import load_netlist
from slayerc.runtime.fixed import fast
from slayerc.runtime.fixed.simulator import Simulator

DATA = Path(__file__).resolve().parents[1] / "data" / "lava-dl"
CASES = sorted(p.stem for p in DATA.glob("*.net") if (DATA / f"{p.stem}.input.npy").exists())


def _sim(name: str) -> tuple[Simulator, np.ndarray]:
    x = np.load(DATA / f"{name}.input.npy")
    shape = tuple(x.shape[-4:-1]) if x.ndim >= 4 else None
    return Simulator(load_netlist(DATA / f"{name}.net", shape)), x


def _joined(sim: Simulator, x: np.ndarray, chunk: int, steps: int | None = None
            ) -> dict[str, np.ndarray]:
    stream = sim.stream(x, steps, record="all", chunk_steps=chunk)
    parts: dict[str, list[np.ndarray]] = {m: [] for m in stream.names}
    sizes = []
    for piece in stream:
        sizes.append(len(next(iter(piece.values()))))
        for m, arr in piece.items():
            parts[m].append(arr)
    assert sizes == [min(chunk, stream.steps - t) for t in range(0, stream.steps, chunk)]
    out = {m: np.moveaxis(np.concatenate(p), 0, -1) for m, p in parts.items()}
    return out if stream.batched else {m: a[0] for m, a in out.items()}


def _assert_same(got: dict[str, np.ndarray], want: dict[str, np.ndarray], what: str) -> None:
    assert sorted(got) == sorted(want)
    for m in want:
        assert got[m].dtype == want[m].dtype, (what, m)
        np.testing.assert_array_equal(got[m], want[m], err_msg=f"{what} %{m}")


def test_cases_found() -> None:
    assert len(CASES) >= 15 and "cuba_rec" in CASES and "cuba_delay" in CASES


@pytest.mark.parametrize("name", CASES)
def test_chunked_equals_whole_run(name: str) -> None:
    sim, x = _sim(name)
    want = sim.run(x, record="all")
    assert any(np.count_nonzero(a) for m, a in want.items() if m != "inp")
    for chunk in (1, 7, 16):
        _assert_same(_joined(sim, x, chunk), want, f"{name} chunk {chunk}")


@pytest.mark.parametrize("name", ["cuba_dense", "cuba_delay", "cuba_rec", "alif_dense", "rf",
                                  "adrf_dense", "sdnn_dense", "cuba_graded", "sdnn_pool"])
def test_chunked_numpy_kernels_equal_whole_run(name: str) -> None:
    old = fast.set_enabled(False)
    try:
        sim, x = _sim(name)
        want = sim.run(x, record="all")
        _assert_same(_joined(sim, x, 9), want, f"{name} numpy")
    finally:
        fast.set_enabled(old)
    sim, x = _sim(name)  # the compiled loops from the numpy state, and back
    _assert_same(_joined(sim, x, 9), want, f"{name} numba")


@pytest.mark.parametrize("name", ["cuba_dense", "cuba_conv", "sdnn_conv"])
def test_batched_stream_with_padding(name: str) -> None:
    sim, x = _sim(name)
    batch = np.stack([x, x[..., ::-1].copy()])
    steps = x.shape[-1] + 11
    want = sim.run(batch, steps, record="all")
    _assert_same(_joined(sim, batch, 13, steps), want, f"{name} batched")


def test_stream_memory_does_not_hold_the_sequence() -> None:
    sim, x = _sim("cuba_dense")
    stream = sim.stream(x, 10**9)
    assert stream.steps == 10**9 and stream.chunk_steps < 10**6
    first = next(iter(stream))
    out = first[sim.g.outputs[0].name]
    assert out.shape == (stream.chunk_steps, 1, *stream.shapes[sim.g.outputs[0].name])


def test_progress_bar_counts_steps_and_closes(capsys) -> None:
    from slayerc.cli import _step_bar

    bar = _step_bar(True)
    for done in (4000, 8000, 10_000):
        bar(done, 10_000)
    bar(-1, 0)
    err = capsys.readouterr().err
    assert "/10.0k" in err and "step/s" in err  # tqdm redraws at most every 0.1 s
    quiet = _step_bar(False)
    quiet(5, 10)
    quiet(-1, 0)
    assert capsys.readouterr().err == ""
