"""networkx views of graphs, and .sir files with their parameter side files."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from slayerc.ir import GraphBuilder, load, parse, save
from slayerc.ir import ops as o
from slayerc.ir.analysis import ancestors, cycles, dataflow, reachable, to_nx, topo_order

ROOT = Path(__file__).resolve().parents[2]

RECURRENT = """slayerc.graph @g
param @w : f32[2, 2] = splat(0.5)
%x = io.input() : f32[2]
%back = axon.shift(%n)
%rec = synapse.dense(%back) {weight = @w}
%sum = tensor.add(%x, %rec)
%n = neuron.cuba(%sum)
%m = neuron.cuba(%n)
%y = io.output(%m)
"""


def test_views_of_a_recurrent_graph() -> None:
    g = parse(RECURRENT)
    assert to_nx(g).number_of_edges() == 7
    assert dataflow(g).number_of_edges() == 6  # the edge into the shift is cut
    order = topo_order(g)
    assert order.index("back") < order.index("rec") < order.index("sum") < order.index("n")
    assert order.index("n") < order.index("m")
    assert cycles(g) == [["back", "rec", "sum", "n"]]
    assert reachable(g, "x") == {"sum", "n", "back", "rec", "m", "y"}
    assert ancestors(g, "m") == {"x", "back", "rec", "sum", "n"}


def test_acyclic_graph_has_no_cycles() -> None:
    g = load(ROOT / "examples" / "conv_net.sir")
    assert len(cycles(g)) == 1  # the recurrent layer
    assert topo_order(g)[0] == "x"


def test_save_load_with_side_file(tmp_path: Path) -> None:
    b = GraphBuilder("big")
    x = b.add(o.Input, "x", shape=(64,), dtype="f32")
    w = b.param("fc.weight", np.random.default_rng(0).normal(size=(32, 64)).astype(np.float32))
    small = b.param("bias", np.arange(3, dtype=np.float64))
    fc = b.add(o.Dense, "fc", [x], weight=w)
    n = b.add(o.Cuba, "n", [fc], bias=small)
    b.add(o.Output, "y", [n])
    g = b.build()
    save(g, tmp_path / "net.sir")
    text = (tmp_path / "net.sir").read_text()
    assert 'params = "net.npz"' in text
    assert "param @fc.weight : f32[32, 64] = external" in text
    assert "param @bias : f64[3] = [0.0, 1.0, 2.0]" in text
    assert load(tmp_path / "net.sir") == g


def test_failed_save_leaves_no_file(tmp_path: Path) -> None:
    b = GraphBuilder()
    b.param("bad", np.array(["a", "b"]))  # strings cannot be printed
    x = b.add(o.Input, "x", shape=(1,))
    b.add(o.Output, "y", [x])
    with pytest.raises(TypeError):
        save(b.build(), tmp_path / "net.sir")
    assert os.listdir(tmp_path) == []


def test_side_file_must_match_the_text(tmp_path: Path) -> None:
    from slayerc.errors import ParseError

    (tmp_path / "a.sir").write_text('slayerc.graph @g {params = "a.npz"}\n'
                                    "param @w : f32[2, 2] = external\n")
    np.savez(tmp_path / "a.npz", w=np.zeros((3, 2), np.float32))
    want = r"a.sir:2:24: error: side file holds @w as float32\[3, 2\]"
    with pytest.raises(ParseError, match=want):
        load(tmp_path / "a.sir")
