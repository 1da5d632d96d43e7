"""``lower-kwta``: each ``synapse.kwta`` becomes the ``synapse.dense`` it computes.

A KWTA's lateral connection is a fixed dense layer: ``q(R)·x + q(b)`` with ``R = (1 + a)·I − 1``
(``a`` = ``self_excitation`` on the diagonal, −1 elsewhere), ``b = θ·(N − 2K)/N/scale`` and ``q``
the 8-bit weight quantizer at ``scale`` (spec slayer-dynamics, KWTA; the interpreter computes
exactly this).  As a ``synapse.dense`` with that weight (and that bias, when it does not
quantize to 0) the layer becomes an ordinary recurrent layer: netx's ``dense_rec``, which
lava-dl's KWTA export cannot write (it writes an empty group), and the fixed-point runtime can
run it.  The lowered weight and bias are the values the interpreter uses, so its output is
bit-identical; a bias left on the synapse is ``legalize-layers``' to place on the neuron.

Before::

    %lat = synapse.kwta(%fb) {num_winners = 1, self_excitation = 0.5} : f32[3]
After::

    %lat = synapse.dense(%fb) {weight = @lat.weight} : f32[3]
                                     (@lat.weight = [[0.5, -1, -1], [-1, 0.5, -1], [-1, -1, 0.5]])

Requires ``shapes``; establishes and invalidates nothing (the values are on the weight grid).
"""

from __future__ import annotations

import numpy as np

from slayerc.ir import ops
from slayerc.ir.core import Graph, Op
from slayerc.passes.report import Report, note
from slayerc.passes.rewrite import Rewriter, quantize_8bit

NAME = "lower-kwta"
SUMMARY = "KWTA lateral connections as the fixed dense synapse they compute (dense_rec)"
REQUIRES = frozenset({"shapes"})
ESTABLISHES: frozenset[str] = frozenset()
INVALIDATES: frozenset[str] = frozenset()


def run(g: Graph) -> Graph:
    """Return ``g`` with every ``synapse.kwta`` lowered (see the module docstring)."""
    return run_with_report(g)[0]


def run_with_report(g: Graph) -> tuple[Graph, Report]:
    """:func:`run`, plus a note per lowered KWTA."""
    rw, notes = Rewriter(g), []
    for node in g:
        if node.OP == "synapse.kwta":
            rw.nodes[node.name] = _lower(rw, node)
            notes.append(note(f"lowered {node.describe()} to a synapse.dense"))
    return rw.finish(ESTABLISHES, INVALIDATES), Report(NAME, tuple(notes))


def _lower(rw: Rewriter, node: Op) -> Op:
    n = int(node.shape[0])  # type: ignore[index]
    a, k = float(node.self_excitation), int(node.num_winners)  # type: ignore[attr-defined]
    scale = int(node.scale)  # type: ignore[attr-defined]
    r = ((1 + a) * np.eye(n) - 1).astype(np.float32)
    b = np.full(n, np.float32(float(node.threshold) * (n - 2 * k) / n / scale))  # type: ignore
    weight = rw.put(None, f"{node.name}.weight", quantize_8bit(r, scale))
    bq = quantize_8bit(b, scale)
    bias = rw.put(None, f"{node.name}.bias", bq) if np.any(bq) else None
    return ops.Dense(name=node.name, inputs=node.inputs, shape=node.shape, dtype=node.dtype,
                     loc=node.loc, weight=weight, bias=bias)
