"""Core IR data structures: :class:`Loc`, :class:`ParamRef`, :class:`Op`, :class:`Graph`.

The IR is a dataflow graph of SNN primitives over time.  Every tensor flowing along an edge is a
sequence over time steps; ``shape`` is the per-step shape without batch and time: ``(C,)`` for a
dense layer, ``(C, H, W)`` for a convolutional one.  ``dtype`` is ``"f32"`` (real values, spikes
included) or ``"c32"`` (a complex pair ``(re, im)`` produced by a complex synapse).

Values are in *slayer units* (floats, the units of lava-dl's modelling API): a weight of 44 in a
netx netlist is ``44/64`` here, a decay ``iDecay=1024`` is ``0.25``, a threshold ``vThMant=80`` is
``1.25``.  The fixed-point runtime and the hdf5 backend convert to and from integers.

Nodes never hold arrays; they hold :class:`ParamRef` names into ``Graph.params``.  Graphs are
values: build them with :class:`GraphBuilder` and change them with :meth:`Graph.replace`.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import re
import typing
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
PARAM_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.]*$")
DTYPES = ("f32", "c32")

#: Known graph facts, each established by a pass and required by others.
FACTS = ("shapes", "bn-folded", "canonical", "delays-legal", "quant-legal", "masks-sparsified",
         "layers-legal")


@dataclass(frozen=True, slots=True)
class Loc:
    """Where a node came from: the torch module path and the source ``file:line``."""

    module: str | None = None
    file: str | None = None
    line: int | None = None

    def __str__(self) -> str:
        parts = []
        if self.module is not None:
            parts.append(f"module {self.module}")
        if self.file is not None:
            parts.append(f"at {self.file}:{self.line}" if self.line is not None else self.file)
        return " ".join(parts)


@dataclass(frozen=True, slots=True)
class ParamRef:
    """A reference to an array in ``Graph.params`` (printed as ``@name``)."""

    name: str

    def __str__(self) -> str:
        return f"@{self.name}"


#: An attribute that is a scalar (shared by all neurons) or an array (per channel or per neuron).
ScalarOrParam = float | ParamRef


@dataclass(frozen=True, slots=True, kw_only=True)
class Op:
    """Base class of every IR node.

    Subclasses set ``OP`` (the dotted op name), declare their attributes as further fields and
    override ``infer`` (shape rule) and ``check`` (attribute and parameter rule).  ``ARITY`` is the
    number of inputs (``None``: one or more).
    """

    OP: ClassVar[str] = ""
    ARITY: ClassVar[int | None] = 1
    #: True for ops whose output at step t depends only on inputs before t (legal in a cycle).
    DELAYS: ClassVar[bool] = False

    name: str
    inputs: tuple[str, ...] = ()
    shape: tuple[int, ...] | None = None
    dtype: str | None = None
    loc: Loc | None = None

    # -- generic helpers -------------------------------------------------------------------
    def attrs(self) -> dict[str, Any]:
        """The op-specific attributes (every field but name, inputs, shape, dtype, loc)."""
        return {k: getattr(self, k) for k in _attr_names(type(self))}

    def param_refs(self) -> list[tuple[str, ParamRef]]:
        """``(attribute, ref)`` for every parameter reference the node holds, in field order.

        A list, not a generator: every pass and every verify asks every node, and building
        the list in one comprehension costs a third of resuming a generator per attribute.
        """
        return [(key, value) for key in _ref_names(type(self))
                if isinstance(value := getattr(self, key), ParamRef)]

    def replace(self, **changes: Any) -> Op:
        """A copy of this node with some fields changed."""
        return dataclasses.replace(self, **changes)

    def describe(self) -> str:
        """``%name (op, from module m at file:line)``: how diagnostics name this node."""
        if self.loc is None or not str(self.loc):
            return f"%{self.name} ({self.OP})"
        lead = ", from " if self.loc.module is not None else ", "
        return f"%{self.name} ({self.OP}{lead}{self.loc})"

    def is_delay(self) -> bool:
        """Whether this node delays its input by at least one step (so it may close a cycle)."""
        return self.DELAYS

    # -- per-op rules (overridden) ---------------------------------------------------------
    def infer(self, ins: list[tuple[tuple[int, ...], str]],
              g: Graph) -> tuple[tuple[int, ...], str]:
        """Return ``(shape, dtype)`` of the output from the inputs' ``(shape, dtype)``.

        Raise :class:`ShapeProblem` with a message when the inputs do not fit.
        """
        return ins[0]

    def check(self, g: Graph) -> Iterator[str]:
        """Yield a message for every bad attribute value or parameter of this node."""
        return iter(())


BASE_FIELDS = frozenset({"name", "inputs", "shape", "dtype", "loc"})


@functools.cache
def _attr_names(cls: type[Op]) -> tuple[str, ...]:
    """The attribute field names of an op class, once per class (``dataclasses.fields`` is
    slow, and every pass asks every node)."""
    return tuple(f.name for f in dataclasses.fields(cls) if f.name not in BASE_FIELDS)


@functools.cache
def _ref_names(cls: type[Op]) -> tuple[str, ...]:
    """The attribute fields of an op class whose type admits a :class:`ParamRef` (the only
    ones :meth:`Op.param_refs` reads: most attributes are ints, strings and flags)."""
    try:
        hints = typing.get_type_hints(cls)
    except Exception:  # an annotation that does not resolve (an op defined in a function)
        return _attr_names(cls)
    return tuple(k for k in _attr_names(cls) if _admits_ref(hints.get(k, ParamRef)))


def _admits_ref(hint: Any) -> bool:
    if hint is ParamRef:
        return True
    return any(_admits_ref(a) for a in typing.get_args(hint))


class ShapeProblem(Exception):
    """Raised by ``Op.infer`` when the inputs' shapes do not fit the op (internal)."""


#: Registry of op classes by their dotted name; filled by ``slayerc.ir.ops``.
OPS: dict[str, type[Op]] = {}


def register(cls: type[Op]) -> type[Op]:
    """Add an op class to :data:`OPS` (used once per class in ``ops.py``)."""
    assert cls.OP and cls.OP not in OPS, cls
    OPS[cls.OP] = cls
    return cls


def _params_equal(a: Mapping[str, np.ndarray], b: Mapping[str, np.ndarray]) -> bool:
    if a.keys() != b.keys():
        return False
    for k in a:
        x, y = a[k], b[k]
        if x.dtype != y.dtype or x.shape != y.shape:
            return False
        if not np.array_equal(x, y, equal_nan=x.dtype.kind in "fc"):
            return False
    return True


@dataclass(frozen=True)
class Graph:
    """An SNN graph: ordered named nodes, a parameter store and the established facts.

    ``nodes`` is ordered: a node may only name a later node as input if it is a delaying op
    (``axon.delay``/``axon.shift``), which is how recurrence is written.  ``params`` maps names
    to numpy arrays.  ``facts`` records what passes have established (see :data:`FACTS`).
    """

    nodes: Mapping[str, Op] = field(default_factory=dict)
    params: Mapping[str, np.ndarray] = field(default_factory=dict)
    facts: frozenset[str] = frozenset()
    name: str = "main"

    def __post_init__(self) -> None:
        object.__setattr__(self, "nodes", dict(self.nodes))
        object.__setattr__(self, "params", dict(self.params))
        object.__setattr__(self, "facts", frozenset(self.facts))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Graph):
            return NotImplemented
        return (self.name == other.name and self.facts == other.facts
                and list(self.nodes.items()) == list(other.nodes.items())
                and _params_equal(self.params, other.params))

    __hash__ = None  # type: ignore[assignment]

    # -- access ----------------------------------------------------------------------------
    def __getitem__(self, name: str) -> Op:
        return self.nodes[name]

    def __iter__(self) -> Iterator[Op]:
        return iter(self.nodes.values())

    def __len__(self) -> int:
        return len(self.nodes)

    @property
    def inputs(self) -> list[Op]:
        """The ``io.input`` nodes, in order."""
        return [n for n in self.nodes.values() if n.OP == "io.input"]

    @property
    def outputs(self) -> list[Op]:
        """The ``io.output`` nodes, in order."""
        return [n for n in self.nodes.values() if n.OP == "io.output"]

    def users(self, name: str) -> list[Op]:
        """Nodes that read the output of ``name`` (each once, in graph order).

        The reverse index is built once per graph value, so asking for every node's users is
        linear in the graph's size (graphs are values: never edit ``nodes`` in place).
        """
        index = self.__dict__.get("_users")
        if index is None:
            index = {}
            for node in self.nodes.values():
                for src in dict.fromkeys(node.inputs):
                    index.setdefault(src, []).append(node)
            object.__setattr__(self, "_users", index)
        return list(index.get(name, ()))

    def param(self, ref: ParamRef | str) -> np.ndarray:
        """The array a reference points at."""
        key = ref.name if isinstance(ref, ParamRef) else ref
        return self.params[key]

    def value(self, attr: ScalarOrParam | None) -> np.ndarray | float | None:
        """Resolve an attribute that is a scalar or a parameter reference."""
        if isinstance(attr, ParamRef):
            return self.params[attr.name]
        return attr

    # -- functional updates ----------------------------------------------------------------
    def replace(self, *, nodes: Mapping[str, Op] | Iterable[Op] | None = None,
                params: Mapping[str, np.ndarray] | None = None,
                facts: Iterable[str] | None = None, name: str | None = None) -> Graph:
        """A new graph with some parts replaced (``nodes`` may be a list of ops)."""
        if nodes is not None and not isinstance(nodes, Mapping):
            nodes = {n.name: n for n in nodes}
        return Graph(nodes=self.nodes if nodes is None else nodes,
                     params=self.params if params is None else params,
                     facts=self.facts if facts is None else frozenset(facts),
                     name=self.name if name is None else name)

    def with_node(self, node: Op) -> Graph:
        """A new graph where the node of the same name is replaced by ``node``."""
        nodes = dict(self.nodes)
        nodes[node.name] = node
        return self.replace(nodes=nodes)

    def used_params(self) -> set[str]:
        """Names of the parameters some node refers to."""
        return {ref.name for n in self.nodes.values() for _, ref in n.param_refs()}

    def unique_name(self, base: str) -> str:
        """A node name derived from ``base`` that is not used yet (``base``, ``base_1``, ...)."""
        base = sanitize(base)
        if base not in self.nodes:
            return base
        i = 1
        while f"{base}_{i}" in self.nodes:
            i += 1
        return f"{base}_{i}"


def sanitize(name: str) -> str:
    """Turn a torch qualname into a node name: ``layers.2`` -> ``layers_2``."""
    s = re.sub(r"[^A-Za-z0-9_]", "_", name)
    if not s or s[0].isdigit():
        s = "n" + s if s else "n"
    return s


class GraphBuilder:
    """Builds a :class:`Graph` node by node.

    >>> b = GraphBuilder()
    >>> x = b.add(ops.Input, "x", shape=(4,))
    >>> w = b.param("fc.weight", np.ones((3, 4), np.float32))
    >>> y = b.add(ops.Dense, "fc", [x], weight=w)
    """

    def __init__(self, name: str = "main", facts: Iterable[str] = ()):
        self.name = name
        self.nodes: dict[str, Op] = {}
        self.params: dict[str, np.ndarray] = {}
        self.facts = set(facts)

    def add(self, cls: type[Op], name: str, inputs: Iterable[str] = (), **attrs: Any) -> str:
        """Add a node of op class ``cls``; the name is made unique; returns the name."""
        name = self.unique(name)
        self.nodes[name] = cls(name=name, inputs=tuple(inputs), **attrs)
        return name

    def unique(self, base: str) -> str:
        """A fresh node name derived from ``base``."""
        base = sanitize(base)
        if base not in self.nodes:
            return base
        i = 1
        while f"{base}_{i}" in self.nodes:
            i += 1
        return f"{base}_{i}"

    def param(self, name: str, array: np.ndarray | float | list) -> ParamRef:
        """Store an array under a fresh parameter name and return its reference."""
        base, i = name, 1
        while name in self.params:
            name, i = f"{base}_{i}", i + 1
        self.params[name] = np.asarray(array)
        return ParamRef(name)

    def build(self) -> Graph:
        """The graph built so far."""
        return Graph(nodes=self.nodes, params=self.params, facts=frozenset(self.facts),
                     name=self.name)


def is_scalar(value: object) -> bool:
    """True for a plain number attribute (not a parameter reference)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def finite(value: float) -> bool:
    """True for a finite float."""
    return math.isfinite(value)
