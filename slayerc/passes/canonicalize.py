"""``canonicalize``: remove identity ops and fold constant scales, without changing a single bit.

Traced models carry ops that compute nothing at inference (dropout, ``x * 1.0``, reshapes to
the same shape, zero delays) and scales that belong in the weights (``lif(z * 2.0)``).  Later
passes and the hdf5 backend match layer patterns (synapse → neuron), so they must go first.
Rules, applied until none matches:

1. Identities are removed (their users read their input): ``neuron.dropout``,
   ``tensor.affine{scale=1, bias=0}``, ``tensor.reshape`` to its input's shape,
   ``tensor.flatten`` of a 1-d input, ``axon.shift{steps=0}``, ``axon.delay`` whose delays are
   all 0.
2. ``axon.shift(axon.shift(x))`` becomes one shift (steps add) when the first has no other user
   and both have the same ``persistent`` flag.
3. Two affines in a row merge (``scale = s1·s2``, ``bias = b1·s2 + b2``) when the first has no
   other user and float rounding cannot tell: ``s2 = ±2^k`` and ``b1 = 0`` or ``b2 = 0``, or
   ``s1 = ±2^k`` and ``b1 = 0``.
4. ``tensor.affine{scale=±2^k, bias=0}`` before a weighted synapse that is its only user
   goes into the synapse's weights.
5. ``tensor.affine{scale=±2^k, bias=b}`` after a real weighted synapse whose only user it is
   goes into the synapse's weights and bias when ``b = 0`` or the synapse has no bias
   (``synapse.dense``/``synapse.conv`` then get the bias ``b``).

Only these cases are folded because only they are exact: scaling by a power of two commutes
with every float rounding (barring overflow and underflow), while a general scale or a second
bias addition rounds differently.  So the interpreter gives bit-identical outputs before and
after.  The surviving node keeps its name and ``loc`` (the synapse in 4 and 5, the later node in
2 and 3).

Before::

    %c = synapse.conv(%x) {weight = @c.weight}
    %m = tensor.affine(%c) {scale = 2.0}
    %d = neuron.dropout(%m)
    %n = neuron.cuba(%d)
After::

    %c = synapse.conv(%x) {weight = @c.weight}       (@c.weight doubled)
    %n = neuron.cuba(%c)

Requires nothing; establishes ``canonical``; invalidates ``quant-legal`` (weights change) and
``delays-legal`` (merged shifts may exceed a target's limit).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from slayerc.ir.core import Graph, Op, ParamRef
from slayerc.passes.report import Note, Report, note
from slayerc.passes.rewrite import Rewriter, is_power_of_two, scaled

NAME = "canonicalize"
SUMMARY = "remove identity ops, merge shifts and affines, fold exact scales into weights"
REQUIRES: frozenset[str] = frozenset()
ESTABLISHES = frozenset({"canonical"})
INVALIDATES = frozenset({"quant-legal", "delays-legal"})

WEIGHTED = ("synapse.dense", "synapse.conv", "synapse.conv_transpose", "synapse.pool",
            "synapse.unpool")


@dataclass(frozen=True)
class Options:
    """``canonicalize`` has no options."""


def run(g: Graph, opts: Options = Options()) -> Graph:
    """Return the canonical form of ``g`` (see the module docstring)."""
    return run_with_report(g, opts)[0]


def run_with_report(g: Graph, opts: Options = Options()) -> tuple[Graph, Report]:
    """Like :func:`run`, plus a note per rewrite."""
    rw = Rewriter(g)
    notes: list[Note] = []
    changed = True
    while changed:
        changed = False
        for name in list(rw.nodes):
            node = rw.nodes.get(name)
            msg = _rewrite_one(rw, node) if node is not None else None
            if msg:
                notes.append(note(msg))
                changed = True
    return rw.finish(ESTABLISHES, INVALIDATES), Report(NAME, tuple(notes))


def _rewrite_one(rw: Rewriter, node: Op) -> str | None:
    for rule in RULES:
        msg = rule(rw, node)
        if msg:
            return msg
    return None


# ----------------------------------------------------------------------------------- rules


def _is_identity(rw: Rewriter, node: Op) -> bool:
    op = node.OP
    if op == "neuron.dropout":
        return True
    if op == "tensor.affine":
        return float(node.scale) == 1.0 and float(node.bias) == 0.0  # type: ignore
    if op == "axon.shift":
        return int(node.steps) == 0  # type: ignore[attr-defined]
    if op == "axon.delay":
        d = node.delay  # type: ignore[attr-defined]
        return not np.any(rw.params[d.name]) if isinstance(d, ParamRef) else d == 0
    src = rw.nodes.get(node.inputs[0]) if node.inputs else None
    shape = src.shape if src is not None else None
    if op == "tensor.reshape":
        return shape is not None and tuple(node.to) == tuple(shape)  # type: ignore
    return op == "tensor.flatten" and shape is not None and len(shape) == 1


def remove_identity(rw: Rewriter, node: Op) -> str | None:
    """Rule 1."""
    if not _is_identity(rw, node):
        return None
    rw.bypass(node.name)
    return f"removed {node.describe()}: identity at inference"


def _sole_producer(rw: Rewriter, node: Op, op: str | tuple[str, ...]) -> Op | None:
    """The node feeding ``node`` when it has op ``op`` and ``node`` is its only user."""
    src = rw.nodes.get(node.inputs[0]) if node.inputs else None
    ops = (op,) if isinstance(op, str) else op
    if src is None or src.OP not in ops or src.name == node.name:
        return None
    user = rw.only_user(src.name)
    return src if user is not None and user.name == node.name else None


def merge_shifts(rw: Rewriter, node: Op) -> str | None:
    """Rule 2."""
    if node.OP != "axon.shift":
        return None
    src = _sole_producer(rw, node, "axon.shift")
    if src is None or src.persistent != node.persistent:  # type: ignore[attr-defined]
        return None
    steps = int(src.steps) + int(node.steps)  # type: ignore[attr-defined]
    _absorb(rw, node.replace(inputs=src.inputs, steps=steps), src)
    return f"merged {src.describe()} into {node.describe()}: {steps} steps"


def _absorb(rw: Rewriter, survivor: Op, gone: Op) -> None:
    """Replace ``survivor`` (same name) and delete ``gone``, whose only user it was."""
    rw.nodes[survivor.name] = survivor
    del rw.nodes[gone.name]


def _exact_merge(s1: float, b1: float, s2: float, b2: float) -> bool:
    return (is_power_of_two(s2) and (b1 == 0.0 or b2 == 0.0)) or \
        (is_power_of_two(s1) and b1 == 0.0)


def merge_affines(rw: Rewriter, node: Op) -> str | None:
    """Rule 3."""
    if node.OP != "tensor.affine":
        return None
    src = _sole_producer(rw, node, "tensor.affine")
    if src is None:
        return None
    s1, b1 = float(src.scale), float(src.bias)  # type: ignore[attr-defined]
    s2, b2 = float(node.scale), float(node.bias)  # type: ignore[attr-defined]
    if not _exact_merge(s1, b1, s2, b2):
        return None
    _absorb(rw, node.replace(inputs=src.inputs, scale=s1 * s2, bias=b1 * s2 + b2), src)
    return f"merged {src.describe()} into {node.describe()}"


def _scale_weights(rw: Rewriter, syn: Op, s: float) -> Op:
    """``syn`` with its real (and imaginary) weights times ``s``."""
    changes = {}
    for attr in ("weight", "weight_imag"):
        ref = getattr(syn, attr)
        if ref is not None:
            changes[attr] = rw.put(ref, f"{syn.name}.{attr}", scaled(rw.params[ref.name], s))
    return syn.replace(**changes)


def affine_into_synapse(rw: Rewriter, node: Op) -> str | None:
    """Rule 4."""
    if node.OP != "tensor.affine" or float(node.bias) != 0.0:  # type: ignore[attr-defined]
        return None
    s = float(node.scale)  # type: ignore[attr-defined]
    user = rw.only_user(node.name)
    if not is_power_of_two(s) or user is None or user.OP not in WEIGHTED:
        return None
    rw.nodes[user.name] = _scale_weights(rw, user, s)
    rw.bypass(node.name)
    return f"folded {node.describe()} into the weights of {user.describe()}"


def _new_bias(rw: Rewriter, syn: Op, s: float, b: float) -> ParamRef | None:
    """The synapse bias after ``s·y + b``; None when it stays absent."""
    ref = syn.bias  # type: ignore[attr-defined]
    if ref is not None:
        return rw.put(ref, f"{syn.name}.bias", scaled(rw.params[ref.name], s))
    if b == 0.0:
        return None
    w = rw.params[syn.weight.name]  # type: ignore[attr-defined]
    return rw.put(None, f"{syn.name}.bias", np.full(w.shape[0], b, dtype=w.dtype))


def affine_into_producer(rw: Rewriter, node: Op) -> str | None:
    """Rule 5."""
    if node.OP != "tensor.affine":
        return None
    s, b = float(node.scale), float(node.bias)  # type: ignore[attr-defined]
    syn = _sole_producer(rw, node, WEIGHTED)
    if syn is None or not is_power_of_two(s) or syn.weight_imag is not None:  # type: ignore
        return None
    has_bias = syn.bias is not None  # type: ignore[attr-defined]
    if b != 0.0 and (has_bias or syn.OP not in ("synapse.dense", "synapse.conv")):
        return None
    bias = _new_bias(rw, syn, s, b)
    rw.nodes[syn.name] = _scale_weights(rw, syn, s).replace(bias=bias)
    rw.bypass(node.name)
    return f"folded {node.describe()} into the weights of {syn.describe()}"


RULES: tuple[Callable[[Rewriter, Op], str | None], ...] = (
    remove_identity, merge_shifts, merge_affines, affine_into_synapse, affine_into_producer)
