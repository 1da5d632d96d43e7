"""sparsify-masks: masks baked in, dead nodes and neurons removed, outputs exactly equal."""

from __future__ import annotations

import numpy as np
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from slayerc.frontend.trace import trace
from slayerc.ir import GraphBuilder
from slayerc.ir import ops as o
from slayerc.passes import PassManager
from slayerc.passes import sparsify_masks as sm
from slayerc.runtime.interpreter import interpret


def _grid_weights(rng: np.random.Generator, shape, zero_rows=(), zero_cols=()) -> np.ndarray:
    """Weights on the 1/64 grid (sums are exact in any order), some rows/columns zero."""
    w = rng.integers(-40, 41, size=shape).astype(np.float32) / 64
    w[list(zero_rows), :] = 0
    w[:, list(zero_cols)] = 0
    return w


@st.composite
def dense_nets(draw):
    """Dense → neuron layers with masks, delays, shifts, zero rows/columns and a dead branch."""
    rng = np.random.default_rng(draw(st.integers(0, 2**31 - 1)))
    widths = draw(st.lists(st.integers(1, 6), min_size=2, max_size=4))
    b = GraphBuilder()
    x = b.add(o.Input, "x", shape=(widths[0],))
    for k, (cin, cout) in enumerate(zip(widths, widths[1:])):
        zr = draw(st.sets(st.integers(0, cout - 1)))
        zc = draw(st.sets(st.integers(0, cin - 1)))
        mask = b.param(f"m{k}", (rng.random((cout, cin)) < 0.7).astype(np.float32)) \
            if draw(st.booleans()) else None
        bias = b.param(f"b{k}", np.where(rng.random(cout) < 0.5, 0, 0.25).astype(np.float32)) \
            if draw(st.booleans()) else None
        x = b.add(o.Dense, f"fc{k}", [x], weight=b.param(f"w{k}", _grid_weights(
            rng, (cout, cin), zr, zc)), mask=mask, bias=bias)
        if draw(st.booleans()):
            x = b.add(o.Delay, f"d{k}", [x], delay=b.param(f"dl{k}", rng.integers(0, 3, cout)))
        cls = draw(st.sampled_from([o.Cuba, o.Alif]))
        extra = {"current_decay": 0.5, "voltage_decay": 0.25}
        x = b.add(cls, f"n{k}", [x], threshold=0.3, **extra)
        if draw(st.booleans()):
            x = b.add(o.Shift, f"s{k}", [x])
        if draw(st.booleans()):
            b.add(o.Cuba, f"dead{k}", [x])
    out = b.add(o.Dense, "readout", [x], weight=b.param("wo", _grid_weights(
        rng, (2, widths[-1]))))
    b.add(o.Output, "y", [out])
    return b.build(), rng


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(dense_nets())
def test_random_dense_nets_keep_outputs_exactly(net) -> None:
    g, rng = net
    g = PassManager.from_string("shape-infer").run(g)
    pm = PassManager.from_string("sparsify-masks")
    h = pm.run(g)
    assert not [n for n in h if getattr(n, "mask", None) is not None]
    assert not [n for n in h if n.name.startswith("dead")]
    assert set(pm.reports[0].values) == {n.name for n in h if n.OP == "synapse.dense"}
    x = torch.as_tensor((rng.random((3, *g["x"].shape, 16)) < 0.5).astype(np.float32))
    assert torch.equal(interpret(g, x), interpret(h, x))
    assert sm.run(h).nodes == h.nodes  # nothing left to remove


def test_removes_dead_rows_and_unread_columns_consistently() -> None:
    rng = np.random.default_rng(0)
    b = GraphBuilder()
    x = b.add(o.Input, "x", shape=(5,))
    w1 = _grid_weights(rng, (6, 5), zero_rows=[1, 4])
    fc1 = b.add(o.Dense, "fc1", [x], weight=b.param("w1", w1))
    d = b.add(o.Delay, "d", [fc1], delay=b.param("dl", np.arange(6)))
    n1 = b.add(o.Cuba, "n1", [d], threshold=0.2, current_decay=0.5, voltage_decay=0.5,
               bias=b.param("nb", np.array([0, 0, 0, 0, 0, 0.5], np.float32)))
    w2 = _grid_weights(rng, (3, 6), zero_cols=[2])
    fc2 = b.add(o.Dense, "fc2", [n1], weight=b.param("w2", w2))
    b.add(o.Output, "y", [fc2])
    g = PassManager.from_string("shape-infer").run(b.build())
    h = sm.run(g)
    keep = [0, 3, 5]  # 1, 4: no input and no bias; 2: nobody reads it
    assert h["n1"].shape == (3,) and h["fc1"].shape == (3,)
    assert np.array_equal(h.param("w1"), w1[keep]) and np.array_equal(h.param("w2"), w2[:, keep])
    assert np.array_equal(h.param("dl"), np.arange(6)[keep])
    assert np.array_equal(h.param("nb"), [0, 0, 0.5])
    x = torch.as_tensor((rng.random((2, 5, 20)) < 0.5).astype(np.float32))
    assert torch.equal(interpret(g, x), interpret(h, x))


def test_conv_masks_and_density_report() -> None:
    rng = np.random.default_rng(1)
    b = GraphBuilder()
    x = b.add(o.Input, "x", shape=(2, 6, 6))
    mask = (rng.random((4, 2, 3, 3)) < 0.05).astype(np.float32)
    c = b.add(o.Conv, "c", [x], weight=b.param("w", rng.normal(size=(4, 2, 3, 3)).astype(
        np.float32)), mask=b.param("m", mask))
    b.add(o.Output, "y", [b.add(o.Cuba, "n", [c])])
    g = PassManager.from_string("shape-infer").run(b.build())
    h, report = sm.run_with_report(g, sm.Options(threshold=0.1))
    assert h["c"].mask is None and "m" not in h.params
    assert report.values == {"c": np.count_nonzero(mask) / mask.size}
    assert report.lines()[-1].endswith(f"density {report.values['c']:.3f} (sparse: under 0.1, "
                                       "marked sparse = true)")
    assert h["c"].sparse and not g["c"].sparse
    xs = torch.as_tensor(rng.normal(size=(2, 2, 6, 6, 8)).astype(np.float32))
    assert torch.equal(interpret(g, xs), interpret(h, xs))


def test_sparse_mark_keeps_outputs_and_skips_dense_layers_and_complex() -> None:
    rng = np.random.default_rng(2)
    b = GraphBuilder()
    x = b.add(o.Input, "x", shape=(16,))
    w1 = rng.normal(size=(16, 16)).astype(np.float32) * (rng.random((16, 16)) < 0.15)
    fc1 = b.add(o.Dense, "fc1", [x], weight=b.param("w1", w1.astype(np.float32)))
    n1 = b.add(o.Cuba, "n1", [fc1], threshold=0.3)
    w2 = rng.normal(size=(4, 16)).astype(np.float32)
    b.add(o.Output, "y", [b.add(o.Cuba, "n2", [b.add(o.Dense, "fc2", [n1], weight=b.param(
        "w2", w2))], threshold=0.3)])
    g = PassManager.from_string("shape-infer").run(b.build())
    h, report = sm.run_with_report(g, sm.Options(threshold=0.25))
    assert h["fc1"].sparse and not h["fc2"].sparse
    assert report.values["fc1"] < 0.25 <= report.values["fc2"]
    assert any(line.endswith("marked sparse = true)") and "%fc1" in line
               for line in report.lines())
    xs = torch.as_tensor((rng.random((3, 16, 12)) < 0.5).astype(np.float32))
    assert torch.equal(interpret(g, xs), interpret(h, xs))
    assert sm.run(h).nodes == h.nodes  # idempotent

    c = GraphBuilder()
    x = c.add(o.Input, "x", shape=(4,))
    w = np.zeros((2, 4), np.float32)
    w[0, 0] = 1
    c.add(o.Output, "y", [c.add(o.Dense, "fc", [x], weight=c.param("wr", w),
                                weight_imag=c.param("wi", w))])
    cg = PassManager.from_string("shape-infer").run(c.build())
    ch, creport = sm.run_with_report(cg, sm.Options(threshold=0.5))
    assert not ch["fc"].sparse and creport.lines()[-1].endswith("(sparse: under 0.5)")


def test_recurrent_model_is_unchanged() -> None:
    import models

    torch.manual_seed(0)
    g = trace(models.RecurrentKWTA().eval(), torch.zeros(1, 20, 4))
    h = sm.run(g)
    assert h.nodes == g.nodes and "masks-sparsified" in h.facts
