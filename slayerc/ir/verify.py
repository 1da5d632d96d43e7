"""``verify(g)``: check every structural and per-op invariant and report all problems at once.

Structure: node names valid and unique, inputs defined and of the right count, inputs that name
a later node only on delaying ops (``axon.shift``, ``axon.delay`` with delay >= 1: the only legal
way to close a cycle), io nodes well formed.  Then each op's ``check`` (attributes, parameters)
and, when the graph has the ``shapes`` fact, that every stored shape equals the inferred one.

``verify(g, since=prev)`` checks again only what can have changed since ``prev`` passed: a node
that is the same object in both graphs, with the same parameter arrays and the same input nodes,
gives the same answers to its op's ``check`` and shape rule (both read only the node, its
parameters and its inputs' types), so a pipeline that verifies after every pass pays per pass
for the nodes that pass rewrote, not for the whole graph again.
"""

from __future__ import annotations

from collections.abc import Iterator

from slayerc.errors import VerifyError
from slayerc.ir.core import FACTS, NAME_RE, PARAM_RE, Graph, Op, ShapeProblem


def verify(g: Graph, since: Graph | None = None) -> Graph:
    """Raise :class:`VerifyError` listing every problem of ``g``; return ``g`` when it is sound.

    ``since``: a graph that passed ``verify`` (graphs are values: never edited in place); the
    per-node checks then skip the nodes ``g`` shares with it unchanged.  The structure (names,
    order, cycles, io nodes) is always checked whole.
    """
    if is_verified(g):
        return g
    problems = list(problems_of(g, since))
    if problems:
        raise VerifyError(problems)
    object.__setattr__(g, "_verified", True)  # (as Graph.users caches its index)
    return g


def is_verified(g: Graph) -> bool:
    """Whether ``verify`` passed on this graph value before (graphs are values: a graph that
    passed once passes again, so writers and pipelines need not check it twice)."""
    return bool(g.__dict__.get("_verified"))


def problems_of(g: Graph, since: Graph | None = None) -> Iterator[str]:
    """Every problem of ``g``, one message each (no repeats), naming the node and its origin
    (``since``: as for :func:`verify`)."""
    seen: set[str] = set()
    for problem in _all_problems(g, since):
        if problem not in seen:
            seen.add(problem)
            yield problem


def _all_problems(g: Graph, since: Graph | None) -> Iterator[str]:
    fresh = list(g) if since is None else _fresh(g, since)
    yield from _structure(g, None if since is None else {n.name for n in fresh})
    for node in fresh:
        yield from _node_params(g, node)
        yield from node.check(g)
    if "shapes" in g.facts:
        yield from _shapes(g, fresh if since is not None and "shapes" in since.facts else list(g))
    for fact in sorted(g.facts - set(FACTS)):
        yield f"graph: unknown fact '{fact}' (known: {', '.join(FACTS)})"


def _fresh(g: Graph, since: Graph) -> list[Op]:
    """The nodes of ``g`` to check again: new objects, nodes reading a new, replaced or removed
    parameter array, and nodes reading a node that is new or gone (set operations, so an
    unchanged node costs a few dictionary lookups)."""
    old = since.nodes
    changed = {k for k, n in g.nodes.items() if old.get(k) is not n} | (old.keys() - g.nodes)
    arrays = {k for k, a in g.params.items() if since.params.get(k) is not a}
    arrays |= since.params.keys() - g.params
    return [n for k, n in g.nodes.items()
            if k in changed or not changed.isdisjoint(n.inputs)
            or (arrays and any(ref.name in arrays for _, ref in n.param_refs()))]


def _structure(g: Graph, fresh: set[str] | None) -> Iterator[str]:
    """Names, order and inputs (``fresh``: the nodes whose own name and arity need a look;
    None: all)."""
    seen: dict[str, int] = {}
    for pos, (key, node) in enumerate(g.nodes.items()):
        if key != node.name:
            yield f"{node.describe()}: stored under the name '{key}'"
        if node.name in seen:
            yield f"{node.describe()}: duplicate node name (also node #{seen[node.name]})"
        seen.setdefault(node.name, pos)
        new = fresh is None or key in fresh
        if new and not NAME_RE.match(node.name):
            yield f"{node.describe()}: invalid node name (use letters, digits and '_')"
        yield from _inputs(g, node, seen, new)
    outputs = _output_readers(g)
    if not outputs:
        yield "graph: no io.output node; mark what the graph computes with io.output"
    for name, users in outputs.items():
        for user in users:
            yield f"{user.describe()}: reads io.output %{name}; read its producer instead"
    for name in g.params:
        if not PARAM_RE.match(name):
            yield f"graph: invalid parameter name @{name}"


def _output_readers(g: Graph) -> dict[str, list[Op]]:
    """Each io.output node's name -> the nodes that read it (one scan: ``g.users`` would index
    the whole graph, which a verify after every pass paid again for each new graph)."""
    outputs: dict[str, list[Op]] = {n.name: [] for n in g if n.OP == "io.output"}
    for node in g:
        for src in dict.fromkeys(node.inputs):
            if src in outputs:
                outputs[src].append(node)
    return outputs


def _inputs(g: Graph, node: Op, seen: dict[str, int], new: bool) -> Iterator[str]:
    arity = node.ARITY if new else None  # (an unchanged node's arity was checked before)
    if arity is not None and len(node.inputs) != arity:
        yield f"{node.describe()}: takes {arity} input{'s' if arity != 1 else ''}, " \
              f"got {len(node.inputs)}"
    if new and node.ARITY is None and len(node.inputs) < 2:
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


def _shapes(g: Graph, nodes: list[Op]) -> Iterator[str]:
    for node in nodes:
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
