"""Verifying after every pass costs what the passes changed, not the whole graph each time.

``verify(g, since=prev)`` re-checks only nodes that are new objects, read new parameter arrays or
read a changed input node; the pass manager hands it the last verified graph.  These tests pin
down both halves: problems in anything that changed are still found, and a deep graph's
unchanged nodes are checked once per pipeline, not once per pass.
"""

from __future__ import annotations

import numpy as np
import pytest

from slayerc.errors import PassError, VerifyError
from slayerc.ir import Graph, GraphBuilder, verify
from slayerc.ir import ops as o
from slayerc.passes import PassManager


def _chain(depth: int) -> Graph:
    b = GraphBuilder()
    x = b.add(o.Input, "x", shape=(4,), dtype="f32")
    for i in range(depth):
        w = b.param(f"fc{i}.weight", np.full((4, 4), 0.5, np.float32))
        x = b.add(o.Dense, f"fc{i}", [x], weight=w)
        x = b.add(o.Cuba, f"lif{i}", [x], current_decay=0.25, voltage_decay=0.5)
    b.add(o.Output, "y", [x])
    return verify(b.build())


def _problems(g: Graph, since: Graph) -> list[str]:
    with pytest.raises(VerifyError) as info:
        verify(g, since=since)
    return info.value.problems


def test_a_replaced_node_is_checked_again() -> None:
    g = _chain(3)
    bad = g.with_node(g["lif1"].replace(current_decay=1.5))
    assert _problems(bad, g) == ["%lif1 (neuron.cuba): 'current_decay' = 1.5 is above 1.0"]


def test_a_replaced_parameter_array_is_checked_again() -> None:
    """Same node object, new array under the same name (how a pass rewrites weights)."""
    g = _chain(3)
    params = dict(g.params)
    params["fc2.weight"] = np.full((4, 4), np.nan, np.float32)
    (p,) = _problems(g.replace(params=params), g)
    assert p == "%fc2 (synapse.dense): parameter @fc2.weight ('weight') holds inf or nan"


def test_a_removed_parameter_array_is_noticed() -> None:
    """``fc1`` is the same object, but its weight is gone from the graph's parameters."""
    g = _chain(3)
    params = dict(g.params)
    del params["fc1.weight"]
    assert _problems(g.replace(params=params), g) == [
        "%fc1 (synapse.dense): attribute 'weight' refers to missing parameter @fc1.weight"]


def test_a_node_whose_input_changed_is_checked_again() -> None:
    """``fc1`` is the same object, but its producer now gives 5 features: its shape rule must
    run again (the stored types claim the 'shapes' fact)."""
    from slayerc.passes import shape_infer

    g = shape_infer.run(_chain(2))
    wider = g.with_node(g["lif0"].replace(shape=(5,)))
    problems = _problems(wider, g)
    assert any(p.startswith("%fc1 (synapse.dense): weight [4, 4] expects 4 input features")
               for p in problems), problems


def test_structure_is_always_checked_whole() -> None:
    g = _chain(2)
    nodes = dict(g.nodes)
    del nodes["lif0"]  # fc1 is unchanged but now reads a missing node
    assert _problems(g.replace(nodes=nodes), g) == ["%fc1 (synapse.dense): unknown input %lif0"]


def test_pipeline_checks_each_unchanged_node_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """Four passes that change nothing, on a graph not verified yet: every neuron's check runs
    once (the first verify), not four times."""
    calls: list[str] = []
    check = o.Cuba.check

    def counting(self, g):
        calls.append(self.name)
        return check(self, g)

    monkeypatch.setattr(o.Cuba, "check", counting)
    g = _chain(50).replace()  # a new graph value: not verified yet
    calls.clear()
    PassManager.from_string("canonicalize,canonicalize,canonicalize,canonicalize").run(g)
    assert sorted(calls) == sorted(f"lif{i}" for i in range(50))


def test_pipeline_still_names_a_pass_that_breaks_a_node(monkeypatch: pytest.MonkeyPatch) -> None:
    """The second canonicalize returns a graph with one bad node: the verify after it (which
    skips the unchanged ones) still fails, naming the pass."""
    from slayerc.passes import canonicalize

    run = canonicalize.run_with_report
    seen = []

    def breaking(g, *args):
        out, report = run(g, *args)
        seen.append(1)
        if len(seen) == 2:
            out = out.with_node(out["lif3"].replace(voltage_decay=-0.5))
        return out, report

    monkeypatch.setattr(canonicalize, "run_with_report", breaking)
    with pytest.raises(PassError, match=r"in canonicalize, after canonicalize: .*%lif3 "
                                        r"\(neuron.cuba\): 'voltage_decay' = -0.5 is below 0.0"):
        PassManager.from_string("canonicalize,canonicalize,canonicalize").run(_chain(5))


def test_a_verified_graph_is_not_checked_again(monkeypatch: pytest.MonkeyPatch) -> None:
    """A graph value that passed verify passes again without a check (the writer verifies the
    pipeline's result; a pipeline given a verified graph starts from it), and shape inference
    keeps the nodes whose types are known, so the pipeline's first verify skips them too."""
    from slayerc.ir.verify import is_verified
    from slayerc.passes import shape_infer

    calls: list[str] = []
    check = o.Cuba.check

    def counting(self, g):
        calls.append(self.name)
        return check(self, g)

    monkeypatch.setattr(o.Cuba, "check", counting)
    g = shape_infer.run(_chain(20))
    assert verify(g) is g and is_verified(g)
    calls.clear()
    assert verify(g) is g and calls == []
    PassManager.from_string("canonicalize,canonicalize").run(g)
    assert calls == []
    again = shape_infer.run(g)
    assert all(again[n.name] is n for n in g)
    assert not is_verified(g.replace())  # a new graph value starts unverified
    bad = g.with_node(g["lif3"].replace(current_decay=2.0))
    with pytest.raises(VerifyError, match="'current_decay' = 2.0 is above 1.0"):
        verify(bad)
    assert not is_verified(bad)
