"""Shape inference: every node's per-step shape and dtype from the ``io.input`` shapes.

An IR function (the ``shape-infer`` pass wraps it; backends call it when they read or write a
graph without shapes).  Shapes follow from the op rules (``Op.infer``) in graph order; recurrent
loops are resolved by taking a ``tensor.add`` on a loop from its known inputs and checking the
loop afterwards.  All mismatches are reported together, each naming the node.
"""

from __future__ import annotations

from slayerc.errors import VerifyError
from slayerc.ir.core import Graph, Op, ShapeProblem
from slayerc.ir.verify import problems_of

Typed = tuple[tuple[int, ...], str]


def infer_shapes(g: Graph) -> Graph:
    """Return ``g`` with every node's ``shape`` and ``dtype`` set and the fact ``shapes``."""
    structural = [p for p in problems_of(g.replace(facts=g.facts - {"shapes"}))]
    if structural:
        raise VerifyError(structural)
    known: dict[str, Typed] = {}
    problems: list[str] = []
    pending = list(g.nodes.values())
    while pending:
        progress, pending = _sweep(g, pending, known, problems)
        if pending and not progress and not _break_loop(pending, known):
            for node in pending:
                missing = [f"%{i}" for i in node.inputs if i not in known]
                problems.append(f"{node.describe()}: shape depends on {', '.join(missing)}, "
                                "which could not be inferred")
            break
    if problems:
        raise VerifyError(problems)
    nodes = [_typed(n, known[n.name]) for n in g]
    return g.replace(nodes=nodes, facts=g.facts | {"shapes"})


def _typed(node: Op, typed: Typed) -> Op:
    """``node`` with its inferred type; the same object when it already has it (so a later
    ``verify(g, since=...)`` need not check it again)."""
    shape = tuple(int(d) for d in typed[0])
    if node.shape == shape and node.dtype == typed[1]:
        return node
    return node.replace(shape=shape, dtype=typed[1])


def _sweep(g: Graph, pending: list[Op], known: dict[str, Typed],
           problems: list[str]) -> tuple[bool, list[Op]]:
    """Infer every pending node whose inputs are known; return (progress, still pending)."""
    rest, progress = [], False
    failed = {p.split(" ", 1)[0] for p in problems}
    for node in pending:
        if any(i not in known for i in node.inputs):
            if any(f"%{i}" in failed for i in node.inputs):
                continue  # an input failed already; do not report a consequence of it
            rest.append(node)
            continue
        progress = True
        try:
            known[node.name] = node.infer([known[i] for i in node.inputs], g)
        except ShapeProblem as e:
            problems.append(f"{node.describe()}: {e}")
            failed.add(f"%{node.name}")
    return progress, rest


def _break_loop(pending: list[Op], known: dict[str, Typed]) -> bool:
    """Give the first add on a loop the type of its known inputs; False when there is none."""
    for node in pending:
        if node.OP != "tensor.add":
            continue
        types = {known[i] for i in node.inputs if i in known}
        if len(types) == 1:
            known[node.name] = types.pop()
            pending.remove(node)
            return True
    return False
