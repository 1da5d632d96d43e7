"""BatchNormalization in the ONNX importer (see :mod:`slayerc.frontend.onnx.convert`).

After a synapse (Conv → BN → ReLU) the scale ``k = γ/√(var+ε)`` becomes a ``norm.batch`` (mean
0) that ``fold-batchnorm`` folds into that synapse.  After a ReLU (or on the input) there is no
synapse before it: the scale stays pending on the value (``Val.scale``) and the next Conv, Gemm
or MatMul (through Flatten, Reshape or AveragePool, which commute with a per-channel factor)
multiplies its input columns by it.  That is exact with zero padding too, since
``pad(k·x) = k·pad(x)``; the shift ``β − mean·k`` is an offset either way, which a padded conv
carries per neuron (border neurons see fewer shifted inputs), so no case is inexact.  Anything
else reading a pending scale (a ReLU, Add, Concat, an output) is a one-line error.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from slayerc.frontend.onnx.model import attributes
from slayerc.ir import ops

if TYPE_CHECKING:
    from slayerc.frontend.onnx.convert import Converter, Val


def _batchnorm(c: Converter, node: Any, attrs: dict) -> None:
    x = c.stream(node.input[0], scaled=True)
    gamma, beta, mean, var = (c.const(node.input[i], what).astype(np.float64) for i, what in
                              ((1, "scale"), (2, "bias"), (3, "mean"), (4, "variance")))
    eps = float(attrs.get("epsilon", 1e-5))
    ch = x.shape[0]
    if any(a.shape != (ch,) for a in (gamma, beta, mean, var)):
        raise c.err(f"statistics must have one value per channel ({ch})")
    k = gamma / np.sqrt(var + eps)
    view = (ch,) + (1,) * (len(x.shape) - 1)
    y = x.calib.double() * torch.as_tensor(k.reshape(view)) + \
        torch.as_tensor((beta - mean * k).reshape(view))
    off = c.offset_of(x, x.kappa) * k.reshape(view) + x.kappa * (beta - mean * k).reshape(view)
    off = np.broadcast_to(off, x.shape).copy()
    if x.scale is not None or getattr(c.b.nodes.get(x.node), "OP", None) not in FOLDABLE:
        # After a ReLU (or on the input) no synapse precedes it: the scale k waits for the next
        # Conv/Gemm/MatMul, whose input columns it multiplies; the shift is an offset as below.
        sc = np.broadcast_to(k.reshape(view), x.shape) * (1 if x.scale is None else x.scale)
        c.vals[node.output[0]] = replace(x, calib=y.float(), offset=off, scale=sc, nonneg=False,
                                         scale_from=node.name or node.output[0])
        return
    # The scale k acts on the messages (norm.batch with mean 0, no shift: fold-batchnorm puts
    # it into the synapse); the shift beta - mean·k is an offset, carried to the next neuron.
    n = c.add(ops.BatchNorm, c.base(), [x.node], mean=c.param(f"{c.base()}.mean", 0 * mean),
              var=c.param(f"{c.base()}.var", var), weight=c.param(f"{c.base()}.weight", gamma),
              eps=eps)
    c.vals[node.output[0]] = replace(x, node=n, calib=y.float(), offset=off, nonneg=False)


def _fold_scale(c: Converter, x: Val, w: np.ndarray, groups: int) -> np.ndarray:
    """A conv weight ``[out, in/groups, kH, kW]`` with ``x``'s pending per-channel scale folded
    into its input channels (exact with zero padding too: ``pad(k·x) = k·pad(x)``; the shift
    is ``x.offset``, which the conv carries per neuron)."""
    if x.scale is None:
        return w
    per = x.scale.reshape(x.shape[0], -1)
    if not np.all(per == per[:, :1]):
        raise c.err(f"its input's pending scale (BatchNormalization '{x.scale_from}') varies "
                    "within a channel, which a conv weight cannot hold")
    cin, cout = w.shape[1], w.shape[0]
    chan = np.arange(cout)[:, None] // (cout // groups) * cin + np.arange(cin)[None, :]
    return w * per[:, 0][chan][:, :, None, None]


def pooled_scale(x: Val, pooled: Val) -> Val:
    """``pooled`` (an average pool of ``x``) with ``x``'s pending scale: per channel, it
    commutes with the depthwise pool."""
    ch, shape = x.shape[0], pooled.shape
    sc = np.broadcast_to(x.scale.reshape(ch, -1)[:, :1, None], shape)  # type: ignore[union-attr]
    return replace(pooled, scale=sc.copy(), scale_from=x.scale_from)


def _bn_after(c: Converter, node: Any, w: np.ndarray) -> np.ndarray:
    """The per-channel ``|γ|/√(var+ε)`` (shaped to multiply the weight ``w``) of a
    BatchNormalization that alone reads ``node``'s output: ``fold-batchnorm`` multiplies the
    synapse's weights by it, so the scales must count it.  Else 1."""
    users = c.consumers.get(node.output[0], [])
    if len(users) != 1 or users[0].op_type != "BatchNormalization":
        return np.ones(1)
    bn = users[0]
    try:
        gamma, var = (np.asarray(c.vals[bn.input[i]].const, np.float64) for i in (1, 4))
        k = np.abs(gamma / np.sqrt(var + float(attributes(bn).get("epsilon", 1e-5))))
    except (KeyError, TypeError, IndexError, ValueError):
        return np.ones(1)
    ok = np.all(np.isfinite(k)) and k.size == w.shape[0]
    return k.reshape((-1,) + (1,) * (w.ndim - 1)) if ok else np.ones(1)


#: IR ops a BatchNormalization's scale folds into (``fold-batchnorm``).
FOLDABLE = frozenset({"synapse.dense", "synapse.conv", "synapse.pool"})


def pending_bn(v: Val) -> str:
    """Why a value with a pending batch-norm scale cannot go on here."""
    return (f"it reads BatchNormalization '{v.scale_from}' applied after a ReLU (or to the "
            "input), which slayerc folds only into a following Conv, Gemm or MatMul (through "
            "Flatten, Reshape or AveragePool): no synapse before it can carry its scale; "
            "move the BatchNormalization before the ReLU or fold it into the next layer")
