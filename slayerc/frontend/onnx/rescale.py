"""Merge points without rescale ops: a branch's scale moves into the layer that makes it.

Where an Add or a Concat joins streams of different activation scales, the converter aligns
them with a ``tensor.affine`` rescale (``x · κ/κ_v``).  Such a factor is rarely on the 1/64
grid, so neither a netlist nor the fixed-point simulator can hold it.  A sigma-delta ReLU
layer is positively homogeneous, so the factor ``a`` can move into the layer that produces the
stream instead: its synapse's weights and bias and its neuron's threshold and bias are
multiplied by ``a`` and every other reader's weights divided by ``a``; the layer's output is
then ``a`` times what it was, which is what the rescales asked for, and they go.  Exact in the
float model; legalize-quant then rounds the changed values to their grids as it rounds all
others.  A rescale that cannot move (its stream is not a sigma-delta layer's output, its
readers disagree on the factor, a reader is not a plain weighted synapse, or the weights would
leave the 8-bit mantissa) stays, and the fixed-point simulator's error names it.
"""

from __future__ import annotations

import numpy as np

from slayerc.frontend.onnx.scales import WEIGHT_TOP
from slayerc.ir.core import Graph, Op, ParamRef

#: Ops that pass a stream to a synapse unchanged in scale.
_PASS = ("axon.shift", "tensor.flatten")
_WEIGHTED = ("synapse.dense", "synapse.conv")


def fold_rescales(g: Graph) -> Graph:
    """``g`` with every movable merge-point rescale moved into its producing layer."""
    for neuron in [n for n in g if n.OP == "neuron.sigma_delta"]:
        g = _fold_one(g, g[neuron.name])
    return g


def _rescales(g: Graph, neuron: Op) -> tuple[list[Op], float | None]:
    """The rescale readers of ``neuron`` and their common factor (None: none or unequal)."""
    found = [u for u in g.users(neuron.name) if _is_rescale(g, u)]
    factors = {float(u.scale) for u in found}  # type: ignore[attr-defined]
    if len(factors) != 1:
        return found, None
    a = factors.pop()
    return found, a if a > 0 else None


def _is_rescale(g: Graph, n: Op) -> bool:
    """An alignment ``tensor.affine``: no offset, read only by Adds and Concats."""
    users = g.users(n.name)
    return (n.OP == "tensor.affine" and float(n.bias) == 0.0  # type: ignore[attr-defined]
            and bool(users) and all(u.OP in ("tensor.add", "tensor.concat") for u in users))


def _readers(g: Graph, neuron: Op, skip: set[str]) -> list[Op] | None:
    """The weighted synapses that read ``neuron`` (through shifts and flattens), or None
    when some other reader would see the change of scale."""
    out, todo = [], [u for u in g.users(neuron.name) if u.name not in skip]
    while todo:
        n = todo.pop()
        if n.OP in _PASS:
            todo.extend(g.users(n.name))
        elif n.OP in _WEIGHTED and len(n.inputs) == 1 and n.weight_imag is None:  # type: ignore[attr-defined]
            out.append(n)
        else:
            return None
    return out


def _fold_one(g: Graph, neuron: Op) -> Graph:
    found, a = _rescales(g, neuron)
    if a is None or neuron.inputs == () or not found:
        return g
    syn = g[neuron.inputs[0]]
    readers = _readers(g, neuron, {u.name for u in found})
    if syn.OP not in _WEIGHTED or len(g.users(syn.name)) != 1 or readers is None:
        return g
    w = np.asarray(g.param(syn.weight), np.float64)  # type: ignore[attr-defined]
    if float(np.abs(w).max(initial=0.0)) * a > WEIGHT_TOP:
        return g
    params = dict(g.params)
    nodes = dict(g.nodes)
    nodes[syn.name] = _scaled(syn, params, ("weight", "bias"), a)
    nodes[neuron.name] = _scaled(neuron, params, ("threshold", "bias"), a)
    for r in readers:
        nodes[r.name] = _scaled(r, params, ("weight",), 1 / a)
    gone = {u.name for u in found}
    for key, n in nodes.items():
        if any(i in gone for i in n.inputs):
            nodes[key] = n.replace(inputs=tuple(neuron.name if i in gone else i
                                                for i in n.inputs))
    return g.replace(nodes={k: n for k, n in nodes.items() if k not in gone}, params=params)


def _scaled(node: Op, params: dict[str, np.ndarray], attrs: tuple[str, ...], a: float) -> Op:
    """``node`` with the attributes ``attrs`` (numbers or parameters) multiplied by ``a``;
    a parameter is rewritten under a new name (another node may share the old one)."""
    changes = {}
    for attr in attrs:
        value = getattr(node, attr)
        if value is None:
            continue
        if isinstance(value, ParamRef):
            name = f"{node.name}.{attr}.rescaled"
            while name in params:
                name += "_"
            params[name] = (np.asarray(params[value.name], np.float64) * a).astype(np.float32)
            changes[attr] = ParamRef(name)
        else:
            changes[attr] = float(value) * a
    return node.replace(**changes)
