"""canonicalize: bit-identical interpreter outputs on random op chains and example models."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from slayerc.frontend.trace import trace
from slayerc.ir import GraphBuilder
from slayerc.ir import ops as o
from slayerc.passes import PassManager
from slayerc.passes import canonicalize as canon
from slayerc.passes.rewrite import is_power_of_two
from slayerc.runtime.interpreter import interpret

C = 4
SCALES = [1.0, 2.0, 0.5, -4.0, 0.25, 3.0, 0.1, -1.0]
BIASES = [0.0, 0.0, 0.1, -0.75, 1.0]


def _step(draw, b: GraphBuilder, x: str, rng: np.random.Generator) -> str:
    """Append one random op of C channels after ``x``."""
    kind = draw(st.sampled_from(["affine", "shift", "delay", "dropout", "reshape", "dense",
                                 "dense", "neuron"]))
    if kind == "affine":
        return b.add(o.Affine, "a", [x], scale=draw(st.sampled_from(SCALES)),
                     bias=draw(st.sampled_from(BIASES)))
    if kind == "shift":
        return b.add(o.Shift, "s", [x], steps=draw(st.integers(0, 2)),
                     persistent=draw(st.booleans()))
    if kind == "delay":
        d = b.param("d", rng.integers(0, 2, size=C) * draw(st.integers(0, 1)))
        return b.add(o.Delay, "d", [x], delay=d)
    if kind == "dropout":
        return b.add(o.Dropout, "drop", [x], p=0.3)
    if kind == "reshape":
        return b.add(o.Reshape, "r", [x], to=(C,))
    if kind == "neuron":
        return b.add(o.Cuba, "n", [x], threshold=0.5, current_decay=0.5, voltage_decay=0.25)
    bias = b.param("fc.b", rng.normal(size=C).astype(np.float32)) if draw(st.booleans()) \
        else None
    return b.add(o.Dense, "fc", [x], weight=b.param("fc.w", rng.normal(size=(C, C)).astype(
        np.float32)), bias=bias)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data(), st.integers(0, 2**31 - 1))
def test_random_chains_are_bit_identical(data, seed) -> None:
    rng = np.random.default_rng(seed)
    b = GraphBuilder()
    x = b.add(o.Input, "x", shape=(C,))
    for _ in range(data.draw(st.integers(1, 8))):
        x = _step(data.draw, b, x, rng)
    if data.draw(st.booleans()):  # a second reader blocks the merges into the last node
        b.add(o.Output, "side", [x])
        x = _step(data.draw, b, x, rng)
    b.add(o.Output, "y", [x])
    g = PassManager.from_string("shape-infer").run(b.build())
    h = PassManager.from_string("canonicalize").run(g)
    assert "canonical" in h.facts
    assert not [n for n in h if n.OP in ("neuron.dropout", "tensor.reshape")]
    for n in h:
        if n.OP == "tensor.affine":
            assert (n.scale, n.bias) != (1.0, 0.0)
    inp = torch.as_tensor(rng.normal(size=(2, C, 9)).astype(np.float32))
    before, after = interpret(g, inp), interpret(h, inp)
    if isinstance(before, dict):
        assert before.keys() == after.keys()
        assert all(torch.equal(before[k], after[k]) for k in before)
    else:
        assert torch.equal(before, after)
    assert canon.run(h) == h  # a fixpoint


def test_power_of_two() -> None:
    assert [is_power_of_two(v) for v in (1.0, 0.5, -2.0, 2.0**-30, 3.0, 0.1, 0.0)] == \
        [True, True, True, True, False, False, False]


@pytest.mark.parametrize("name", ["ConvSNN", "RecurrentKWTA", "TorchCNN"])
def test_example_models_are_bit_identical(name) -> None:
    import models

    torch.manual_seed(0)
    model = getattr(models, name)().eval()
    shape = {"ConvSNN": (2, 16, 16), "RecurrentKWTA": (20,), "TorchCNN": (2, 16, 16)}[name]
    x = (torch.rand(2, *shape, 10) < 0.3).float()
    g = trace(model, x[:1])
    h = canon.run(g)
    assert torch.equal(interpret(g, x), interpret(h, x))


def test_torch_cnn_scale_folds_after_batchnorm_folding() -> None:
    import models

    torch.manual_seed(0)
    g = trace(models.TorchCNN().eval(), torch.zeros(1, 2, 16, 16, 4))
    h = PassManager.from_string("canonicalize,fold-batchnorm,canonicalize").run(g)
    assert [n.OP for n in h].count("tensor.affine") == 0
    assert h["conv1"].loc == g["conv1"].loc  # the surviving synapse keeps its origin
