"""Kernels of the floating-point interpreter, one builder per op (see ``interpreter.KERNELS``).

Each builder returns a :class:`~slayerc.runtime.interpreter.Kernel` whose ``fn`` takes the list
of input values.  Values are ``[N, *S, T]`` tensors, or ``(re, im)`` pairs for complex ones.  In
a recurrent loop a delaying op receives a ``_History`` (its input's past steps) instead.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import torch
import torch.nn.functional as F

from slayerc.ir.core import Graph, Op, ParamRef
from slayerc.ir.target import WEIGHT_MANT
from slayerc.runtime import neurons as families
from slayerc.runtime.quantize import ste_round


@dataclass(frozen=True)
class Context:
    """What a kernel builder needs besides the node: dtype, state policy, the graph's
    parameters as live tensors (``params``: name -> tensor, the module's own parameters, read
    at call time so training updates take effect) and the neuron kernel kind (``"torch"`` or a
    kind registered in :mod:`slayerc.runtime.neurons`, such as ``"triton"``)."""

    dtype: torch.dtype = torch.float32
    persistent: bool = False
    in_loop: bool = False
    params: Mapping[str, torch.Tensor] = field(default_factory=dict)
    kind: str = "torch"

    def for_node(self, node: Op, in_loop: bool, override: bool | None) -> Context:
        """The context of one node: whether it runs step by step in a loop, and whether it
        keeps its state across runs (the node's ``persistent`` attribute unless overridden)."""
        keep = bool(getattr(node, "persistent", False)) if override is None else override
        return replace(self, in_loop=in_loop, persistent=keep)


def _kernel(fn, modules=(), reset=lambda: None):
    from slayerc.runtime.interpreter import Kernel

    return Kernel(fn=fn, modules=list(modules), reset=reset)


def _param(ctx: Context, ref: ParamRef | None) -> torch.Tensor | None:
    """The live tensor of a parameter reference (None for None)."""
    return None if ref is None else ctx.params[ref.name]


def _channel(v: torch.Tensor, rank: int) -> torch.Tensor:
    """A per-channel vector shaped to broadcast over ``[N, C, (H, W,) T]``."""
    return v.reshape(-1, *([1] * (rank - 2)))


# ------------------------------------------------------------------------------------ simple


def identity(node: Op, g: Graph, ctx: Context):
    """``io.input``, ``io.output``, ``neuron.dropout`` (inference): ``y = x``."""
    return _kernel(lambda xs: xs[0])


def reshape(node: Op, g: Graph, ctx: Context):
    """``tensor.flatten``/``tensor.reshape``: per-step reshape in C order."""
    shape = tuple(node.shape)  # type: ignore[arg-type]
    return _kernel(lambda xs: xs[0].reshape(xs[0].shape[0], *shape, xs[0].shape[-1]))


def add(node: Op, g: Graph, ctx: Context):
    """``tensor.add`` (element by element, also of complex pairs)."""
    def fn(xs):
        out = xs[0]
        for x in xs[1:]:
            out = tuple(a + b for a, b in zip(out, x)) if isinstance(out, tuple) else out + x
        return out
    return _kernel(fn)


def concat(node: Op, g: Graph, ctx: Context):
    """``tensor.concat`` along a per-step axis (axis 0 is channels)."""
    axis = 1 + node.axis  # type: ignore[attr-defined]
    return _kernel(lambda xs: torch.cat(xs, dim=axis))


def affine(node: Op, g: Graph, ctx: Context):
    """``tensor.affine``: ``scale·x + bias``."""
    scale, bias = float(node.scale), float(node.bias)  # type: ignore[attr-defined]

    def fn(xs):
        y = xs[0] * scale if scale != 1.0 else xs[0]
        return y + bias if bias != 0.0 else y
    return _kernel(fn)


def quantize(node: Op, g: Graph, ctx: Context):
    """``tensor.quantize``: ``clamp(round(x / step) · step, low, high)`` (slayer's quantizer,
    straight-through gradient)."""
    step, lo, hi = float(node.step), float(node.low), float(node.high)  # type: ignore

    def fn(xs):
        return torch.clamp(ste_round(xs[0], step), lo, hi)
    return _kernel(fn)


def average(node: Op, g: Graph, ctx: Context):
    """``tensor.average``: mean over equal consecutive groups of the flattened input."""
    groups = int(node.groups)  # type: ignore[attr-defined]
    return _kernel(lambda xs: xs[0].reshape(xs[0].shape[0], groups, -1, xs[0].shape[-1]).mean(2))


# ---------------------------------------------------------------------------------- synapses


def _weights(node: Op, ctx: Context, attr: str = "weight") -> torch.Tensor | None:
    """``q(W ⊙ M)``: masked, and re-quantized where the node says training does (its
    ``quant_scale``; a no-op on the stored weight, which is on that grid already)."""
    w = _param(ctx, getattr(node, attr, None))
    mask = _param(ctx, getattr(node, "mask", None))
    if w is None:
        return None
    w = w * mask if mask is not None else w
    q = getattr(node, "quant_scale", None)
    return _quantize_8bit(w, q) if q is not None else w


def _synapse(node: Op, g: Graph, ctx: Context, apply):
    """Wrap ``apply(x, w)`` for the real and (if complex) imaginary weight, plus the bias."""
    def fn(xs):
        x = xs[0]
        y = apply(x, _weights(node, ctx))
        bias = _param(ctx, getattr(node, "bias", None))
        if bias is not None:
            y = y + _channel(bias, y.dim())
        w_im = _weights(node, ctx, "weight_imag")
        if w_im is None:
            return y
        return (y, apply(x, w_im))
    return _kernel(fn)


def dense(node: Op, g: Graph, ctx: Context):
    """``synapse.dense`` as the slayer synapse computes it (a matrix product over NCT)."""
    return _synapse(node, g, ctx, lambda x, w: torch.matmul(w, x))


def _geometry(node: Op) -> tuple[tuple, tuple, tuple]:
    def three(v, last):
        v = (v, v) if isinstance(v, int) else tuple(v)
        return (*v, last)
    return three(node.stride, 1), three(node.padding, 0), three(node.dilation, 1)


def conv(node: Op, g: Graph, ctx: Context):
    """``synapse.conv``: ``conv3d`` with a time kernel of 1 (as slayer's Conv synapse)."""
    stride, padding, dilation = _geometry(node)
    groups = node.groups  # type: ignore[attr-defined]
    return _synapse(node, g, ctx, lambda x, w: F.conv3d(
        x, w.unsqueeze(-1), None, stride, padding, dilation, groups))


def conv_transpose(node: Op, g: Graph, ctx: Context):
    """``synapse.conv_transpose``: ``conv_transpose3d`` with a time kernel of 1."""
    stride, padding, dilation = _geometry(node)
    groups = node.groups  # type: ignore[attr-defined]
    return _synapse(node, g, ctx, lambda x, w: F.conv_transpose3d(
        x, w.unsqueeze(-1), None, stride, padding, 0, groups, dilation))


def pool(node: Op, g: Graph, ctx: Context):
    """``synapse.pool``: slayer's sum pool (remainder padding, channels folded into H)."""
    stride, padding, dilation = _geometry(node)
    kh, kw = node.kernel  # type: ignore[attr-defined]

    def apply(x, w):
        pad_h, pad_w = x.shape[2] % kh, x.shape[3] % kw
        if pad_h or pad_w:
            x = F.pad(x, (0, 0, 0, pad_w, 0, pad_h))
        n, c, h, wd, t = x.shape
        out = F.conv3d(x.reshape(n, 1, c * h, wd, t), w.unsqueeze(-1), None, stride, padding,
                       dilation)
        return out.reshape(n, c, -1, out.shape[3], out.shape[4])
    return _synapse(node, g, ctx, apply)


def unpool(node: Op, g: Graph, ctx: Context):
    """``synapse.unpool``: the transpose of slayer's pool."""
    stride, padding, dilation = _geometry(node)

    def apply(x, w):
        n, c, _, wd, t = x.shape
        out = F.conv_transpose3d(x.reshape(n, 1, -1, wd, t), w.unsqueeze(-1), None, stride,
                                 padding, 0, 1, dilation)
        return out.reshape(n, c, -1, out.shape[3], out.shape[4])
    return _synapse(node, g, ctx, apply)


def _quantize_8bit(x: torch.Tensor, scale: int) -> torch.Tensor:
    lo, hi = WEIGHT_MANT
    return torch.clamp(ste_round(x, 2.0 / scale), lo / scale, hi / scale)


def kwta(node: Op, g: Graph, ctx: Context):
    """``synapse.kwta``: ``q(R)·x + q(b)`` with the lateral matrix and bias of lava-dl's KWTA."""
    n = int(node.shape[0])  # type: ignore[index]
    a, k = float(node.self_excitation), int(node.num_winners)  # type: ignore[attr-defined]
    scale = int(node.scale)  # type: ignore[attr-defined]
    r = (1 + a) * torch.eye(n, dtype=ctx.dtype) - 1
    b = torch.tensor([float(node.threshold) * (n - 2 * k) / n / scale], dtype=ctx.dtype)
    rq, bq = _quantize_8bit(r, scale), _quantize_8bit(b, scale)
    return _kernel(lambda xs: torch.matmul(rq.to(xs[0].device), xs[0]) + bq.to(xs[0].device))


# ------------------------------------------------------------------------------------- axons


def _zeros_like_step(node: Op, batch: int, like: torch.Tensor) -> torch.Tensor:
    return torch.zeros((batch, *node.shape, 1), dtype=like.dtype,  # type: ignore[misc]
                       device=like.device)


def _delays(node: Op, ctx: Context) -> tuple[torch.Tensor | int, int]:
    d = getattr(node, "delay", None)
    if d is None:
        d = int(node.steps)  # type: ignore[attr-defined]
    elif isinstance(d, ParamRef):
        d = ctx.params[d.name]
    return d, families.family("axon.delay").depth(d)


def shift(node: Op, g: Graph, ctx: Context):
    """``axon.shift`` / ``axon.delay``: ``y[t] = x[t − d]`` (per channel for a delay) through
    the family (:mod:`slayerc.runtime.neurons.delay`: the line carried when persistent); inside a
    recurrent loop, step by step from the input's past frames.  A delay held as a parameter
    shifts by ``trunc(d)`` with slayer's delay gradient (learnable in :func:`slayerc.to_module`)."""
    if ctx.in_loop:
        return _loop_shift(node, *_delays(node, ctx), ctx)
    return neuron(node, g, ctx)


delay = shift


def _loop_shift(node: Op, d, depth: int, ctx: Context):
    """A delay inside a recurrent loop: read the input's past steps (and, if persistent, the
    frames carried over from the previous call)."""
    carried: dict[str, Any] = {"frames": []}

    def frame(hist, k: int, batch: int) -> torch.Tensor:
        j = hist.t - k
        if j >= 0:
            return hist.past[j]
        old = carried["frames"]
        if ctx.persistent and len(old) >= -j and old[j].shape[0] == batch:
            return old[j]
        return _zeros_like_step(node, batch, hist.like)

    def fn(xs):
        hist = xs[0]
        batch = hist.batch
        if hist.t == 0 and hist.prev is not None:
            carried["frames"] = hist.prev[-max(depth, 1):]
        if isinstance(d, int):
            return frame(hist, d, batch)
        dd = torch.trunc(d.detach())
        out = _zeros_like_step(node, batch, hist.like)
        view = dd.reshape(-1, *([1] * (out.dim() - 2)))
        for k in sorted({int(v) for v in dd.reshape(-1).tolist()}):
            out = torch.where(view == k, frame(hist, k, batch), out)
        return out
    return _kernel(fn, reset=lambda: carried.update(frames=[]))


# ------------------------------------------------------------------------------------- norms


def batch_norm(node: Op, g: Graph, ctx: Context):
    """``norm.batch`` in inference form, through ``F.batch_norm`` as torch's eval BatchNorm."""
    eps = float(node.eps)  # type: ignore[attr-defined]
    refs = (node.mean, node.var, node.weight, node.bias)  # type: ignore[attr-defined]
    return _kernel(lambda xs: F.batch_norm(xs[0], *(_param(ctx, r) for r in refs), False, 0.0,
                                           eps))


def mean_only_norm(node: Op, g: Graph, ctx: Context):
    """``norm.mean_only``: ``x − q(mean)`` with slayer's 8-bit quantizer."""
    scale = int(node.scale)  # type: ignore[attr-defined]

    def fn(xs):
        mean = _quantize_8bit(_param(ctx, node.mean), scale)  # type: ignore[attr-defined]
        return xs[0] - _channel(mean, xs[0].dim())
    return _kernel(fn)


def weight_scale_norm(node: Op, g: Graph, ctx: Context):
    """``norm.weight_scale``: ``(x − q(mean)) / 2^weight_exp``."""
    scale = int(node.scale)  # type: ignore[attr-defined]
    div = float(2.0 ** int(node.weight_exp))  # type: ignore[attr-defined]

    def fn(xs):
        mean = _quantize_8bit(_param(ctx, node.mean), scale)  # type: ignore[attr-defined]
        return (xs[0] - _channel(mean, xs[0].dim())) / div
    return _kernel(fn)


# ----------------------------------------------------------------------------------- neurons


def _value(node: Op, ctx: Context):
    """``value(attr)`` for a family's ``node_args``: a live tensor for a parameter."""
    def value(attr: str):
        v = getattr(node, attr, None)
        return ctx.params[v.name] if isinstance(v, ParamRef) else v
    return value


def _on(v: Any, device: torch.device) -> Any:
    """A tensor argument on the input's device (scalar attributes become CPU tensors)."""
    return v.to(device) if torch.is_tensor(v) and v.device != device else v


def neuron(node: Op, g: Graph, ctx: Context):
    """Every stateful family op (``neuron.*``, ``axon.delta``, ``dendrite.sigma``): the
    ``ctx.kind`` kernel of its family (:mod:`slayerc.runtime.neurons`), falling back to the
    family's torch dynamics; states carried between calls when persistent or in a loop."""
    fam = families.family(node.OP)
    run = families.kernel(node.OP, ctx.kind) or fam.dynamics
    value = _value(node, ctx)
    fam.node_args(node, value)  # attribute errors surface when the kernel is built
    persistent = ctx.persistent or ctx.in_loop
    state: dict[str, Any] = {}

    def fn(xs):
        args, kwargs = fam.node_args(node, value)
        dev = (xs[0][0] if isinstance(xs[0], tuple) else xs[0]).device
        args = [_on(a, dev) for a in args]
        kwargs = {k: _on(v, dev) for k, v in kwargs.items()}
        y, new = run(xs[0], *args, **kwargs, **state)
        if persistent:  # carried states hold no autograd history (slayer detaches them too)
            state.update({k: v.detach() if torch.is_tensor(v) else v
                          for k, v in new.items() if k in fam.STATES})
        return y
    return _kernel(fn, reset=state.clear)
