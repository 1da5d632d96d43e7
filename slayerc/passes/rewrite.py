"""A scratch copy of a graph for passes that rewrite it: nodes and params as local dicts.

Passes stay pure: :class:`Rewriter` copies the node and parameter dicts of the input graph,
the pass edits the copies, and :meth:`Rewriter.finish` builds the new graph value (dropping the
parameters its edits left unreferenced).  Not a pass; shared by ``canonicalize``,
``fold-batchnorm`` and ``sparsify-masks``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

import numpy as np

from slayerc.ir.core import Graph, Op, ParamRef


class _Nodes(dict[str, Op]):
    """The rewriter's node dict with two indexes kept in step with every edit: who reads each
    node, and how many attributes refer to each parameter.  Without them ``users``/``put``
    scanned every node, and passes that ask once per layer were quadratic in depth."""

    def __init__(self, nodes: Iterable[tuple[str, Op]] = ()):
        super().__init__(nodes)
        self.pos: dict[str, int] = {}  # insertion rank: users come back in graph order
        self.readers: dict[str, dict[str, None]] = {}
        self.refs: dict[str, int] = {}
        self.counter = -1
        # built at the first question (users, uses): a pass that asks none, or a rewriter
        # replaced before it asks, never pays for indexing every node
        self.built = False

    def _build(self) -> None:
        self.built = True
        for key, node in self.items():
            self.pos[key] = self.counter = self.counter + 1
            self._index(key, node, +1)

    def _index(self, key: str, node: Op, step: int) -> None:
        for src in node.inputs:
            if step > 0:
                self.readers.setdefault(src, {})[key] = None
            else:
                self.readers.get(src, {}).pop(key, None)
        for _, ref in node.param_refs():
            self.refs[ref.name] = self.refs.get(ref.name, 0) + step

    def __setitem__(self, key: str, node: Op) -> None:
        if not self.built:
            super().__setitem__(key, node)
            return
        old = self.get(key)
        if old is not None:
            self._index(key, old, -1)
        else:
            self.pos[key] = self.counter = self.counter + 1
        super().__setitem__(key, node)
        self._index(key, node, +1)

    def __delitem__(self, key: str) -> None:
        if self.built:
            self._index(key, self[key], -1)
            del self.pos[key]
        super().__delitem__(key)

    def pop(self, key: str, *default: Op) -> Op:  # type: ignore[override]
        """Remove and return a node (keeping the indexes in step)."""
        if key not in self:
            return super().pop(key, *default)
        node = self[key]
        del self[key]
        return node

    def users(self, name: str) -> list[Op]:
        if not self.built:
            self._build()
        return [self[k] for k in sorted(self.readers.get(name, ()), key=self.pos.__getitem__)]

    def uses(self, pname: str) -> int:
        if not self.built:
            self._build()
        return self.refs.get(pname, 0)


class Rewriter:
    """Mutable working copy of a graph's nodes and params (never of the graph itself)."""

    def __init__(self, g: Graph):
        self.g = g
        self.nodes = g.nodes  # type: ignore[assignment]  (copied by the setter)
        self.params: dict[str, np.ndarray] = dict(g.params)

    @property
    def nodes(self) -> dict[str, Op]:
        """The working nodes, in graph order (edit freely: the indexes follow)."""
        return self._nodes

    @nodes.setter
    def nodes(self, nodes: Mapping[str, Op]) -> None:
        self._nodes = _Nodes(nodes.items())

    def users(self, name: str) -> list[Op]:
        """The nodes that read ``name`` (each once), in graph order."""
        return self._nodes.users(name)

    def only_user(self, name: str) -> Op | None:
        """The single node reading ``name`` (through one input), or None."""
        users = self.users(name)
        if len(users) != 1 or users[0].inputs.count(name) != 1:
            return None
        return users[0]

    def bypass(self, name: str) -> None:
        """Remove a one-input node; its users read its input instead."""
        node = self.nodes.pop(name)
        src = node.inputs[0]
        for user in self.users(name):
            self.nodes[user.name] = user.replace(
                inputs=tuple(src if i == name else i for i in user.inputs))

    def fresh_name(self, base: str) -> str:
        """``base``, or ``base_1``, ``base_2``…: the first name no node has."""
        name, i = base, 1
        while name in self.nodes:
            name, i = f"{base}_{i}", i + 1
        return name

    def insert_before(self, anchor: str, node: Op) -> None:
        """Put ``node`` (which reads the anchor's first input) right before ``anchor``, whose
        first input becomes ``node``."""
        nodes: dict[str, Op] = {}
        for key, n in self.nodes.items():
            if key == anchor:
                nodes[node.name] = node
                n = n.replace(inputs=(node.name, *n.inputs[1:]))
            nodes[key] = n
        self.nodes = nodes

    def array(self, ref: ParamRef | None) -> np.ndarray | None:
        """The array a reference points at (None for None)."""
        return None if ref is None else self.params[ref.name]

    def put(self, ref: ParamRef | None, base: str, array: np.ndarray) -> ParamRef:
        """Store ``array`` for one attribute of one node.

        It overwrites ``ref``'s array when that attribute is its only use, and is stored under a
        fresh name derived from ``base`` otherwise (so shared parameters are never changed).
        """
        if ref is not None and self._uses(ref.name) <= 1:
            self.params[ref.name] = array
            return ref
        name, i = base, 1
        while name in self.params:
            name, i = f"{base}_{i}", i + 1
        self.params[name] = array
        return ParamRef(name)

    def _uses(self, pname: str) -> int:
        return self._nodes.uses(pname)

    def graph(self) -> Graph:
        """The current state as a graph (for analyses), facts unchanged."""
        return self.g.replace(nodes=self.nodes, params=self.params)

    def finish(self, establishes: Iterable[str], invalidates: Iterable[str]) -> Graph:
        """The new graph: params the edits left unreferenced are dropped, facts updated."""
        drop = self._unreferenced()
        params = {k: v for k, v in self.params.items() if k not in drop}
        facts = (self.g.facts - frozenset(invalidates)) | frozenset(establishes)
        return self.g.replace(nodes=self.nodes, params=params, facts=facts)

    def _unreferenced(self) -> set[str]:
        """The params some node of the input graph read and no node reads now.

        Only a replaced or removed node can have let go of one, so the candidates are what those
        read before and do not read now; the whole graph is scanned only when some are left
        (not at all when the edits kept every reference, as overwriting arrays does).
        """
        old, nodes = self.g.nodes, self.nodes
        changed = [k for k, n in nodes.items() if old.get(k) is not n]
        was = [old[k] for k in changed if k in old] + [old[k] for k in old.keys() - nodes.keys()]
        maybe = {r.name for n in was for _, r in n.param_refs()}
        if not maybe:
            return maybe
        maybe -= {r.name for k in changed for _, r in nodes[k].param_refs()}
        if not maybe:
            return maybe
        return maybe - {r.name for n in nodes.values() for _, r in n.param_refs()}


def is_power_of_two(x: float) -> bool:
    """True for ±2^k: multiplying a float by it is exact (barring overflow and underflow)."""
    return math.isfinite(x) and x != 0 and abs(math.frexp(x)[0]) == 0.5


def scaled(a: np.ndarray, factor: float) -> np.ndarray:
    """``a · factor`` in ``a``'s own dtype (exact when ``factor`` is a power of two)."""
    return (a * np.asarray(factor, dtype=a.dtype)).astype(a.dtype)


def channel_view(v: np.ndarray, ndim: int) -> np.ndarray:
    """A per-channel vector shaped to broadcast over an array with channels first."""
    return v.reshape(-1, *([1] * (ndim - 1)))


def quantize_8bit(x: np.ndarray, scale: int) -> np.ndarray:
    """slayer's ``quantize_8bit`` in float32, as the interpreter and lava-dl compute it."""
    step = np.float32(2.0 / scale)
    q = np.round(x.astype(np.float32) / step) * step
    return np.clip(q, np.float32(-256.0 / scale), np.float32(254.0 / scale))
