"""Kernels of the floating-point interpreter, one builder per op (see ``interpreter.KERNELS``).

Each builder returns a :class:`~slayerc.runtime.interpreter.Kernel` whose ``fn`` takes the list
of input values.  Values are ``[N, *S, T]`` tensors, or ``(re, im)`` pairs for complex ones.  In
a recurrent loop a delaying op receives a ``_History`` (its input's past steps) instead.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from slayerc.errors import RuntimeSimError
from slayerc.ir.core import Graph, Op, ParamRef
from slayerc.runtime import axon as ax

P_SCALE = 4096


@dataclass(frozen=True)
class Context:
    """What a kernel builder needs besides the node: dtype and state policy."""

    dtype: torch.dtype = torch.float32
    persistent: bool = False
    in_loop: bool = False

    def for_node(self, node: Op, in_loop: bool, override: bool | None) -> Context:
        """The context of one node: whether it runs step by step in a loop, and whether it
        keeps its state across runs (the node's ``persistent`` attribute unless overridden)."""
        keep = bool(getattr(node, "persistent", False)) if override is None else override
        return replace(self, in_loop=in_loop, persistent=keep)


def _kernel(fn, modules=(), reset=lambda: None):
    from slayerc.runtime.interpreter import Kernel

    return Kernel(fn=fn, modules=list(modules), reset=reset)


def _param(g: Graph, ref: ParamRef | None, dtype: torch.dtype) -> torch.Tensor | None:
    if ref is None:
        return None
    return torch.as_tensor(np.asarray(g.params[ref.name])).to(dtype)


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
    """``tensor.quantize``: ``clamp(round(x / step) · step, low, high)`` (slayer's quantizer)."""
    step, lo, hi = float(node.step), float(node.low), float(node.high)  # type: ignore

    def fn(xs):
        return torch.clamp(torch.round(xs[0] / step) * step, lo, hi)
    return _kernel(fn)


def average(node: Op, g: Graph, ctx: Context):
    """``tensor.average``: mean over equal consecutive groups of the flattened input."""
    groups = int(node.groups)  # type: ignore[attr-defined]
    return _kernel(lambda xs: xs[0].reshape(xs[0].shape[0], groups, -1, xs[0].shape[-1]).mean(2))


# ---------------------------------------------------------------------------------- synapses


def _weights(node: Op, g: Graph, ctx: Context, attr: str = "weight") -> torch.Tensor:
    w = _param(g, getattr(node, attr), ctx.dtype)
    mask = _param(g, getattr(node, "mask", None), ctx.dtype)
    return w * mask if mask is not None else w  # type: ignore[operator]


def _synapse(node: Op, g: Graph, ctx: Context, apply):
    """Wrap ``apply(x, w)`` for the real and (if complex) imaginary weight, plus the bias."""
    w_re = _weights(node, g, ctx)
    w_im = _weights(node, g, ctx, "weight_imag") if node.weight_imag is not None else None
    bias = _param(g, getattr(node, "bias", None), ctx.dtype)

    def fn(xs):
        x = xs[0]
        y = apply(x, w_re)
        if bias is not None:
            y = y + _channel(bias, y.dim())
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
    step = 2.0 / scale
    return torch.clamp(torch.round(x / step) * step, -256.0 / scale, 254.0 / scale)


def kwta(node: Op, g: Graph, ctx: Context):
    """``synapse.kwta``: ``q(R)·x + q(b)`` with the lateral matrix and bias of lava-dl's KWTA."""
    n = int(node.shape[0])  # type: ignore[index]
    a, k = float(node.self_excitation), int(node.num_winners)  # type: ignore[attr-defined]
    scale = int(node.scale)  # type: ignore[attr-defined]
    r = (1 + a) * torch.eye(n, dtype=ctx.dtype) - 1
    b = torch.tensor([float(node.threshold) * (n - 2 * k) / n / scale], dtype=ctx.dtype)
    rq, bq = _quantize_8bit(r, scale), _quantize_8bit(b, scale)
    return _kernel(lambda xs: torch.matmul(rq, xs[0]) + bq)


# ------------------------------------------------------------------------------------- axons


def _zeros_like_step(node: Op, batch: int, dtype: torch.dtype) -> torch.Tensor:
    return torch.zeros((batch, *node.shape, 1), dtype=dtype)  # type: ignore[misc]


class _Line:
    """A delay line: the last ``depth`` input frames, carried across calls when persistent."""

    def __init__(self, depth: int, persistent: bool):
        self.depth, self.persistent = depth, persistent
        self.buf: torch.Tensor | None = None

    def reset(self) -> None:
        self.buf = None

    def run(self, x: torch.Tensor, shift_fn) -> torch.Tensor:
        if not self.persistent or self.depth == 0:
            return shift_fn(x)
        if self.buf is None or self.buf.shape[:-1] != x.shape[:-1]:
            self.buf = torch.zeros((*x.shape[:-1], self.depth), dtype=x.dtype)
        full = torch.cat([self.buf, x], dim=-1)
        self.buf = full[..., -self.depth:].clone()
        return shift_fn(full)[..., self.depth:]


def _delays(node: Op, g: Graph) -> tuple[torch.Tensor | int, int]:
    d = getattr(node, "delay", None)
    if d is None:
        return int(node.steps), int(node.steps)  # type: ignore[attr-defined]
    if isinstance(d, ParamRef):
        arr = np.asarray(g.params[d.name])
        return torch.as_tensor(np.trunc(arr).astype(np.float64)), int(np.trunc(arr).max(initial=0))
    return int(d), int(d)


def shift(node: Op, g: Graph, ctx: Context):
    """``axon.shift`` / ``axon.delay``: ``y[t] = x[t − d]`` (per channel for a delay)."""
    d, depth = _delays(node, g)
    if ctx.in_loop:
        return _loop_shift(node, d, depth, ctx)
    line = _Line(depth, ctx.persistent)

    def fn(xs):
        return line.run(xs[0], lambda x: ax.shift(x, d))
    return _kernel(fn, reset=line.reset)


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
        return _zeros_like_step(node, batch, ctx.dtype)

    def fn(xs):
        hist = xs[0]
        batch = hist.batch
        if hist.t == 0 and hist.prev is not None:
            carried["frames"] = hist.prev[-max(depth, 1):]
        if isinstance(d, int):
            return frame(hist, d, batch)
        out = _zeros_like_step(node, batch, ctx.dtype)
        view = d.reshape(-1, *([1] * (out.dim() - 2)))
        for k in sorted({int(v) for v in d.reshape(-1).tolist()}):
            out = torch.where(view == k, frame(hist, k, batch), out)
        return out
    return _kernel(fn, reset=lambda: carried.update(frames=[]))


def delta(node: Op, g: Graph, ctx: Context):
    """``axon.delta``: lava-dl's Delta encoder module (as ``sigma_delta.Input`` uses it)."""
    from slayerc.frontend.slayer.axon.delta import Delta

    def make():
        th = node.threshold  # type: ignore[attr-defined]
        m = Delta(threshold=float(th) if not isinstance(th, ParamRef) else 0.0,
                  cum_error=bool(node.cum_error), persistent_state=ctx.persistent or ctx.in_loop,
                  scale=int(node.scale) * 64)  # type: ignore[attr-defined]
        if isinstance(th, ParamRef):
            m.threshold.data = torch.as_tensor(np.asarray(g.params[th.name]), dtype=torch.float32)
        return m
    return _stateful(make, lambda m, xs: m(xs[0]))


def sigma(node: Op, g: Graph, ctx: Context):
    """``dendrite.sigma``: cumulative sum (carried across calls when persistent)."""
    from slayerc.frontend.slayer.dendrite.sigma import Sigma

    return _stateful(lambda: Sigma(persistent_state=ctx.persistent or ctx.in_loop),
                     lambda m, xs: m(xs[0]))


def _stateful(make, call):
    """A kernel around a module that holds state; ``reset`` rebuilds it from scratch."""
    holder = {"m": make()}

    def fn(xs):
        return call(holder["m"], xs)

    def reset():
        holder["m"] = make()
    return _kernel(fn, modules=[holder["m"]], reset=reset)


# ------------------------------------------------------------------------------------- norms


def batch_norm(node: Op, g: Graph, ctx: Context):
    """``norm.batch`` in inference form, through ``F.batch_norm`` as torch's eval BatchNorm."""
    mean, var = _param(g, node.mean, ctx.dtype), _param(g, node.var, ctx.dtype)
    w, b = _param(g, node.weight, ctx.dtype), _param(g, node.bias, ctx.dtype)
    eps = float(node.eps)  # type: ignore[attr-defined]
    return _kernel(lambda xs: F.batch_norm(xs[0], mean, var, w, b, False, 0.0, eps))


def mean_only_norm(node: Op, g: Graph, ctx: Context):
    """``norm.mean_only``: ``x − q(mean)`` with slayer's 8-bit quantizer."""
    mean = _quantize_8bit(_param(g, node.mean, ctx.dtype), int(node.scale))  # type: ignore
    return _kernel(lambda xs: xs[0] - _channel(mean, xs[0].dim()))


def weight_scale_norm(node: Op, g: Graph, ctx: Context):
    """``norm.weight_scale``: ``(x − q(mean)) / 2^weight_exp``."""
    mean = _quantize_8bit(_param(g, node.mean, ctx.dtype), int(node.scale))  # type: ignore
    div = float(2.0 ** int(node.weight_exp))  # type: ignore[attr-defined]
    return _kernel(lambda xs: (xs[0] - _channel(mean, xs[0].dim())) / div)


# ----------------------------------------------------------------------------------- neurons

_DECAY_ATTRS = ("current_decay", "voltage_decay", "threshold_decay", "refractory_decay",
                "sin_decay", "cos_decay")


class _AddBias(torch.nn.Module):
    """Adds a per-channel (or per-neuron) bias where slayer applies its norm."""

    def __init__(self, bias: torch.Tensor):
        super().__init__()
        self.bias = bias

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b = self.bias
        if b.dim() == 1 and x.dim() > 3:
            b = b.reshape(-1, *([1] * (x.dim() - 3)))
        return x + b.unsqueeze(-1)


def _scalar(node: Op, attr: str) -> float:
    value = getattr(node, attr)
    if isinstance(value, ParamRef):
        raise RuntimeSimError(f"a per-channel '{attr}' is not supported for {node.OP} by the "
                              "float interpreter; use a scalar")
    return float(value)


def _construct(node: Op) -> torch.nn.Module:
    from slayerc.frontend.slayer import neuron as nm

    common = {"tau_grad": float(node.tau_grad), "scale_grad": float(node.scale_grad),
              "scale": int(node.scale), "shape": tuple(node.shape)}
    th = _scalar(node, "threshold")
    op = node.OP
    if op == "neuron.sigma_delta":
        return nm.sigma_delta.Neuron(threshold=th, activation=ACTIVATIONS[node.activation],
                                     cum_error=bool(node.cum_error), **common)
    graded = {"graded_spike": bool(node.graded)}
    if op == "neuron.cuba":
        return nm.cuba.Neuron(th, 0.0, 0.0, **graded, **common)
    if op == "neuron.alif":
        return nm.alif.Neuron(th, _scalar(node, "threshold_step"), 0.0, 0.0, 0.0, 0.0,
                              **graded, **common)
    family = {"neuron.rf": nm.rf, "neuron.rf_iz": nm.rf_iz, "neuron.adrf": nm.adrf,
              "neuron.adrf_iz": nm.adrf_iz}[op]
    if op in ("neuron.adrf", "neuron.adrf_iz"):
        return family.Neuron(th, _scalar(node, "threshold_step"), 10.0, 0.0, 0.0, 0.0,
                             **graded, **common)
    return family.Neuron(th, 10.0, 0.0, **graded, **common)


ACTIVATIONS = {"relu": F.relu, "identity": lambda x: x, "sigmoid": torch.sigmoid,
               "tanh": torch.tanh}


def _set_decays(m: torch.nn.Module, node: Op, g: Graph) -> None:
    for attr in _DECAY_ATTRS:
        if not hasattr(node, attr):
            continue
        value = getattr(node, attr)
        if isinstance(value, ParamRef):
            data = torch.as_tensor(np.asarray(g.params[value.name], dtype=np.float64))
        else:
            data = torch.tensor([float(value)], dtype=torch.float64)
        param = getattr(m, attr)
        param.data = (data * P_SCALE).to(param.dtype).reshape(data.shape or (1,))


def _bias(m: torch.nn.Module, node: Op, g: Graph) -> None:
    value = node.bias  # type: ignore[attr-defined]
    if value is None:
        return
    b = (torch.as_tensor(np.asarray(g.params[value.name])) if isinstance(value, ParamRef)
         else torch.tensor([float(value)])).to(torch.float32)
    if node.OP == "neuron.sigma_delta":
        m.set_bias(b.reshape(-1))  # type: ignore[operator]
        return
    if node.OP not in ("neuron.cuba", "neuron.alif"):
        raise RuntimeSimError(f"{node.OP} has no bias input in the float interpreter")
    m.norm = _AddBias(b)


def _sigma_delta_threshold(m: torch.nn.Module, node: Op, g: Graph) -> None:
    th = node.threshold  # type: ignore[attr-defined]
    if node.OP == "neuron.sigma_delta" and isinstance(th, ParamRef):
        m.delta.threshold.data = torch.as_tensor(np.asarray(g.params[th.name]),
                                                 dtype=torch.float32)


def neuron(node: Op, g: Graph, ctx: Context):
    """Every ``neuron.*`` op: the modelling API's neuron module, configured from the node."""
    persistent = ctx.persistent or ctx.in_loop

    def make() -> torch.nn.Module:
        m = _construct(node)
        m.persistent_state = persistent
        for sub in m.modules():
            if hasattr(sub, "persistent_state"):
                sub.persistent_state = persistent
        _set_decays(m, node, g)
        _bias(m, node, g)
        m.eval()
        return m

    if any(isinstance(getattr(node, a, None), ParamRef) for a in ("threshold",)) \
            and node.OP != "neuron.sigma_delta":
        raise RuntimeSimError("per-channel thresholds are supported only for sigma_delta")
    holder = {"m": make()}
    if node.OP == "neuron.sigma_delta":
        _sigma_delta_threshold(holder["m"], node, g)

    def fn(xs):
        return holder["m"](xs[0])

    def reset():
        holder["m"] = make()
        if node.OP == "neuron.sigma_delta":
            _sigma_delta_threshold(holder["m"], node, g)
    return _kernel(fn, modules=[holder["m"]], reset=reset)

