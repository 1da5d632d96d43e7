"""The rewriter builds its user and parameter-use indexes at the first question, not when it
is made (issue 16: a pass that rewrites without asking paid for indexing every node).  Edits
made before and after that first question must leave the same answers as a full scan."""

from __future__ import annotations

import numpy as np

from slayerc.ir.core import GraphBuilder
from slayerc.ir.ops_layers import Dense, Input, Output
from slayerc.passes.rewrite import Rewriter


def _graph():
    b = GraphBuilder()
    x = b.add(Input, "inp", shape=(2,), dtype="f32")
    shared = b.param("w", np.ones((2, 2), np.float32))
    a = b.add(Dense, "a", [x], weight=shared)
    c = b.add(Dense, "c", [a], weight=shared)
    d = b.add(Dense, "d", [a], weight=b.param("wd", np.ones((2, 2), np.float32)))
    b.add(Output, "out", [c])
    b.add(Output, "out2", [d])
    return b.build()


def _scan(rw: Rewriter, name: str) -> list[str]:
    return [n.name for n in rw.nodes.values() if name in n.inputs]


def _uses(rw: Rewriter, pname: str) -> int:
    return sum(r.name == pname for n in rw.nodes.values() for _, r in n.param_refs())


def _edit(rw: Rewriter) -> None:
    rw.bypass("c")  # out now reads a
    d = rw.nodes["d"]
    rw.nodes["d"] = d.replace(weight=rw.nodes["a"].weight)  # w shared by a and d now
    rw.nodes.pop("out2")


def _check(rw: Rewriter) -> None:
    for name in rw.nodes:
        assert [u.name for u in rw.users(name)] == _scan(rw, name), name
    for pname in ("w", "wd"):
        assert rw._uses(pname) == _uses(rw, pname), pname


def test_edits_before_the_first_question_are_indexed() -> None:
    rw = Rewriter(_graph())
    _edit(rw)
    assert [u.name for u in rw.users("a")] == ["d", "out"]
    assert rw._uses("w") == 2 and rw._uses("wd") == 0
    _check(rw)


def test_edits_after_the_first_question_keep_the_index_in_step() -> None:
    rw = Rewriter(_graph())
    assert [u.name for u in rw.users("a")] == ["c", "d"]
    _edit(rw)
    assert [u.name for u in rw.users("a")] == ["d", "out"]
    _check(rw)


def test_put_copies_a_shared_array_whether_or_not_indexed() -> None:
    for ask_first in (False, True):
        rw = Rewriter(_graph())
        if ask_first:
            rw.users("inp")
        ref = rw.nodes["a"].weight
        new = rw.put(ref, "a.weight", np.zeros((2, 2), np.float32))
        assert new.name != "w" and (rw.params["w"] == 1).all()  # c still reads w


def _oracle_params(rw: Rewriter) -> set[str]:
    """What finish keeps, by full scans: read now, or read by no node of the input graph."""
    now = {r.name for n in rw.nodes.values() for _, r in n.param_refs()}
    before = rw.g.used_params()
    return {k for k in rw.params if k in now or k not in before}


def test_finish_drops_exactly_the_params_no_node_reads_any_more() -> None:
    g = _graph()
    cases = {
        "nothing": lambda rw: None,
        "overwrite": lambda rw: rw.put(rw.nodes["d"].weight, "d.weight", np.zeros((2, 2))),
        "bypass_c": lambda rw: rw.bypass("c"),  # w still read by a
        "d_reads_w": lambda rw: rw.nodes.__setitem__(
            "d", rw.nodes["d"].replace(weight=rw.nodes["a"].weight)),  # wd dropped
        "remove_d": lambda rw: (rw.nodes.pop("out2"), rw.nodes.pop("d")),  # wd dropped
        "new_param": lambda rw: rw.put(None, "extra", np.ones(2)),  # never read: kept
    }
    expected_dropped = {"nothing": set(), "overwrite": set(), "bypass_c": set(),
                        "d_reads_w": {"wd"}, "remove_d": {"wd"}, "new_param": set()}
    for name, edit in cases.items():
        rw = Rewriter(g)
        edit(rw)
        keep = _oracle_params(rw)
        out = rw.finish((), ())
        assert set(out.params) == keep, name
        assert set(rw.params) - set(out.params) == expected_dropped[name], name
