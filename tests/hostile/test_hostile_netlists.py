"""Netlists that are valid hdf5 but hold what a loihi2 netlist cannot, and very deep netlists.

Values: a ``vThMant`` of 2**31 or a weight of 1e6 reads (the slayerc runtime can run it) but
never passes into a loihi2 netlist silently.  Depth: reading, verifying and writing are linear
in the number of layers (quadratic steps made 10,000 layers take minutes).
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
from hostile_limits import time_limit

from slayerc.backends.files import load, save
from slayerc.backends.hdf5.h5io import FixedStr, Str, dump_tree
from slayerc.errors import BackendError
from slayerc.ir.verify import verify


def _dense(width: int = 4, th: int = 80, weight: float = 2.0, bias: float | None = None) -> dict:
    layer = {"type": FixedStr("dense"), "shape": np.array([width]),
             "weight": np.full((width, width), weight, np.float32),
             "neuron": {"type": Str("CUBA"), "iDecay": np.int64(1024), "vDecay": np.int64(128),
                        "vThMant": np.int64(th), "refDelay": np.int64(1),
                        "gradedSpike": np.bool_(False)}}
    if bias is not None:
        layer["bias"] = np.full(width, bias, np.float32)
    return layer


def netlist(path: Path, layers: list[dict], width: int = 4) -> Path:
    """Write a netlist of an input layer and ``layers`` (fast: no per-layer h5py overhead)."""
    tree = {"0": {"type": FixedStr("input"), "shape": np.array([width])}}
    tree.update({str(i): layer for i, layer in enumerate(layers, 1)})
    dump_tree(path, {"layer": tree})
    return path


@pytest.mark.parametrize(("layer", "key", "value"), [
    (_dense(th=2 ** 31), "neuron/vThMant", "2147483648 does not fit loihi2's 17-bit threshold"),
    (_dense(th=131072), "neuron/vThMant", "131072 does not fit"),
    (_dense(weight=1e6), "weight", "weight 1000000 does not fit loihi2's 8-bit weights"),
    (_dense(weight=-258), "weight", "weight -258 does not fit"),
    (_dense(bias=8192), "bias", "8192 does not fit loihi2's 13-bit bias"),
])
def test_values_loihi2_cannot_hold_are_not_written_silently(tmp_path: Path, layer: dict,
                                                            key: str, value: str) -> None:
    src = netlist(tmp_path / "in.net", [_dense(), layer])
    with time_limit(20):
        g = load(src)
        assert "quant-legal" not in g.facts
        with pytest.raises(BackendError, match=rf"%layer2 .*key '{key}': {value}.*legalize-quant"):
            save(g, tmp_path / "out.net")
        assert not (tmp_path / "out.net").exists()
        save(g, tmp_path / "ext.net", target="slayerc")  # slayerc's own runtime holds them
        assert load(tmp_path / "ext.net").facts == g.facts


def test_legal_values_keep_quant_legal(tmp_path: Path) -> None:
    g = load(netlist(tmp_path / "in.net", [_dense(th=131071, weight=-256, bias=4094)]))
    assert "quant-legal" in g.facts
    save(g, tmp_path / "out.net")


def _as_read(tree: dict) -> dict:
    """The tree as ``load_tree`` returns it (strings as the bytes arrays h5py gives back)."""
    def value(v):
        if isinstance(v, dict):
            return _as_read(v)
        if isinstance(v, FixedStr):
            return np.array([v.encode()], "S10")
        return np.asarray(v.encode()) if isinstance(v, Str) else v
    return {k: value(v) for k, v in tree.items()}


def _in_memory_seconds(n: int) -> float:
    """Netlist tree → graph → verify → default pipeline → netlist tree and .sir text → graph:
    everything but h5py (whose per-dataset cost is linear and would hide a quadratic step)."""
    from slayerc.backends.hdf5.reader import tree_to_graph
    from slayerc.backends.hdf5.writer import graph_to_tree
    from slayerc.ir import parse, print_graph
    from slayerc.passes import PassManager
    from slayerc.passes.pipelines import default_pipeline

    tree = _as_read({"layer": {"0": {"type": FixedStr("input"), "shape": np.array([4])},
                               **{str(i): _dense() for i in range(1, n + 1)}}})
    start = time.perf_counter()
    g = verify(tree_to_graph(tree, "deep.net", None))
    g = PassManager.from_string(default_pipeline("loihi2", netlist=True)).run(g)
    graph_to_tree(g, "loihi2")
    parse(print_graph(g))
    return time.perf_counter() - start


def test_compile_steps_are_linear_in_depth() -> None:
    with time_limit(60):
        times = [_in_memory_seconds(n) for n in (100, 800)]
    # 8x the layers: about 8x the time when linear, 64x when quadratic
    assert times[1] < 16 * times[0] + 0.5, times


def test_twenty_thousand_layer_chain_compiles_in_seconds() -> None:
    """Shape inference, verification, the default pipeline, the netlist writer, the text form
    and the rewriter's user index on a 20,000-node chain: seconds when linear, minutes (the
    time limit) for any step that scans the graph once per node."""
    from slayerc.backends.hdf5.writer import graph_to_tree
    from slayerc.ir import parse, print_graph
    from slayerc.ir.core import GraphBuilder
    from slayerc.ir.ops import Flatten, Input, Output
    from slayerc.passes import PassManager, shape_infer
    from slayerc.passes.pipelines import default_pipeline
    from slayerc.passes.rewrite import Rewriter

    b = GraphBuilder()
    x = b.add(Input, "inp", shape=(4,), dtype="f32")
    for i in range(20_000):
        x = b.add(Flatten, f"layer{i + 1}", [x])
    b.add(Output, "out", [x])
    start = time.perf_counter()
    with time_limit(60):
        g = verify(shape_infer.run(b.build()))
        graph_to_tree(g, "slayerc")
        assert parse(print_graph(g)) == g
        rw = Rewriter(g)
        assert all(len(rw.users(name)) == (name != "out") for name in g.nodes)
        PassManager.from_string(default_pipeline("slayerc", netlist=True)).run(g)
    assert time.perf_counter() - start < 30


def test_hdf5_read_write_is_linear_in_depth(tmp_path: Path) -> None:
    flat = {"type": FixedStr("flatten"), "shape": np.array([4, 1, 1])}
    times = []
    with time_limit(60):
        for n in (300, 1200):
            path = netlist(tmp_path / f"{n}.net", [flat] * n)
            start = time.perf_counter()
            save(load(path), tmp_path / "out.net", target="slayerc")
            times.append(time.perf_counter() - start)
    assert times[1] < 8 * times[0] + 0.3, times
