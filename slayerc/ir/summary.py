"""Per-layer summaries of a graph: op, shape, neurons, synapses, parameter count."""

from __future__ import annotations

import numpy as np

from slayerc.ir.core import Graph, Op, ParamRef
from slayerc.ir.ops import NEURON_OPS


def neurons(node: Op) -> int:
    """Number of neurons a node holds (0 for non-neuron ops)."""
    if node.OP not in NEURON_OPS or node.shape is None:
        return 0
    return int(np.prod(node.shape))


def synapses(g: Graph, node: Op) -> int:
    """Number of weighted connections of a synapse node (nonzero mask entries count)."""
    weight = getattr(node, "weight", None)
    if not isinstance(weight, ParamRef) or weight.name not in g.params or node.shape is None:
        return 0
    w = g.params[weight.name]
    mask = getattr(node, "mask", None)
    if isinstance(mask, ParamRef) and mask.name in g.params:
        w = w * (g.params[mask.name] != 0)
    per_weight = int(np.count_nonzero(w))
    if node.OP == "synapse.dense":
        return per_weight
    if node.OP in ("synapse.pool", "synapse.unpool"):
        return int(np.prod(node.shape)) * per_weight
    # conv: every output position applies the whole kernel of its output channel
    return int(np.prod(node.shape[1:])) * per_weight * (2 if node.dtype == "c32" else 1)


def param_count(g: Graph, node: Op) -> int:
    """Number of parameter values a node refers to."""
    return sum(int(g.params[r.name].size) for _, r in node.param_refs() if r.name in g.params)


def layer_table(g: Graph) -> str:
    """A text table with one row per node and a total row."""
    rows = [("node", "op", "shape", "neurons", "synapses", "params")]
    total = [0, 0, 0]
    for node in g:
        shape = "?" if node.shape is None else f"{node.dtype}[{', '.join(map(str, node.shape))}]"
        n, s, p = neurons(node), synapses(g, node), param_count(g, node)
        total = [total[0] + n, total[1] + s, total[2] + p]
        rows.append((f"%{node.name}", node.OP, shape, str(n), str(s), str(p)))
    rows.append(("total", "", "", *map(str, total)))
    widths = [max(len(r[i]) for r in rows) for i in range(6)]
    lines = []
    for i, r in enumerate(rows):
        cells = [c.ljust(w) if j < 3 else c.rjust(w) for j, (c, w) in enumerate(zip(r, widths))]
        lines.append("  ".join(cells).rstrip())
        if i == 0 or i == len(rows) - 2:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)
