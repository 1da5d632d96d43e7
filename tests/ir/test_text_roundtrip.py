"""The text form round-trips exactly: parse(print(g)) == g, for hand-written and random graphs."""

from __future__ import annotations

import dataclasses
import string
import types
import typing

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from slayerc.ir import OPS, Graph, Loc, ParamRef, parse, print_graph
from slayerc.ir.core import BASE_FIELDS, FACTS
from slayerc.ir.printer import DTYPE_NAMES

IDENT = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,8}", fullmatch=True)
PARAM_NAME = st.from_regex(r"[A-Za-z0-9_][A-Za-z0-9_.]{0,10}", fullmatch=True)
NUM_DTYPES = [d for d in DTYPE_NAMES if not d.startswith("complex")]


@st.composite
def arrays(draw: st.DrawFn) -> np.ndarray:
    """A small numpy array of any supported real dtype (nan, inf and -0.0 included)."""
    dtype = np.dtype(draw(st.sampled_from(NUM_DTYPES)))
    shape = tuple(draw(st.lists(st.integers(0, 4), max_size=3)))
    n = int(np.prod(shape)) if shape else 1
    if dtype.kind == "f":
        width = 16 if dtype.itemsize == 2 else (32 if dtype.itemsize == 4 else 64)
        vals = draw(st.lists(st.floats(width=width), min_size=n, max_size=n))
    elif dtype.kind == "b":
        vals = draw(st.lists(st.booleans(), min_size=n, max_size=n))
    else:
        info = np.iinfo(dtype)
        vals = draw(st.lists(st.integers(int(info.min), int(info.max)), min_size=n, max_size=n))
    same = draw(st.booleans()) and n > 1
    if same:
        vals = [vals[0]] * n
    return np.array(vals, dtype=dtype).reshape(shape)


def attr_value(hint: object, refs: list[str]) -> st.SearchStrategy:
    """Values of the type a field is annotated with (the parser refuses other types)."""
    ref = st.sampled_from(refs).map(ParamRef) if refs else st.nothing()
    if typing.get_origin(hint) in (types.UnionType, typing.Union):
        return st.one_of(*(attr_value(alt, refs) for alt in typing.get_args(hint)))
    if typing.get_origin(hint) is tuple:
        args = typing.get_args(hint)
        if ... in args:
            return st.lists(st.integers(-5, 100), max_size=4).map(tuple)
        return st.tuples(*(st.integers(-5, 100) for _ in args))
    table: dict[object, st.SearchStrategy] = {
        bool: st.booleans(), int: st.integers(-10**12, 10**12), str: st.text(max_size=12),
        float: st.floats(allow_nan=False), ParamRef: ref, type(None): st.none()}
    return table[hint]


LOCS = st.one_of(
    st.none(),
    st.builds(Loc, st.one_of(st.none(), st.text(max_size=10)), st.none(), st.none()),
    st.builds(Loc, st.one_of(st.none(), st.text(max_size=10)), st.text(max_size=10),
              st.one_of(st.none(), st.integers(0, 10**6))),
)


@st.composite
def graphs(draw: st.DrawFn) -> Graph:
    """Random graphs over the whole op vocabulary (not necessarily valid ones)."""
    params = draw(st.dictionaries(PARAM_NAME, arrays(), max_size=4))
    refs = sorted(params)
    names = draw(st.lists(IDENT, min_size=1, max_size=8, unique=True))
    nodes = {}
    for name in names:
        cls = OPS[draw(st.sampled_from(sorted(OPS)))]
        n_in = cls.ARITY if cls.ARITY is not None else draw(st.integers(2, 3))
        inputs = tuple(draw(st.lists(st.sampled_from(names), min_size=n_in, max_size=n_in)))
        hints = typing.get_type_hints(cls)
        attrs = {f.name: draw(attr_value(hints[f.name], refs)) for f in dataclasses.fields(cls)
                 if f.name not in BASE_FIELDS and draw(st.booleans())}
        shape = draw(st.one_of(st.none(), st.lists(st.integers(0, 64), max_size=3).map(tuple)))
        dtype = draw(st.one_of(st.none(), st.sampled_from(["f32", "c32"])))
        nodes[name] = cls(name=name, inputs=inputs, shape=shape, dtype=dtype,
                          loc=draw(LOCS), **attrs)
    facts = draw(st.frozensets(st.sampled_from(FACTS)))
    return Graph(nodes=nodes, params=params, facts=facts, name=draw(IDENT))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(graphs())
def test_print_parse_round_trip(g: Graph) -> None:
    text = print_graph(g)
    back = parse(text)
    assert back == g, text
    assert print_graph(back) == text


@settings(max_examples=60, deadline=None)
@given(graphs(), st.integers(0, 8))
def test_round_trip_with_external_params(g: Graph, limit: int) -> None:
    from slayerc.ir.printer import external_params

    text = print_graph(g, inline_limit=limit)
    assert parse(text, params=external_params(g, limit)) == g


def test_equality_sees_every_part() -> None:
    from slayerc.ir import ops

    x = ops.Input(name="x", shape=(2,), dtype="f32")
    y = ops.Output(name="y", inputs=("x",))
    g = Graph(nodes={"x": x, "y": y}, params={"p": np.zeros(2, np.float32)})
    assert g == parse(print_graph(g))
    assert g != g.replace(params={"p": np.zeros(2, np.float64)})
    assert g != g.replace(params={"p": np.ones(2, np.float32)})
    assert g != g.replace(facts={"shapes"})
    assert g != g.with_node(y.replace(loc=Loc("m")))
    assert g != g.replace(nodes=[y, x])  # order matters


def test_text_is_deterministic_and_sorted() -> None:
    from slayerc.ir import ops

    n = ops.Cuba(name="n", inputs=("x",), voltage_decay=0.5, current_decay=0.25, threshold=2.0)
    line = print_graph(Graph(nodes={"n": n})).splitlines()[1]
    assert line == ("%n = neuron.cuba(%x) "
                    "{current_decay = 0.25, threshold = 2.0, voltage_decay = 0.5}")
    assert set(string.whitespace) & set(line) == {" "}
