"""The output layer's bias as a constant neuron (netx's sigma output layer has no bias).

A sigma decoder adds up messages; a bias would have to be added every step, which no message
does.  So the last layer's bias ``b`` is computed by the network itself: the layer before the
output synapse gets one more neuron (a zero weight row, or a zero filter for a conv, and bias
``c``) whose activation is the constant ``c`` (one message, at step 0), and the output synapse
reads it with weight ``b / c``.  Exact in the float model; on the chip ``b / c`` is quantized
with the layer's other weights.  Handles ``dense|conv → [norm.batch] → neuron.sigma_delta →
[tensor.flatten] → synapse.dense → dendrite.sigma``; other shapes of the last layers get a
``tensor.affine`` bias when ``b`` is one number (not for netlists), else an error.
"""

from __future__ import annotations

import math

import numpy as np

from slayerc.errors import FrontendError
from slayerc.ir import ops
from slayerc.ir.core import GraphBuilder, Op, ParamRef

GRID = 64.0
#: The largest constant: its one message, 7.5·2^12 at step 0, fits loihi2's 16-bit messages
#: whatever the input (it is data-independent); the larger it is, the less the bias column
#: limits the output layer's scale.
CONST_MAX = 7.5


def add_output_biases(b: GraphBuilder, pending: dict[str, np.ndarray], path: str) -> None:
    """Give every sigma decoder in ``pending`` its bias (see the module docstring)."""
    for sig, off in pending.items():
        chain = _chain(b, b.nodes[sig])
        if chain is not None and off.ndim == 1:
            _extend(b, chain, off)
            continue
        flat = off.reshape(-1)
        if flat.size and np.all(flat == flat[0]):
            user = next(n for n in b.nodes.values() if sig in n.inputs)
            aff = b.add(ops.Affine, f"{sig}_bias", [sig], scale=1.0, bias=float(flat[0]),
                        loc=b.nodes[sig].loc)
            b.nodes[user.name] = user.replace(inputs=(aff,))
            _move_before(b, aff, user.name)
            continue
        raise FrontendError(f"{path}: output '{b.nodes[sig].loc.module}': the last layer's "
                            "bias varies per output but its layer is not dense after a "
                            "dense/conv ReLU layer, where slayerc computes it with a constant "
                            "neuron; export the model with bias=False on the last layer or end "
                            "it with a Linear layer after a ReLU")


def _users(b: GraphBuilder, name: str) -> list[Op]:
    return [n for n in b.nodes.values() if name in n.inputs]


def _chain(b: GraphBuilder, sig: Op) -> dict[str, Op] | None:
    """The nodes ``syn, [flat], neuron, [bn], pre`` before ``sig``, or None if not that form."""
    out: dict[str, Op] = {"syn": b.nodes[sig.inputs[0]]}
    if out["syn"].OP != "synapse.dense" or len(_users(b, out["syn"].name)) != 1:
        return None
    node = b.nodes[out["syn"].inputs[0]]
    if node.OP == "axon.shift" and len(_users(b, node.name)) == 1:
        node = b.nodes[node.inputs[0]]
    if node.OP == "tensor.flatten":
        out["flat"], node = node, b.nodes[node.inputs[0]]
    if node.OP != "neuron.sigma_delta" or len(_users(b, node.name)) != 1:
        return None
    out["neuron"], node = node, b.nodes[node.inputs[0]]
    if node.OP == "norm.batch":
        if len(_users(b, node.name)) != 1:
            return None
        out["bn"], node = node, b.nodes[node.inputs[0]]
    ok = node.OP == "synapse.dense" or (node.OP == "synapse.conv" and node.groups == 1
                                        and "flat" in out)
    if not ok or len(_users(b, node.name)) != 1 or node.bias is not None:
        return None
    out["pre"] = node
    return out


def _grow(b: GraphBuilder, ref: ParamRef, value: float, plane: tuple[int, ...] = ()) -> None:
    """Append one entry (a row/plane of ``value``) to the parameter's first axis, in place."""
    arr = b.params[ref.name]
    extra = np.full((1, *arr.shape[1:]), value, arr.dtype)
    b.params[ref.name] = np.concatenate([arr, extra], axis=0)


def _extend(b: GraphBuilder, ch: dict[str, Op], off: np.ndarray) -> None:
    syn, neuron, pre = ch["syn"], ch["neuron"], ch["pre"]
    w_out = b.params[syn.weight.name]  # type: ignore[attr-defined]
    top = float(np.max(np.abs(w_out))) or 1.0
    th = float(neuron.threshold) if not isinstance(neuron.threshold, ParamRef) else 0.0
    # c: the bias column off / c at most as large as the largest weight (so the importer's
    # choice of the output scale keeps it on the 8-bit mantissa), on the 1/64 bias grid
    c = float(np.max(np.abs(off))) / top
    c = min(max(math.ceil(c * GRID - 1e-9) / GRID, 2 * th, 1 / GRID), CONST_MAX)
    _grow(b, pre.weight, 0.0)  # type: ignore[attr-defined]
    if "bn" in ch:
        bn = ch["bn"]
        _grow(b, bn.mean, 0.0)  # type: ignore[attr-defined]
        _grow(b, bn.var, 1.0 - float(bn.eps))  # type: ignore[attr-defined]
        if bn.weight is not None:  # type: ignore[attr-defined]
            _grow(b, bn.weight, 1.0)  # type: ignore[attr-defined]
    bias = neuron.bias  # type: ignore[attr-defined]
    if bias is None:
        channels = b.params[pre.weight.name].shape[0] - 1  # type: ignore[attr-defined]
        bias = b.param(f"{neuron.name}.bias", np.zeros(channels, np.float32))
        b.nodes[neuron.name] = neuron.replace(bias=bias)
    elif not isinstance(bias, ParamRef):
        channels = b.params[pre.weight.name].shape[0] - 1  # type: ignore[attr-defined]
        bias = b.param(f"{neuron.name}.bias", np.full(channels, float(bias), np.float32))
        b.nodes[neuron.name] = neuron.replace(bias=bias)
    _grow(b, bias, c)
    per = 1
    if pre.OP == "synapse.conv":
        per = w_out.shape[1] // (b.params[pre.weight.name].shape[0] - 1)  # type: ignore
    cols = np.zeros((w_out.shape[0], per), w_out.dtype)
    cols[:, 0] = off / c
    b.params[syn.weight.name] = np.concatenate([w_out, cols], axis=1)  # type: ignore


def _move_before(b: GraphBuilder, name: str, user: str) -> None:
    """Keep the node order topological: ``name`` right before ``user``."""
    node = b.nodes.pop(name)
    items = list(b.nodes.items())
    i = next(k for k, (n, _) in enumerate(items) if n == user)
    items.insert(i, (name, node))
    b.nodes.clear()
    b.nodes.update(items)
