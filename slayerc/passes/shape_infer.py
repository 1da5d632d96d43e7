"""``shape-infer``: give every node its per-step shape and dtype.

Shapes are given only on ``io.input``; every other shape follows from the op rules
(``Op.infer``) in graph order: runtime shape identification, no shape arithmetic by users.
Recurrent loops are resolved by taking a ``tensor.add`` on a loop from its known inputs and
checking the loop afterwards.  All mismatches are reported together, each naming the node.

Before::

    %x = io.input() : f32[2, 8, 8]
    %c = synapse.conv(%x) {weight = @c.weight}
After::

    %x = io.input() : f32[2, 8, 8]
    %c = synapse.conv(%x) {weight = @c.weight} : f32[4, 6, 6]

Requires nothing; establishes ``shapes``.  The work is :func:`slayerc.ir.shapes.infer_shapes`.
"""

from __future__ import annotations

from dataclasses import dataclass

from slayerc.ir.core import Graph
from slayerc.ir.shapes import infer_shapes

NAME = "shape-infer"
SUMMARY = "infer every node's shape and dtype from the io.input shapes"
REQUIRES: frozenset[str] = frozenset()
ESTABLISHES = frozenset({"shapes"})
INVALIDATES: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Options:
    """``shape-infer`` has no options."""


def run(g: Graph, opts: Options = Options()) -> Graph:
    """Return ``g`` with every node's ``shape`` and ``dtype`` set."""
    return infer_shapes(g)
