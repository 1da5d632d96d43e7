"""fold-batchnorm: the interpreter agrees before and after (≤ 1e-5 relative before the neurons,
bit-exact for slayer's mean-only norms), and unfoldable norms are kept with a warning."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from models import TorchCNN

from slayerc.frontend.trace import trace
from slayerc.ir import GraphBuilder
from slayerc.ir import ops as o
from slayerc.passes import PassManager
from slayerc.passes import fold_batchnorm as fb
from slayerc.runtime.interpreter import interpret


def _with_probes(g, names):
    """``g`` with an io.output reading each named node (so values before neurons are visible)."""
    probes = [o.Output(name=f"probe_{n}", inputs=(n,), shape=g[n].shape, dtype=g[n].dtype)
              for n in names]
    return g.replace(nodes=[*g, *probes])


def _rel_err(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).abs().max() / a.abs().max().clamp_min(1e-30))


@pytest.fixture(scope="module")
def torch_cnn():
    torch.manual_seed(3)
    model = TorchCNN()
    for bn in (model.bn1, model.bn2):  # trained-looking statistics, not the defaults
        bn.running_mean.uniform_(-0.5, 0.5)
        bn.running_var.uniform_(0.2, 3.0)
        bn.weight.data.uniform_(0.5, 2.0)
        bn.bias.data.uniform_(-0.3, 0.3)
    model.eval()
    x = (torch.rand(2, 2, 16, 16, 12) < 0.3).float()
    return model, x


def test_torch_cnn_folds_within_bound(torch_cnn) -> None:
    model, x = torch_cnn
    g = _with_probes(trace(model, x[:1]), ["bn1", "bn2"])
    pm = PassManager.from_string("fold-batchnorm")
    h = pm.run(g)
    assert not [n for n in h if n.OP == "norm.batch"] and "bn-folded" in h.facts
    assert [n.text for n in pm.reports[0].notes] == [
        f"folded {g['bn1'].describe()} into %conv1", f"folded {g['bn2'].describe()} into %conv2"]
    before, after = interpret(g, x), interpret(h, x)
    assert _rel_err(before["probe_bn1"], after["probe_bn1"]) <= 1e-5
    # bn2 is fed by spikes of lif1, which may in principle flip on a rounding; they did not here
    assert _rel_err(before["probe_bn2"], after["probe_bn2"]) <= 1e-5
    assert torch.equal(before["output"], after["output"])


def _conv_or_dense(draw, b: GraphBuilder, rng: np.random.Generator):
    conv = draw(st.booleans())
    cin, cout = draw(st.integers(1, 4)), draw(st.integers(1, 5))
    shape = (cin, 5, 4) if conv else (cin,)
    x = b.add(o.Input, "x", shape=shape)
    wshape = (cout, cin, 3, 3) if conv else (cout, cin)
    bias = b.param("s.bias", rng.normal(size=cout).astype(np.float32)) \
        if draw(st.booleans()) else None
    cls, extra = (o.Conv, {"padding": (1, 1)}) if conv else (o.Dense, {})
    return cout, b.add(cls, "s", [x], weight=b.param("s.weight", rng.normal(
        size=wshape).astype(np.float32)), bias=bias, **extra)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data(), st.integers(0, 2**31 - 1))
def test_random_synapse_batchnorm_pairs(data, seed) -> None:
    rng = np.random.default_rng(seed)
    b = GraphBuilder()
    c, s = _conv_or_dense(data.draw, b, rng)
    affine = data.draw(st.booleans())
    stats = {"mean": b.param("bn.mean", rng.normal(size=c).astype(np.float32)),
             "var": b.param("bn.var", rng.uniform(0.05, 4, size=c).astype(np.float32))}
    if affine:
        stats["weight"] = b.param("bn.weight", rng.normal(size=c).astype(np.float32))
        stats["bias"] = b.param("bn.bias", rng.normal(size=c).astype(np.float32))
    bn = b.add(o.BatchNorm, "bn", [s], eps=1e-5, **stats)
    b.add(o.Output, "y", [bn])
    g = PassManager.from_string("shape-infer").run(b.build())
    h = PassManager.from_string("fold-batchnorm").run(g)
    assert [n.OP for n in h].count("norm.batch") == 0
    x = torch.as_tensor(rng.normal(size=(2, *g["x"].shape, 6)).astype(np.float32))
    assert _rel_err(interpret(g, x), interpret(h, x)) <= 1e-5


def _mean_norm_graph(norm_cls, decay: float, syn_bias: bool, neuron=o.Cuba, **norm_attrs):
    rng = np.random.default_rng(5)
    b = GraphBuilder()
    x = b.add(o.Input, "x", shape=(6,))
    bias = b.param("fc.bias", rng.normal(size=4).astype(np.float32) / 8) if syn_bias else None
    fc = b.add(o.Dense, "fc", [x], weight=b.param("w", rng.normal(size=(4, 6)).astype(
        np.float32)), bias=bias)
    m = b.add(norm_cls, "m", [fc], mean=b.param("mu", rng.normal(size=4)), **norm_attrs)
    n = b.add(neuron, "n", [m], threshold=0.5, current_decay=decay, voltage_decay=0.125)
    b.add(o.Output, "y", [n])
    return PassManager.from_string("shape-infer").run(b.build())


@pytest.mark.parametrize("norm_cls, attrs", [(o.MeanOnlyNorm, {}),
                                             (o.WeightScaleNorm, {"weight_exp": 2}),
                                             (o.WeightScaleNorm, {"weight_exp": -1})])
@pytest.mark.parametrize("decay", [1.0, 0.25])
def test_mean_only_norms_fold_bit_exactly(norm_cls, attrs, decay) -> None:
    g = _mean_norm_graph(norm_cls, decay, syn_bias=False, **attrs)
    h = fb.run(g)
    assert [n.OP for n in h] == ["io.input", "synapse.dense", "neuron.cuba", "io.output"]
    assert (h["n"].bias is not None) == (decay == 1.0)  # a neuron bias only where it is exact
    x = torch.as_tensor((np.random.default_rng(1).random((3, 6, 40)) < 0.4).astype(np.float32))
    before, after = interpret(g, x), interpret(h, x)
    assert before.sum() > 0 and torch.equal(before, after)


def test_mean_only_before_alif_is_its_bias_for_any_current_decay() -> None:
    """slayer's ALIF adds its bias to the input, exactly where the norm's offset acts."""
    g = _mean_norm_graph(o.MeanOnlyNorm, 0.25, syn_bias=False, neuron=o.Alif)
    h = fb.run(g)
    assert h["n"].bias is not None and h["fc"].bias is None
    x = torch.as_tensor((np.random.default_rng(1).random((3, 6, 40)) < 0.4).astype(np.float32))
    before, after = interpret(g, x), interpret(h, x)
    assert before.sum() > 0 and torch.equal(before, after)


def test_mean_only_into_a_biased_synapse_is_within_rounding() -> None:
    g = _with_probes(_mean_norm_graph(o.MeanOnlyNorm, 0.25, syn_bias=True), ["m"])
    h = fb.run(g)
    x = torch.as_tensor(np.random.default_rng(2).normal(size=(3, 6, 20)).astype(np.float32))
    assert _rel_err(interpret(g, x)["probe_m"], interpret(h, x)["probe_m"]) <= 1e-6


def test_unfoldable_norms_are_kept_with_a_reason() -> None:
    b = GraphBuilder()
    x = b.add(o.Input, "x", shape=(3,))
    n = b.add(o.Cuba, "n", [x])
    stats = {"mean": b.param("mu", np.zeros(3, np.float32)),
             "var": b.param("var", np.ones(3, np.float32))}
    bn = b.add(o.BatchNorm, "bn", [n], **stats)
    m = b.add(o.WeightScaleNorm, "ws", [bn], mean=stats["mean"], weight_exp=1)
    b.add(o.Output, "y", [m])
    g = b.build()
    h, report = fb.run_with_report(g)
    assert h == g.replace(facts=g.facts | {"bn-folded"})
    assert report.warnings == [
        "kept %bn (norm.batch): its input %n (neuron.cuba) is not a synapse.dense or "
        "synapse.conv",
        "kept %ws (norm.weight_scale): the 2^weight_exp scale needs a synapse before it: its "
        "input %bn (norm.batch) is not a synapse.dense or synapse.conv"]


def test_shared_weights_are_not_changed_for_the_other_user() -> None:
    b = GraphBuilder()
    x = b.add(o.Input, "x", shape=(2,))
    w = b.param("w", np.array([[1.0, 2.0], [3.0, 4.0]], np.float32))
    f1 = b.add(o.Dense, "f1", [x], weight=w)
    bn = b.add(o.BatchNorm, "bn", [f1], mean=b.param("mu", np.ones(2, np.float32)),
               var=b.param("var", np.full(2, 4.0, np.float32)), eps=0.0)
    f2 = b.add(o.Dense, "f2", [x], weight=w)
    b.add(o.Output, "y", [bn])
    b.add(o.Output, "y2", [f2])
    h = fb.run(b.build())
    assert h["f2"].weight.name == "w" and np.array_equal(h.params["w"], [[1, 2], [3, 4]])
    assert np.array_equal(h.param(h["f1"].weight), [[0.5, 1], [1.5, 2]])
    assert np.array_equal(h.param(h["f1"].bias), [-0.5, -0.5])
