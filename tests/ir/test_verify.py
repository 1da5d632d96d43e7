"""verify() reports every kind of problem, each naming the node and its origin, all at once."""

from __future__ import annotations

import numpy as np
import pytest

from slayerc.errors import VerifyError
from slayerc.ir import Graph, GraphBuilder, Loc, ParamRef, parse, verify
from slayerc.ir import ops as o


def _net() -> Graph:
    b = GraphBuilder()
    x = b.add(o.Input, "x", shape=(4,), dtype="f32")
    w = b.param("fc.weight", np.ones((3, 4), np.float32))
    fc = b.add(o.Dense, "fc", [x], weight=w, loc=Loc("layers.0", "net.py", 42))
    n = b.add(o.Cuba, "lif", [fc], current_decay=0.25, voltage_decay=0.5)
    b.add(o.Output, "y", [n])
    return b.build()


def _problems(g: Graph) -> list[str]:
    with pytest.raises(VerifyError) as info:
        verify(g)
    return info.value.problems


def test_sound_graph_passes() -> None:
    g = _net()
    assert verify(g) is g


def test_unknown_input() -> None:
    g = _net()
    (p,) = _problems(g.with_node(g["lif"].replace(inputs=("fcc",))))
    assert p == "%lif (neuron.cuba): unknown input %fcc"


def test_duplicate_name() -> None:
    g = _net()
    nodes = dict(g.nodes)
    nodes["fc2"] = g["fc"]  # a second node called "fc"
    probs = _problems(g.replace(nodes=nodes))
    assert any("duplicate node name" in p and p.startswith("%fc (synapse.dense, from module "
                                                           "layers.0 at net.py:42)") for p in probs)
    assert any("stored under the name 'fc2'" in p for p in probs)


def test_invalid_name() -> None:
    g = _net()
    nodes = {("bad-name" if k == "lif" else k): (v.replace(name="bad-name") if k == "lif" else v)
             for k, v in g.nodes.items()}
    nodes["y"] = nodes["y"].replace(inputs=("bad-name",))
    assert any("invalid node name" in p for p in _problems(g.replace(nodes=nodes)))


def test_cycle_without_delay() -> None:
    text = """slayerc.graph @g
param @w : f32[2, 2] = splat(0.5)
%x = io.input() : f32[2]
%sum = tensor.add(%x, %rec)
%rec = synapse.dense(%sum) {weight = @w}
%y = io.output(%sum)
"""
    (p,) = _problems(parse(text))
    assert p.startswith("%sum (tensor.add): uses %rec before it is defined; a cycle must pass "
                        "through axon.shift or axon.delay")


def test_self_loop_without_delay() -> None:
    text = """slayerc.graph @g
%x = io.input() : f32[2]
%a = tensor.add(%x, %a)
%y = io.output(%a)
"""
    assert "uses %a before it is defined" in _problems(parse(text))[0]


def test_cycle_through_zero_delay_channel() -> None:
    text = """slayerc.graph @g
param @d : f32[2] = [1.0, 0.0]
param @w : f32[2, 2] = splat(0.5)
%x = io.input() : f32[2]
%back = axon.delay(%n) {delay = @d}
%rec = synapse.dense(%back) {weight = @w}
%sum = tensor.add(%x, %rec)
%n = neuron.cuba(%sum)
%y = io.output(%n)
"""
    (p,) = _problems(parse(text))
    assert "%back (axon.delay): closes a cycle through %n but some channel has delay 0" in p


def test_cycle_through_shift_is_legal() -> None:
    text = """slayerc.graph @g
param @w : f32[2, 2] = splat(0.5)
%x = io.input() : f32[2]
%back = axon.shift(%n)
%rec = synapse.dense(%back) {weight = @w}
%sum = tensor.add(%x, %rec)
%n = neuron.cuba(%sum)
%y = io.output(%n)
"""
    verify(parse(text))
    text0 = text.replace("axon.shift(%n)", "axon.shift(%n) {steps = 0}")
    assert "uses %n before it is defined" in _problems(parse(text0))[0]


def test_missing_parameter() -> None:
    g = _net()
    g = g.replace(params={})
    (p,) = _problems(g)
    assert p == "%fc (synapse.dense, from module layers.0 at net.py:42): attribute 'weight' " \
                "refers to missing parameter @fc.weight"


@pytest.mark.parametrize("change, words", [
    ({"mask": "m"}, "@m ('mask') has shape [2, 2], expected [3, 4]"),
    ({"bias": "m"}, "@m ('bias') has shape [2, 2], expected [3]"),
    ({"weight": "m3"}, "must be 2-d [out, in]"),
    ({"weight": "nan"}, "holds inf or nan"),
])
def test_misshapen_or_bad_parameter(change: dict, words: str) -> None:
    g = _net()
    params = dict(g.params, m=np.ones((2, 2), np.float32), m3=np.ones((3, 4, 1), np.float32),
                  nan=np.full((3, 4), np.nan, np.float32))
    node = g["fc"].replace(**{k: ParamRef(v) for k, v in change.items()})
    probs = _problems(g.replace(params=params).with_node(node))
    assert any(words in p for p in probs), probs


def test_per_neuron_parameter_shape() -> None:
    g = _net()
    g = g.replace(params=dict(g.params, th=np.ones(5, np.float32)))
    node = g["lif"].replace(threshold=ParamRef("th"), shape=(3,), dtype="f32")
    (p,) = _problems(g.with_node(node))
    assert "@th ('threshold') has shape [5], expected [] or [3] or [3]" in p


def test_shape_mismatch_with_shapes_fact() -> None:
    from slayerc.passes import PassManager

    g = PassManager.from_string("shape-infer").run(_net())
    bad = g.with_node(g["lif"].replace(shape=(7,)))
    probs = _problems(bad)
    assert "%lif (neuron.cuba): stored type f32[7] does not match the inferred f32[3]" in probs
    g2 = g.with_node(g["fc"].replace(shape=None))
    assert any("has no shape although the graph claims" in p for p in _problems(g2))


@pytest.mark.parametrize("node, words", [
    (o.Cuba(name="n", inputs=("x",), current_decay=1.5), "'current_decay' = 1.5 is above 1.0"),
    (o.Cuba(name="n", inputs=("x",), threshold=-1.0), "'threshold' = -1.0 is below 0.0"),
    (o.Cuba(name="n", inputs=("x",), scale=0), "scale must be a positive int"),
    (o.Dropout(name="n", inputs=("x",), p=1.0), "dropout p=1.0 must be in [0, 1)"),
    (o.Shift(name="n", inputs=("x",), steps=-1), "'steps' = -1 must be >= 0"),
    (o.Delay(name="n", inputs=("x",), delay=-2), "delay -2 must be >= 0"),
    (o.SigmaDelta(name="n", inputs=("x",), activation="gelu"), "activation 'gelu' is not one"),
    (o.Reshape(name="n", inputs=("x",), to=(2, 0)), "'to' = (2, 0) must be >= 1"),
    (o.Affine(name="n", inputs=("x",), scale=float("inf")), "'scale' must be a finite number"),
    (o.KWTA(name="n", inputs=("x",), self_excitation=2.0), "self_excitation 2.0 not in [0, 1]"),
])
def test_bad_attribute_values(node: o.Op, words: str) -> None:
    g = _net()
    g = g.replace(nodes=[g["x"], node, o.Output(name="y", inputs=("n",))])
    probs = _problems(g)
    assert any(words in p and p.startswith(f"%n ({node.OP}") for p in probs), probs


def test_fractional_delays_need_legalization() -> None:
    g = _net()
    g = g.replace(params=dict(g.params, d=np.array([0.5, 1.0, 2.0])))
    d = o.Delay(name="d", inputs=("lif",), delay=ParamRef("d"))
    g = g.replace(nodes=[*list(g)[:-1], d, o.Output(name="y", inputs=("d",))])
    assert any("must be whole steps; run legalize-delay" in p for p in _problems(g))


def test_wrong_arity_io_and_facts() -> None:
    g = _net()
    g = g.replace(nodes=[g["x"], g["fc"], g["lif"].replace(inputs=("fc", "x"))],
                  facts={"made-up"})
    probs = _problems(g)
    assert "%lif (neuron.cuba): takes 1 input, got 2" in probs
    assert any(p.startswith("graph: no io.output node") for p in probs)
    assert any("unknown fact 'made-up'" in p for p in probs)


def test_add_needs_two_inputs_and_output_has_no_users() -> None:
    g = _net()
    add = o.Add(name="a", inputs=("y",))
    g = g.replace(nodes=[*g, add])
    probs = _problems(g)
    assert "%a (tensor.add): takes two or more inputs, got 1" in probs
    assert "%a (tensor.add): reads io.output %y; read its producer instead" in probs


def test_every_problem_reported_at_once() -> None:
    g = _net()
    g = g.replace(params={}, nodes=[g["x"], g["fc"], g["lif"].replace(current_decay=3.0),
                                    o.Output(name="y", inputs=("nope",))])
    with pytest.raises(VerifyError) as info:
        verify(g)
    assert len(info.value.problems) == 3
    assert str(info.value).startswith("graph verification failed with 3 problems:")


def test_describe_names_module_and_source() -> None:
    assert o.Dense(name="a", loc=Loc("m.0", "f.py", 3)).describe() == \
        "%a (synapse.dense, from module m.0 at f.py:3)"
    assert o.Dense(name="a", loc=Loc(None, "f.py", 3)).describe() == "%a (synapse.dense, at f.py:3)"
    assert o.Dense(name="a").describe() == "%a (synapse.dense)"
