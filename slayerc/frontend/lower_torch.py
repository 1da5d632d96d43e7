"""Converters from plain torch modules, functions and tensor methods to IR ops.

Each converter takes ``(low, module, qualname, args, kwargs)`` (modules) or
``(low, args, kwargs)`` (functions and methods) and returns a :class:`~.trace.Val`.  Layout-only
operations (``transpose``, ``permute``, reshapes that fold time into the batch) emit no op.
"""

from __future__ import annotations

import math
import operator
from typing import Any

import numpy as np
import torch
from torch import nn

from slayerc.frontend.trace import CANON, FOLD, TIME2, Lowering, Val
from slayerc.ir import ops as o

# ---------------------------------------------------------------------------------- modules


def linear(low: Lowering, m: nn.Linear, q: str, args, kwargs) -> Val:
    """``nn.Linear`` on ``[N, T, C]`` or ``[N·T, C]`` → ``synapse.dense`` (+ bias)."""
    x = low.want(args[0], TIME2, FOLD, what="nn.Linear")
    if len(x.shape) != 1:
        raise low.error(f"nn.Linear needs one feature dimension per step, got {list(x.shape)}")
    bias = low.param(f"{q}.bias", m.bias) if m.bias is not None else None
    name = low.add(o.Dense, q, [x.name], module=q, weight=low.param(f"{q}.weight", m.weight),
                   bias=bias)
    return Val(name, x.layout, (m.out_features,))


def _conv_attrs(low: Lowering, m: nn.Module, q: str, dims: int) -> dict[str, Any]:
    if m.padding_mode != "zeros" or isinstance(m.padding, str):
        raise low.error(f"{type(m).__name__} with padding={m.padding!r}, "
                        f"padding_mode={m.padding_mode!r} is not supported; use integer zero "
                        "padding")
    return {"stride": tuple(m.stride[:2]), "padding": tuple(m.padding[:2]),
            "dilation": tuple(m.dilation[:2]), "groups": int(m.groups),
            "bias": low.param(f"{q}.bias", m.bias) if m.bias is not None else None}


def conv2d(low: Lowering, m: nn.Conv2d, q: str, args, kwargs) -> Val:
    """``nn.Conv2d`` on ``[N·T, C, H, W]`` (time folded into the batch) → ``synapse.conv``."""
    x = low.want(args[0], FOLD, what="nn.Conv2d")
    attrs = _conv_attrs(low, m, q, 2)
    name = low.add(o.Conv, q, [x.name], module=q, weight=low.param(f"{q}.weight", m.weight),
                   **attrs)
    return Val(name, FOLD, low.step_shape(low.out_shape(), FOLD))


def conv3d(low: Lowering, m: nn.Conv3d, q: str, args, kwargs) -> Val:
    """``nn.Conv3d`` with time kernel 1 on ``[N, C, H, W, T]`` → ``synapse.conv``."""
    x = low.want(args[0], CANON, what="nn.Conv3d")
    if (m.kernel_size[2], m.stride[2], m.dilation[2]) != (1, 1, 1) or m.padding[2] != 0:
        raise low.error("nn.Conv3d must act per time step: kernel (kH, kW, 1), stride (sH, sW, 1),"
                        f" padding (pH, pW, 0), dilation (dH, dW, 1); got kernel "
                        f"{tuple(m.kernel_size)}, stride {tuple(m.stride)}, padding "
                        f"{tuple(m.padding)}, dilation {tuple(m.dilation)}")
    attrs = _conv_attrs(low, m, q, 3)
    weight = low.param(f"{q}.weight", m.weight[..., 0])
    name = low.add(o.Conv, q, [x.name], module=q, weight=weight, **attrs)
    return Val(name, CANON, low.step_shape(low.out_shape(), CANON))


def batch_norm(low: Lowering, m: nn.modules.batchnorm._BatchNorm, q: str, args, kwargs) -> Val:
    """``nn.BatchNorm1d/2d/3d`` with running statistics → ``norm.batch``."""
    x = low.want(args[0], CANON, FOLD, what=type(m).__name__)
    if m.training or m.running_mean is None:
        raise low.error(f"{type(m).__name__} must use running statistics: call model.eval() "
                        "before tracing (and keep track_running_stats=True)")
    rank = {nn.BatchNorm1d: 1, nn.BatchNorm2d: 3, nn.BatchNorm3d: 3}.get(type(m))
    layout_ok = (x.layout == CANON and (rank == 1 or type(m) is nn.BatchNorm3d)) or \
        (x.layout == FOLD and type(m) is not nn.BatchNorm3d)
    if not layout_ok or (rank is not None and len(x.shape) != rank):
        raise low.error(f"{type(m).__name__} does not fit an input of per-step shape "
                        f"{list(x.shape)} in layout {x.layout}")
    w = low.param(f"{q}.weight", m.weight) if m.weight is not None else None
    b = low.param(f"{q}.bias", m.bias) if m.bias is not None else None
    name = low.add(o.BatchNorm, q, [x.name], module=q, mean=low.param(f"{q}.running_mean",
                   m.running_mean), var=low.param(f"{q}.running_var", m.running_var),
                   weight=w, bias=b, eps=float(m.eps))
    return Val(name, x.layout, x.shape)


def flatten_module(low: Lowering, m: nn.Flatten, q: str, args, kwargs) -> Val:
    """``nn.Flatten``: must keep batch and time (see :func:`_reshape_to`)."""
    return _reshape_to(low, args[0], low.out_shape(), module=q)


def dropout(low: Lowering, m: nn.Module, q: str, args, kwargs) -> Val:
    """``nn.Dropout*`` → ``neuron.dropout`` (identity at inference)."""
    x = low.want(args[0], CANON, TIME2, FOLD, what=type(m).__name__)
    return Val(low.add(o.Dropout, q, [x.name], module=q, p=float(m.p)), x.layout, x.shape)


def identity(low: Lowering, m: nn.Module, q: str, args, kwargs) -> Any:
    """``nn.Identity``: no op."""
    return args[0]


MODULES = {nn.Linear: linear, nn.Conv2d: conv2d, nn.Conv3d: conv3d,
           nn.BatchNorm1d: batch_norm, nn.BatchNorm2d: batch_norm, nn.BatchNorm3d: batch_norm,
           nn.Flatten: flatten_module, nn.Dropout: dropout, nn.Dropout2d: dropout,
           nn.Dropout3d: dropout, nn.Identity: identity}

# -------------------------------------------------------------------------------- functions


def _number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def add(low: Lowering, args, kwargs) -> Val:
    """``a + b`` of two tensors (``tensor.add``) or a tensor and a number (``tensor.affine``)."""
    a, b = args[0], args[1]
    if isinstance(a, Val) and isinstance(b, Val):
        if a.layout != b.layout or a.shape != b.shape:
            raise low.error(f"adding tensors of shapes {list(a.shape)} and {list(b.shape)} "
                            f"({a.layout}, {b.layout}) is not supported; shapes must match")
        return Val(low.add(o.Add, "add", [a.name, b.name]), a.layout, a.shape)
    x, c = (a, b) if isinstance(a, Val) else (b, a)
    if not isinstance(x, Val) or not _number(c) or kwargs.get("alpha", 1) != 1:
        raise low.error("'+' is supported between two tensors or a tensor and a number")
    return Val(low.add(o.Affine, "add", [x.name], bias=float(c)), x.layout, x.shape)


def mul(low: Lowering, args, kwargs) -> Val:
    """``x * c`` or ``c * x`` with a constant number → ``tensor.affine``."""
    a, b = args[0], args[1]
    x, c = (a, b) if isinstance(a, Val) else (b, a)
    if not isinstance(x, Val) or not _number(c):
        raise low.error("'*' is supported between a tensor and a constant number only")
    return Val(low.add(o.Affine, "mul", [x.name], scale=float(c)), x.layout, x.shape)


def cat(low: Lowering, args, kwargs) -> Val:
    """``torch.cat`` along a per-step axis → ``tensor.concat``."""
    tensors = args[0]
    dim = kwargs.get("dim", args[1] if len(args) > 1 else 0)
    vals = [low.want(t, CANON, TIME2, FOLD, what="torch.cat") for t in tensors]
    layout = vals[0].layout
    if any(v.layout != layout for v in vals):
        raise low.error("torch.cat needs all inputs in the same layout")
    rank = len(vals[0].shape) + (1 if layout == FOLD else 2)
    dim = dim % rank
    first = {CANON: 1, TIME2: 2, FOLD: 1}[layout]
    if not first <= dim < first + len(vals[0].shape):
        raise low.error(f"torch.cat along dim {dim} (batch or time) is not supported; "
                        "concatenate along a channel or spatial dimension")
    name = low.add(o.Concat, "cat", [v.name for v in vals], axis=dim - first)
    return Val(name, layout, low.step_shape(low.out_shape(), layout))


def _reshape_to(low: Lowering, x: Any, full: tuple[int, ...], module: str | None = None) -> Val:
    """A reshape/view/flatten: either a per-step reshape or a fold/unfold of time."""
    x = low.want(x, CANON, TIME2, FOLD, what="reshape")
    n, t = low.batch, low.steps
    new = _layout_after_reshape(x.layout, full, n, t)
    if new is None:
        raise low.error(f"reshape to {list(full)} mixes the batch ({n}) or time ({t}) dimensions "
                        "with the neuron dimensions; keep batch first and time last "
                        "(e.g. x.reshape(x.shape[0], -1, x.shape[-1]))")
    shape = low.step_shape(full, new)
    if int(np.prod(shape)) != int(np.prod(x.shape)):
        raise low.error(f"reshape to {list(full)} changes the number of neurons per step")
    if shape == x.shape:
        return Val(x.name, new, shape)
    if len(shape) == 1:
        name = low.add(o.Flatten, module or "flatten", [x.name], module=module)
    else:
        name = low.add(o.Reshape, module or "reshape", [x.name], module=module, to=shape)
    return Val(name, new, shape)


def _layout_after_reshape(layout: str, full: tuple[int, ...], n: int, t: int) -> str | None:
    if layout == CANON and len(full) >= 3 and full[0] == n and full[-1] == t:
        return CANON
    if layout in (TIME2, FOLD) and len(full) >= 3 and full[0] == n and full[1] == t:
        return TIME2
    if layout in (TIME2, FOLD) and len(full) >= 2 and full[0] == n * t:
        return FOLD
    return None


def reshape(low: Lowering, args, kwargs) -> Val:
    """``x.reshape(...)``, ``x.view(...)``, ``torch.reshape``, ``flatten``."""
    return _reshape_to(low, args[0], low.out_shape())


def permute(low: Lowering, args, kwargs) -> Val:
    """``transpose``/``permute`` that moves time between last and second place."""
    x = low.want(args[0], CANON, TIME2, what="permute/transpose")
    full = low.out_shape()
    n, t = low.batch, low.steps
    if x.layout == CANON and len(full) == len(x.shape) + 2 and full[:2] == (n, t) and \
            tuple(full[2:]) == x.shape:
        return Val(x.name, TIME2, x.shape)
    if x.layout == TIME2 and full[0] == n and full[-1] == t and tuple(full[1:-1]) == x.shape:
        return Val(x.name, CANON, x.shape)
    raise low.error(f"permute/transpose to shape {list(full)} is not supported; only moving time "
                    "between the last and the second dimension is")


def same(low: Lowering, args, kwargs) -> Any:
    """``contiguous()`` and friends: no op."""
    return args[0]


FUNCTIONS = {operator.add: add, torch.add: add, operator.mul: mul, torch.mul: mul,
             torch.cat: cat, torch.concat: cat, torch.flatten: reshape, torch.reshape: reshape,
             torch.permute: permute, torch.transpose: permute}
METHODS = {"add": add, "mul": mul, "flatten": reshape, "reshape": reshape, "view": reshape,
           "permute": permute, "transpose": permute, "contiguous": same}
SUPPORTED_CALLS = {"+", "*", "torch.cat", "torch.flatten", "torch.reshape", "torch.permute",
                   "torch.transpose", ".flatten", ".reshape", ".view", ".permute", ".transpose",
                   ".contiguous", "x.shape / x.size()"}
