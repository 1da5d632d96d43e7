"""A new neuron family is one module plus its IR op (``tests/family_test_if.py``): once added,
the text IR, shape inference, the interpreter and ``to_module`` (training and back) run it."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import slayerc
from slayerc.errors import RuntimeSimError
from slayerc.ir import ops as o
from slayerc.ir.core import GraphBuilder, ParamRef
from slayerc.ir.parser import parse
from slayerc.ir.printer import print_graph
from slayerc.passes.manager import PassManager
from slayerc.runtime import neurons


@pytest.fixture(scope="module")
def family():
    import family_test_if

    from slayerc.ir.core import OPS

    neurons.add_family("neuron.test_if", "family_test_if")
    yield family_test_if
    neurons.FAMILIES.pop("neuron.test_if")
    OPS.pop("neuron.test_if", None)  # the op registry is global: leave it as slayerc has it


def _graph(family, leak):
    b = GraphBuilder()
    w = b.param("fc.weight", np.array([[0.5, 0.25], [0.125, -0.5], [1.0, 0.0]], np.float32))
    x = b.add(o.Input, "x", shape=(2,), dtype="f32")
    fc = b.add(o.Dense, "fc", [x], weight=w)
    if not isinstance(leak, float):
        leak = b.param("lif.leak", np.full((3,), leak[0], np.float32))
    n = b.add(family.TestIF, "lif", [fc], threshold=1.0, leak=leak)
    b.add(o.Output, "out", [n])
    return PassManager.from_string("shape-infer").run(b.build())


def _by_hand(x, w, leak, th=1.0):
    v = np.zeros((x.shape[0], w.shape[0]))
    out = np.zeros((x.shape[0], w.shape[0], x.shape[-1]))
    for t in range(x.shape[-1]):
        v = (1 - leak) * v + x[..., t] @ w.T
        out[..., t] = v >= th
        v = np.where(out[..., t] > 0, 0.0, v)
    return out


def test_text_shapes_and_interpreter_run_the_new_family(family):
    g = _graph(family, 0.25)
    assert parse(print_graph(g)) == g
    assert g["lif"].shape == (3,)
    x = (torch.rand(2, 2, 30, generator=torch.Generator().manual_seed(0)) < 0.5).float()
    got = slayerc.interpret(g, x).numpy()
    want = _by_hand(x.numpy().astype(np.float64), g.params["fc.weight"].astype(np.float64), 0.25)
    assert got.sum() > 0 and np.array_equal(got, want)


def test_to_module_trains_the_new_family_and_gives_its_graph_back(family):
    g = _graph(family, (0.5,))
    m = slayerc.to_module(g)
    assert {n for n, _ in m.named_parameters()} == {"fc.weight", "lif.leak"}
    x = (torch.rand(4, 2, 30, generator=torch.Generator().manual_seed(1)) < 0.5).float()
    target = torch.full((4, 3), 0.3)
    opt = torch.optim.Adam(m.parameters(), lr=0.05)
    losses = []
    for _ in range(15):
        opt.zero_grad()
        loss = torch.nn.functional.mse_loss(m(x).mean(-1), target)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0]
    back = slayerc.from_module(m)
    assert isinstance(back["lif"].leak, ParamRef)
    assert not np.array_equal(back.params["lif.leak"], g.params["lif.leak"])
    assert ((back.params["lif.leak"] >= 0) & (back.params["lif.leak"] <= 1)).all()


def test_a_family_module_must_define_the_table(family):
    with pytest.raises(RuntimeSimError, match="has a home already"):
        neurons.add_family("neuron.test_if", "slayerc.runtime.neurons.cuba")
    with pytest.raises(RuntimeSimError, match="not a family module"):
        neurons.add_family("neuron.other", "slayerc.runtime.neurons.cuba")
