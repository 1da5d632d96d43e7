"""Careless and hostile ``.sir`` text: every case is a ``ParseError`` with ``file:line:col``.

Never another exception (json, numpy, RecursionError, MemoryError, OverflowError), never a hang:
each case runs under a hard time limit.
"""

from __future__ import annotations

import contextlib
import re

import pytest
from hostile_limits import time_limit
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from slayerc.errors import ParseError, SlayerError
from slayerc.ir import parse, print_graph
from slayerc.ir.core import GraphBuilder
from slayerc.ir.ops import Cuba, Dense, Input, Output
from slayerc.ir.verify import verify
from slayerc.passes import shape_infer

HEAD = "slayerc.graph @g\n"
X = "%x = io.input() : f32[2]\n"
LOC = HEAD + '%x = io.input() : f32[2] loc("m" "f.py":'  # + a line number

#: (text, line:col, what the message must say)
CASES = [
    (HEAD + '%x = io.input() : f32[1] loc("a\\q")\n', "2:32",
     "invalid string literal: Invalid \\\\escape"),
    (HEAD + '%x = io.input() : f32[1] loc("a\x01b")\n', "2:32", "Invalid control character"),
    (HEAD + '%x = io.input() : f32[1] loc("a\\u12")\n', "2:", "invalid string literal"),
    (HEAD + '%x = io.input() : f32[1] loc("\\udc00")\n', "2:", "lone surrogate"),
    (HEAD + '%x = io.input() : f32[1] loc("m" "f\\x")\n', "2:", "invalid string literal"),
    ('slayerc.graph @g {params = "a\\xb.npz"}\n', "1:", "invalid string literal"),
    (HEAD + X + "%s = axon.shift(%x) {steps = nan}\n", "3:30",
     "'steps' of axon.shift must be int, got nan"),
    (HEAD + X + "%s = axon.shift(%x) {steps = inf}\n", "3:30", "must be int, got inf"),
    (HEAD + X + "%s = axon.shift(%x) {steps = 1.5}\n", "3:30", "must be int, got 1.5"),
    (HEAD + X + "%s = axon.shift(%x) {steps = 99999999999999999999999}\n", "3:30", "out of range"),
    (HEAD + X + "%s = axon.shift(%x) {steps = 18446744073709551615}\n", "3:30", "must be int"),
    (HEAD + X + '%s = axon.shift(%x) {steps = "3"}\n', "3:30", 'must be int, got "3"'),
    (HEAD + X + "%s = axon.shift(%x) {steps = [1]}\n", "3:30", "must be int, got \\[1\\]"),
    (HEAD + X + "%s = axon.shift(%x) {steps = true}\n", "3:30", "must be int, got true"),
    (HEAD + X + '%n = neuron.cuba(%x) {threshold = "high"}\n', "3:", "'threshold' of neuron.cuba"),
    (HEAD + X + "%n = neuron.cuba(%x) {threshold = 1e999}\n", "3:", "out of range"),
    (HEAD + X + '%n = synapse.conv(%x) {stride = ["a", 1]}\n', "3:", "'stride'"),
    (LOC + "1.5)\n", "2:41", "line number is a non-negative integer, got '1.5'"),
    (LOC + "-3)\n", "2:41", "line number"),
    (LOC + "nan)\n", "2:41", "line number"),
    (LOC + "99999999999999999999999)\n", "2:41", "line number"),
    (HEAD + 'param @w : f32[2] = ["a", 1.0]\n', "2:21", 'must be a number, got "a"'),
    (HEAD + 'param @w : f32[2] = splat("a")\n', "2:27", 'must be a number, got "a"'),
    (HEAD + "param @w : f32[2] = splat(none)\n", "2:27", "must be a number, got none"),
    (HEAD + "param @w : f32[2] = splat([1.0])\n", "2:27", "must be a number"),
    (HEAD + "param @w : f32[2] = [[1.0], [2.0]]\n", "2:21", "must be a number"),
    (HEAD + "param @w : i64[2] = [1.5, 2]\n", "2:21", "must be an integer"),
    (HEAD + "param @w : i8[1] = [300]\n", "2:20", "integer in \\[-128, 127\\], got 300"),
    (HEAD + "param @w : u8[1] = [-1]\n", "2:20", "integer in \\[0, 255\\]"),
    (HEAD + "param @w : i64[1] = [nan]\n", "2:21", "must be an integer"),
    (HEAD + "param @w : bool[1] = [2]\n", "2:22", "true or false"),
    (HEAD + "param @w : f32[1] = [1e300]\n", "2:21", "out of range for f32"),
    (HEAD + "param @w : f16[1] = splat(70000.0)\n", "2:27", "out of range for f16"),
    (HEAD + "param @w : f32[1] = [true]\n", "2:21", "must be a number, got true"),
    (HEAD + "param @w : f32[1000000000000] = splat(1.0)\n", "2:12",
     "declares 4,000,000,000,000 bytes, more than"),
    (HEAD + "param @w : f64[4294967296, 4294967296] = splat(0.0)\n", "2:12", "bytes, more than"),
    (HEAD + "param @w : f32[99999999999999999999999] = splat(1.0)\n", "2:16", "out of range"),
    (HEAD + "param @w : f32[3] = [1.0]\n", "2:21", "holds 1"),
    (HEAD + "param @w : f32[1] = " + "[" * 2000 + "]" * 2000 + "\n", "2:", "nested deeper than"),
    (HEAD + X + "%n = neuron.cuba(%x) {bias = " + "[" * 5000 + "\n", "3:", "nested deeper than"),
    ("slayerc.graph @g {facts = " + "[" * 3000 + "\n", "1:", "nested deeper than"),
    ("slayerc.graph @g {facts = [1]}\n", "1:27", "facts must be a list of strings"),
    ("slayerc.graph @g {params = 3}\n", "1:28", "params must be the side file's name"),
]


@pytest.mark.parametrize(("text", "at", "message"), CASES,
                         ids=[f"case{i}" for i in range(len(CASES))])
def test_bad_text_is_a_located_parse_error(text: str, at: str, message: str) -> None:
    with time_limit(10), pytest.raises(ParseError) as info:
        parse(text, filename="t.sir")
    assert str(info.value).startswith(f"t.sir:{at}"), str(info.value)
    assert re.search(message, str(info.value)), str(info.value)


def _graph_text() -> str:
    b = GraphBuilder("g")
    x = b.add(Input, "x", shape=(3,), dtype="f32")
    w = b.param("fc.weight", [[0.5, -0.25, 1.0]] * 2)
    fc = b.add(Dense, "fc", [x], weight=w)
    n = b.add(Cuba, "n", [fc], threshold=1.25, current_decay=0.25)
    b.add(Output, "y", [n])
    return print_graph(b.build())


TEXT = _graph_text()
NOISE = st.sampled_from(['"', "\\", "\\u", "[", "]", "{", "}", "(", ")", ",", "=", ":", "nan",
                         "inf", "-", "1e999", "99999999999999999999", "@", "%", "splat(", "#",
                         "\x00", "\x7f", "é", "true", "none", "f32[", "loc(", "1.5"])


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.integers(0, len(TEXT)), NOISE, st.integers(0, 3)), min_size=1,
                max_size=4))
def test_mutated_text_parses_or_fails_cleanly(edits: list[tuple[int, str, int]]) -> None:
    text = TEXT
    for pos, noise, cut in edits:
        pos = min(pos, len(text))
        text = text[:pos] + noise + text[pos + cut:]
    with time_limit(10):
        try:
            g = parse(text, filename="m.sir")
        except ParseError as e:
            assert re.match(r"m\.sir:\d+:\d+: error: ", str(e)), str(e)
            return
        with contextlib.suppress(SlayerError):  # what parses, verifies cleanly or reports
            verify(shape_infer.run(g))
