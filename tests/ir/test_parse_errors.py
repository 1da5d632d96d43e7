"""Parse errors carry file:line:col and say what was expected."""

from __future__ import annotations

import pytest

from slayerc.errors import ParseError, SlayerError
from slayerc.ir import load, parse

HEAD = "slayerc.graph @g\n"


@pytest.mark.parametrize("body, line, col, words", [
    ("%x = io.inputt()\n", 2, 6, "unknown op 'io.inputt'"),
    ("%x = io.input() : f32[4\n", 2, 24, "expected ',' or ']'"),
    ("%x = io.input() : f32[-4]\n", 2, 23, "dimension must be a non-negative integer"),
    ("%n = neuron.cuba(%x) {thresh = 1.0}\n", 2, 23, "has no attribute 'thresh'"),
    ("%n = neuron.cuba(%x) {threshold = 1.0, threshold = 2.0}\n", 2, 40, "given twice"),
    ("%n = neuron.cuba(%x {threshold = 1.0}\n", 2, 21, "expected ',' or ')'"),
    ("%n = neuron.cuba(%x) {threshold = }\n", 2, 35, "expected a value"),
    ("%x = io.input() : f32[4] $\n", 2, 26, "unexpected character '$'"),
    ("%x = io.input() : f32[4] extra\n", 2, 26, "expected 'loc'"),
    ("param @w : f32[2] = [1.0]\n", 2, 21, "(2 values) but the literal holds 1"),
    ("param @w : q8[2] = [1, 2]\n", 2, 12, "unknown element type 'q8'"),
    ("param @w : f32[2] = external\n", 2, 21, "no side file provides it"),
    ("param @w : f32[2] = [1.0, 2.0]\nparam @w : f32[1] = [1.0]\n", 3, 1, "defined twice"),
    ("%x = io.input()\n%x = io.input()\n", 3, 1, "node %x defined twice"),
    ("x = io.input()\n", 2, 1, "expected 'param' or a node definition"),
    ("%x = io.input() loc(\"m\" \"f.py\":)\n", 2, 32, "expected a line number"),
])
def test_parse_error_positions(body: str, line: int, col: int, words: str) -> None:
    with pytest.raises(ParseError) as info:
        parse(HEAD + body, filename="net.sir")
    e = info.value
    assert (e.filename, e.line, e.col) == ("net.sir", line, col), str(e)
    assert words in str(e)
    assert str(e).startswith(f"net.sir:{line}:{col}: error: ")


def test_missing_header() -> None:
    with pytest.raises(ParseError, match=r"x.sir:1:1: error: a .sir file starts with"):
        parse("%x = io.input()\n", filename="x.sir")
    with pytest.raises(ParseError, match="empty input"):
        parse("# nothing\n\n", filename="x.sir")


def test_unknown_graph_attribute() -> None:
    with pytest.raises(ParseError, match="unknown graph attribute 'colour'"):
        parse('slayerc.graph @g {colour = "red"}\n')


def test_load_reports_missing_and_binary_files(tmp_path) -> None:
    with pytest.raises(SlayerError, match="cannot read"):
        load(tmp_path / "missing.sir")
    bad = tmp_path / "bin.sir"
    bad.write_bytes(b"\x89HDF\r\n\x1a\n\xff\xfe")
    with pytest.raises(SlayerError, match="not a text file"):
        load(bad)
    side = tmp_path / "s.sir"
    side.write_text('slayerc.graph @g {params = "s.npz"}\n')
    with pytest.raises(SlayerError, match="parameter side file"):
        load(side)
