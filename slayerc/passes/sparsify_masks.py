"""``sparsify-masks``: bake masks into weights, drop dead nodes and neurons, report density.

Pruned or structurally masked networks carry a ``mask`` per synapse and neurons that can never
matter; the hardware pays for every stored synapse and every neuron, so they go here.

1. Masks are multiplied into the weights (real and imaginary) and the ``mask`` is removed
   (computed in the weight's dtype, as the interpreter does: bit-identical).
2. Dead nodes, from which no ``io.output`` can be reached, are removed (``io.input`` stays).
3. Neurons of a dense layer are removed when they cannot matter:
   * no input and no bias: a ``neuron.cuba`` (or ``neuron.alif`` with threshold > 0) whose row
     of the producing ``synapse.dense`` weights is all zero, with zero synapse and neuron bias,
     never leaves state 0 and never spikes;
   * output nobody reads: its column is zero in every consuming ``synapse.dense``.
   A layer qualifies when its neuron has a 1-d shape, its input comes from a ``synapse.dense``
   (through ``axon.shift``/``axon.delay``/``neuron.dropout`` nodes that have no other user) that
   nothing else reads, and its output reaches only ``synapse.dense`` nodes (through the same
   kinds of nodes), none of them on the producing side.  Then the producer's rows (weight,
   ``weight_imag``, bias), the neuron's per-channel parameters, the per-channel delays along the
   way and the consumers' columns shrink together; one neuron of a layer always stays.
   Repeated until nothing changes (removing a column can free a neuron upstream).
4. The weight density (non-zero fraction) of every weighted synapse goes into the report
   (``Report.values``); layers under ``threshold`` are reported as sparse, and a real
   ``synapse.dense`` or ``synapse.conv`` among them gets ``sparse = true`` (a storage hint: the
   hdf5 backend's ``slayerc`` target stores its weight in CSR form; semantics are unchanged).
   A mark already present is kept.

The graph's outputs stay exactly equal: the removed terms are exact zeros (summation order may
change, which is exact when the weights are on a quantization grid, as deployed ones are).

Before::

    %fc1 = synapse.dense(%x) {mask = @m, weight = @w1}      (row 2 of w1·m all zero)
    %n1  = neuron.cuba(%fc1) : f32[3]
    %fc2 = synapse.dense(%n1) {weight = @w2}
After::

    %fc1 = synapse.dense(%x) {weight = @w1} : f32[2]        (rows 0, 1 of w1·m)
    %n1  = neuron.cuba(%fc1) : f32[2]
    %fc2 = synapse.dense(%n1) {weight = @w2}               (columns 0, 1)

Requires nothing; establishes ``masks-sparsified``; invalidates ``quant-legal`` (a non-binary
mask changes the weights).
"""

from __future__ import annotations

from dataclasses import dataclass

import networkx as nx
import numpy as np

from slayerc.ir.analysis import to_nx
from slayerc.ir.core import Graph, Op, ParamRef
from slayerc.ir.ops import NEURON_OPS
from slayerc.passes.report import Note, Report, note
from slayerc.passes.rewrite import Rewriter

NAME = "sparsify-masks"
SUMMARY = "multiply masks into weights, remove dead nodes and neurons, report weight density"
REQUIRES: frozenset[str] = frozenset()
ESTABLISHES = frozenset({"masks-sparsified"})
INVALIDATES = frozenset({"quant-legal"})

CHANNELWISE = ("axon.shift", "axon.delay", "neuron.dropout")


@dataclass(frozen=True)
class Options:
    """``threshold``: layers whose weight density is below it are reported and marked sparse."""

    threshold: float = 0.1


def run(g: Graph, opts: Options = Options()) -> Graph:
    """Return ``g`` with masks baked in and dead nodes and neurons removed."""
    return run_with_report(g, opts)[0]


def run_with_report(g: Graph, opts: Options = Options()) -> tuple[Graph, Report]:
    """Like :func:`run`, plus notes of what was removed and the density of every synapse."""
    rw = Rewriter(g)
    notes: list[Note] = []
    _apply_masks(rw, notes)
    _remove_dead(rw, notes)
    while _shrink_some_layer(rw, notes):
        pass
    values = _densities(rw, opts.threshold, notes)
    return rw.finish(ESTABLISHES, INVALIDATES), Report(NAME, tuple(notes), values)


def _apply_masks(rw: Rewriter, notes: list[Note]) -> None:
    for node in list(rw.nodes.values()):
        mask = getattr(node, "mask", None)
        if mask is None:
            continue
        m = rw.params[mask.name]
        changes: dict[str, object] = {"mask": None}
        for attr in ("weight", "weight_imag"):
            ref = getattr(node, attr)
            if ref is not None:
                w = rw.params[ref.name]
                changes[attr] = rw.put(ref, f"{node.name}.{attr}", (w * m.astype(w.dtype)))
        rw.nodes[node.name] = node.replace(**changes)
        notes.append(note(f"multiplied mask @{mask.name} into the weights of "
                          f"{node.describe()}"))


def _remove_dead(rw: Rewriter, notes: list[Note]) -> None:
    dg = to_nx(rw.graph())
    live: set[str] = set()
    for out in rw.graph().outputs:
        live |= nx.ancestors(dg, out.name) | {out.name}
    for name, node in list(rw.nodes.items()):
        if name not in live and node.OP != "io.input":
            del rw.nodes[name]
            notes.append(note(f"removed {node.describe()}: no io.output depends on it"))


# ------------------------------------------------------------------------- neuron removal


@dataclass
class _Layer:
    """A neuron and the nodes that shrink with it."""

    neuron: Op
    producer: Op                  # the synapse.dense whose rows feed the neuron
    chain: list[Op]               # channel-wise nodes between producer, neuron and consumers
    consumers: list[Op]           # synapse.dense nodes reading the neuron's columns


def _up(rw: Rewriter, neuron: Op) -> tuple[Op | None, list[Op]]:
    chain, cur = [], rw.nodes.get(neuron.inputs[0])
    while cur is not None and cur.OP in CHANNELWISE and cur.name != neuron.name:
        if rw.only_user(cur.name) is None:
            return None, chain
        chain.append(cur)
        cur = rw.nodes.get(cur.inputs[0])
    if cur is None or cur.OP != "synapse.dense" or rw.only_user(cur.name) is None:
        return None, chain
    return cur, chain


def _down(rw: Rewriter, neuron: Op) -> tuple[list[Op], list[Op]] | None:
    chain, consumers, todo = [], [], [neuron.name]
    while todo:
        users = rw.users(todo.pop())
        if not users:
            return None
        for u in users:
            if u.OP in CHANNELWISE and u.name != neuron.name and u not in chain:
                chain.append(u)
                todo.append(u.name)
            elif u.OP == "synapse.dense" and len(u.inputs) == 1:
                consumers.append(u)
            else:
                return None
    return chain, consumers


def _layer(rw: Rewriter, neuron: Op) -> _Layer | None:
    if neuron.OP not in NEURON_OPS or neuron.shape is not None and len(neuron.shape) != 1:
        return None
    producer, up = _up(rw, neuron)
    down = _down(rw, neuron)
    if producer is None or down is None:
        return None
    if any(c.name == producer.name for c in down[1]) or {n.name for n in up} & \
            {n.name for n in down[0]}:
        return None
    return _Layer(neuron, producer, up + down[0], down[1])


def _zero(rw: Rewriter, value: ParamRef | float | None, n: int) -> np.ndarray:
    """Per channel: is this (bias-like) value zero?"""
    if value is None:
        return np.ones(n, bool)
    if isinstance(value, ParamRef):
        arr = rw.params[value.name]
        return np.broadcast_to(arr == 0, (n,)) if arr.ndim <= 1 else np.zeros(n, bool)
    return np.full(n, float(value) == 0.0)


def _never_fires(rw: Rewriter, neuron: Op) -> bool:
    """Whether the neuron stays silent on zero input (strict compare, or threshold > 0)."""
    if neuron.OP == "neuron.cuba":
        return True
    th = neuron.threshold  # type: ignore[attr-defined]
    th_min = float(np.min(rw.params[th.name])) if isinstance(th, ParamRef) else float(th)
    return neuron.OP == "neuron.alif" and th_min > 0


def _removable(rw: Rewriter, layer: _Layer) -> np.ndarray:
    syn = layer.producer
    rows = [rw.params[r.name] for r in (syn.weight, syn.weight_imag) if r is not None]  # type: ignore
    n = rows[0].shape[0]
    no_input = np.all([np.all(w == 0, axis=1) for w in rows], axis=0)
    no_input &= _zero(rw, syn.bias, n) & _zero(rw, getattr(layer.neuron, "bias", None), n)
    no_input &= _never_fires(rw, layer.neuron)
    cols = [rw.params[r.name] for c in layer.consumers for r in (c.weight, c.weight_imag)
            if r is not None]  # type: ignore[attr-defined]
    unread = np.all([np.all(w == 0, axis=0) for w in cols], axis=0)
    remove = no_input | unread
    if remove.all():
        remove[0] = False  # keep one neuron: shapes must not become empty
    return remove


def _shrink_some_layer(rw: Rewriter, notes: list[Note]) -> bool:
    for node in list(rw.nodes.values()):
        layer = _layer(rw, node)
        if layer is None:
            continue
        remove = _removable(rw, layer)
        if remove.any():
            _shrink(rw, layer, np.flatnonzero(~remove))
            gone = ", ".join(str(i) for i in np.flatnonzero(remove))
            notes.append(note(f"removed neurons [{gone}] of {layer.neuron.describe()}: no "
                              "input and no bias, or an output no synapse reads"))
            return True
    return False


def _slice(rw: Rewriter, node: Op, keep: np.ndarray, n: int, axis: int, attrs=None) -> Op:
    """``node`` with every array attribute of length ``n`` on ``axis`` cut to ``keep``."""
    changes: dict[str, object] = {}
    for attr, ref in node.param_refs():
        arr = rw.params[ref.name]
        if (attrs is None or attr in attrs) and arr.ndim > axis and arr.shape[axis] == n:
            changes[attr] = rw.put(ref, f"{node.name}.{attr}", np.take(arr, keep, axis=axis))
    if axis == 0 and node.shape is not None:
        changes["shape"] = (len(keep),)
    return node.replace(**changes)


def _shrink(rw: Rewriter, layer: _Layer, keep: np.ndarray) -> None:
    n = rw.params[layer.producer.weight.name].shape[0]  # type: ignore[attr-defined]
    for node in (layer.producer, layer.neuron, *layer.chain):
        rw.nodes[node.name] = _slice(rw, rw.nodes[node.name], keep, n, 0)
    for c in layer.consumers:
        rw.nodes[c.name] = _slice(rw, rw.nodes[c.name], keep, n, 1, ("weight", "weight_imag"))


# -------------------------------------------------------------------------------- density


#: Synapses that get ``sparse = true`` under the threshold (when real: no ``weight_imag``).
MARKABLE = frozenset({"synapse.dense", "synapse.conv"})


def _densities(rw: Rewriter, threshold: float, notes: list[Note]) -> dict[str, float]:
    values = {}
    for node in list(rw.nodes.values()):
        ref = getattr(node, "weight", None)
        if not isinstance(ref, ParamRef):
            continue
        w = rw.params[ref.name]
        values[node.name] = float(np.count_nonzero(w)) / max(w.size, 1)
        sparse = values[node.name] < threshold
        mark = sparse and node.OP in MARKABLE and getattr(node, "weight_imag", None) is None
        if mark and not node.sparse:  # type: ignore[attr-defined]
            rw.nodes[node.name] = node.replace(sparse=True)
        notes.append(note(f"{node.describe()}: weight density {values[node.name]:.3f}"
                          + (f" (sparse: under {threshold:g}"
                             + (", marked sparse = true)" if mark else ")") if sparse else "")))
    return values
