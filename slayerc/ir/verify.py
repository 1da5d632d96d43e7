"""``verify(g)``: check every structural and per-op invariant and report all problems at once.

Structure: node names valid and unique, inputs defined and of the right count, inputs that name
a later node only on delaying ops (``axon.shift``, ``axon.delay`` with delay >= 1: the only legal
way to close a cycle), io nodes well formed.  Then each op's ``check`` (attributes, parameters)
and, when the graph has the ``shapes`` fact, that every stored shape equals the inferred one.
"""

from __future__ import annotations

from collections.abc import Iterator

from slayerc.errors import VerifyError
from slayerc.ir.core import FACTS, NAME_RE, PARAM_RE, Graph, Op, ShapeProblem


def verify(g: Graph) -> Graph:
    """Raise :class:`VerifyError` listing every problem of ``g``; return ``g`` when it is sound."""
    problems = list(problems_of(g))
    if problems:
        raise VerifyError(problems)
    return g


def problems_of(g: Graph) -> Iterator[str]:
    """Every problem of ``g``, one message each (no repeats), naming the node and its origin."""
    seen: set[str] = set()
    for problem in _all_problems(g):
        if problem not in seen:
            seen.add(problem)
            yield problem


def _all_problems(g: Graph) -> Iterator[str]:
    yield from _structure(g)
    for node in g:
        yield from _node_params(g, node)
        yield from node.check(g)
    if "shapes" in g.facts:
        yield from _shapes(g)
    for fact in sorted(g.facts - set(FACTS)):
        yield f"graph: unknown fact '{fact}' (known: {', '.join(FACTS)})"


def _structure(g: Graph) -> Iterator[str]:
    seen: dict[str, int] = {}
    for pos, (key, node) in enumerate(g.nodes.items()):
        if key != node.name:
            yield f"{node.describe()}: stored under the name '{key}'"
        if node.name in seen:
            yield f"{node.describe()}: duplicate node name (also node #{seen[node.name]})"
        seen.setdefault(node.name, pos)
        if not NAME_RE.match(node.name):
            yield f"{node.describe()}: invalid node name (use letters, digits and '_')"
        yield from _inputs(g, node, pos, seen)
    if not g.outputs:
        yield "graph: no io.output node; mark what the graph computes with io.output"
    for node in g.outputs:
        for user in g.users(node.name):
            yield f"{user.describe()}: reads io.output %{node.name}; read its producer instead"
    for name in g.params:
        if not PARAM_RE.match(name):
            yield f"graph: invalid parameter name @{name}"


def _inputs(g: Graph, node: Op, pos: int, seen: dict[str, int]) -> Iterator[str]:
    arity = node.ARITY
    if arity is not None and len(node.inputs) != arity:
        yield f"{node.describe()}: takes {arity} input{'s' if arity != 1 else ''}, " \
              f"got {len(node.inputs)}"
    if arity is None and len(node.inputs) < 2:
        yield f"{node.describe()}: takes two or more inputs, got {len(node.inputs)}"
    for src in node.inputs:
        if src not in g.nodes:
            yield f"{node.describe()}: unknown input %{src}"
        elif src not in seen or src == node.name:
            yield from _forward_ref(g, node, src)


def _forward_ref(g: Graph, node: Op, src: str) -> Iterator[str]:
    """A use before definition is a recurrent edge: legal only into a delay of >= 1 step."""
    if not node.is_delay():
        yield f"{node.describe()}: uses %{src} before it is defined; a cycle must pass " \
              "through axon.shift or axon.delay with a delay of at least one step"
        return
    min_delay = getattr(node, "min_delay", None)
    if min_delay is not None and min_delay(g) < 1:
        yield f"{node.describe()}: closes a cycle through %{src} but some channel has delay 0; " \
              "every channel on a cycle must wait at least one step"


def _node_params(g: Graph, node: Op) -> Iterator[str]:
    for attr, ref in node.param_refs():
        if ref.name not in g.params:
            yield f"{node.describe()}: attribute '{attr}' refers to missing parameter @{ref.name}"


def _shapes(g: Graph) -> Iterator[str]:
    for node in g:
        if node.shape is None or node.dtype is None:
            yield f"{node.describe()}: has no shape although the graph claims the 'shapes' fact"
            continue
        ins = [g.nodes[i] for i in node.inputs if i in g.nodes]
        if len(ins) != len(node.inputs) or any(i.shape is None or i.dtype is None for i in ins):
            continue
        try:
            shape, dtype = node.infer([(i.shape, i.dtype) for i in ins], g)  # type: ignore[misc]
        except ShapeProblem as e:
            yield f"{node.describe()}: {e}"
            continue
        except (KeyError, AttributeError, TypeError, IndexError, ValueError):
            continue  # a malformed attribute or parameter; reported by the op's own check
        if tuple(shape) != tuple(node.shape) or dtype != node.dtype:
            yield f"{node.describe()}: stored type {node.dtype}{list(node.shape)} does not " \
                  f"match the inferred {dtype}{list(shape)}"
