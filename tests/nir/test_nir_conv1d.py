"""NIR's Conv1d: imported as reshape → 1×k conv → reshape, exported back as one Conv1d."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

nir = pytest.importorskip("nir")

import slayerc  # noqa: E402
from slayerc.backends.nir_export import to_nir  # noqa: E402
from slayerc.frontend.nir_import import from_nir  # noqa: E402

_FIELDS = ("weight", "bias", "stride", "padding", "dilation", "groups", "input_shape")


def _graph(c_in, c_out, length, k, stride, padding, dilation, bias, seed=0, lif=False):
    rng = np.random.default_rng(seed)
    w = (rng.integers(-64, 64, (c_out, c_in, k)) / 64).astype(np.float32)
    b = (rng.integers(-32, 32, c_out) / 64 if bias else np.zeros(c_out)).astype(np.float32)
    conv = nir.Conv1d(input_shape=length, weight=w, stride=stride, padding=padding,
                      dilation=dilation, groups=1, bias=b)
    out = int(conv.output_type["output"][1])
    nodes = {"in": nir.Input(input_type={"input": np.array([c_in, length])}), "conv": conv}
    edges = [("in", "conv")]
    last = "conv"
    if lif:
        n = (c_out, out)
        nodes["lif"] = nir.LIF(tau=np.full(n, 8e-4, np.float32), r=np.full(n, 8.0, np.float32),
                               v_leak=np.zeros(n, np.float32), v_threshold=np.ones(n, np.float32),
                               v_reset=np.zeros(n, np.float32))
        edges.append(("conv", "lif"))
        last = "lif"
    nodes["out"] = nir.Output(output_type={"output": np.array([c_out, out])})
    return nir.NIRGraph(nodes=nodes, edges=edges + [(last, "out")])


def _conv_case(draw):
    c_in, c_out = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    k, dilation = draw(st.integers(1, 4)), draw(st.integers(1, 2))
    padding = draw(st.integers(0, 2))
    length = draw(st.integers(dilation * (k - 1) + 1 - min(2 * padding, dilation * (k - 1)),
                              12))
    return c_in, c_out, length, k, draw(st.integers(1, 3)), padding, dilation, draw(st.booleans())


conv_cases = st.composite(_conv_case)


@settings(max_examples=30, deadline=None)
@given(case=conv_cases(), lif=st.booleans())
def test_conv1d_nir_ir_nir_is_equal(case, lif, tmp_path_factory):
    original = _graph(*case, lif=lif)
    path = tmp_path_factory.mktemp("c1") / "c1.nir"
    nir.write(path, original)
    g = slayerc.load(path)
    assert [n.OP for n in g][:4] == ["io.input", "tensor.reshape", "synapse.conv",
                                     "tensor.reshape"]
    back = to_nir(g)
    assert set(back.nodes) == set(original.nodes)
    assert sorted(back.edges) == sorted(original.edges)
    a, b = original.nodes["conv"], back.nodes["conv"]
    assert type(b) is nir.Conv1d
    for f in _FIELDS:
        np.testing.assert_array_equal(np.asarray(getattr(b, f)), np.asarray(getattr(a, f)), f)
    np.testing.assert_array_equal(b.output_type["output"], a.output_type["output"])
    again = from_nir(back)  # and IR → NIR → IR: the same IR
    assert [(n.OP, n.name, n.inputs, n.shape) for n in again] == \
        [(n.OP, n.name, n.inputs, n.shape) for n in g]
    for n in g:
        for k, v in n.attrs().items():
            w = again[n.name].attrs()[k]
            if hasattr(v, "name"):
                np.testing.assert_array_equal(again.params[w.name], g.params[v.name])
            else:
                assert w == v, (n.name, k)


@settings(max_examples=15, deadline=None)
@given(case=conv_cases())
def test_imported_conv1d_computes_torch_conv1d(case):
    c_in, c_out, length, k, stride, padding, dilation, _ = case
    graph = _graph(*case)
    g = from_nir(graph)
    x = torch.tensor(np.random.default_rng(1).random((2, c_in, length, 5)), dtype=torch.float32)
    conv = graph.nodes["conv"]
    ref = torch.stack([torch.nn.functional.conv1d(
        x[..., t], torch.tensor(conv.weight), torch.tensor(conv.bias), stride=stride,
        padding=padding, dilation=dilation) for t in range(5)], -1)
    torch.testing.assert_close(slayerc.interpret(g, x), ref, rtol=1e-5, atol=1e-5)


def test_grouped_conv_exports_without_nir_shape():
    """NIR types a conv built with ``input_shape`` as ``weight.shape[1]`` input channels (wrong
    for groups > 1), so a grouped conv is built without it and the graph infers its types
    (``nir.read`` of such a file still fails NIR's own type check: a NIR limitation)."""
    rng = np.random.default_rng(0)
    graph = nir.NIRGraph(nodes={
        "in": nir.Input(input_type={"input": np.array([4, 10])}),
        "conv": nir.Conv1d(input_shape=None, weight=rng.random((4, 2, 3)).astype(np.float32),
                           stride=1, padding=1, dilation=1, groups=2,
                           bias=np.zeros(4, np.float32)),
        "out": nir.Output(output_type={"output": np.array([4, 10])})},
        edges=[("in", "conv"), ("conv", "out")])
    back = to_nir(from_nir(graph))
    assert back.nodes["conv"].groups == 2
    np.testing.assert_array_equal(back.nodes["conv"].input_type["input"], [4, 10])
    np.testing.assert_array_equal(back.nodes["conv"].weight, graph.nodes["conv"].weight)


def test_a_plain_reshape_is_named_by_the_exporter():
    from slayerc.errors import BackendError
    from slayerc.ir import ops
    from slayerc.ir.core import GraphBuilder

    b = GraphBuilder()
    x = b.add(ops.Input, "x", shape=(2, 6))
    r = b.add(ops.Reshape, "r", [x], to=(3, 4))
    b.add(ops.Output, "out", [r])
    with pytest.raises(BackendError, match=r"%r \(tensor.reshape.*general tensor.reshape"):
        to_nir(b.build())
