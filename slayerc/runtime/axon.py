"""Axon and dendrite primitives: time shift and delay (§5.1/5.2), delta encoder (§5.3), sigma.

References are to ``spec/slayer-dynamics.md``.  All functions take ``[N, *S, T]`` tensors, time
last.
"""

from __future__ import annotations

import math

import torch

from slayerc.runtime import compiled as _cmp
from slayerc.runtime.dynamics import DynamicsShapeError, is_time_major, param_view, reduce_to


def _shift_scalar(x: torch.Tensor, n: int) -> torch.Tensor:
    if n == 0:
        return x.clone()
    if abs(n) >= x.shape[-1]:
        return torch.zeros_like(x)
    pad = x.new_zeros(x.shape[:-1] + (abs(n),))  # cat: one pass, no zero fill of the output
    if n > 0:
        return torch.cat([pad, x[..., :-n]], dim=-1)
    return torch.cat([x[..., -n:], pad], dim=-1)


def _per_neuron_steps(x: torch.Tensor, d: torch.Tensor, sampling_time: float) -> torch.Tensor:
    """Integer shift per neuron ``trunc(d/Ts)``; ``d`` per channel is repeated over H, W."""
    spatial = tuple(x.shape[1:-1])
    n = torch.trunc(d.detach().to(torch.float64) / sampling_time).to(torch.int64)
    if n.numel() == math.prod(spatial):
        return n.reshape(-1)
    if n.numel() == spatial[0]:
        return param_view(n, spatial).expand(spatial).reshape(-1)
    raise DynamicsShapeError(
        f"delay of shape {list(d.shape)} fits neither the {spatial[0]} channels nor the "
        f"{math.prod(spatial)} neurons of an input of shape {list(x.shape)}"
    )


def _shift_each(x: torch.Tensor, n: torch.Tensor) -> torch.Tensor:
    """``out[:, m, t] = x[:, m, t − n[m]]`` (zero outside), for flat neuron index ``m``."""
    steps = x.shape[-1]
    if is_time_major(x):  # gather rows of the time-major storage; the result stays time-major
        xt = x.movedim(-1, 0)
        flat = xt.reshape(steps, x.shape[0], -1)
        src = torch.arange(steps, device=x.device).unsqueeze(1) - n.to(x.device).unsqueeze(0)
        valid = ((src >= 0) & (src < steps)).to(x.dtype).unsqueeze(1)
        idx = src.clamp(0, steps - 1).unsqueeze(1).expand(-1, flat.shape[1], -1)
        return torch.gather(flat, 0, idx).mul_(valid).reshape(xt.shape).movedim(0, -1)
    flat = x.reshape(x.shape[0], -1, steps)
    src = torch.arange(steps, device=x.device).unsqueeze(0) - n.to(x.device).unsqueeze(1)
    valid = (src >= 0) & (src < steps)
    idx = src.clamp(0, steps - 1).unsqueeze(0).expand(flat.shape[0], -1, -1)
    out = torch.gather(flat, -1, idx) * valid.to(x.dtype)
    return out.reshape(x.shape)


def _shift_raw(x: torch.Tensor, d, sampling_time: float) -> torch.Tensor:
    if torch.is_tensor(d) and d.numel() > 1:
        return _shift_each(x, _per_neuron_steps(x, d, sampling_time))
    value = float(d.item()) if torch.is_tensor(d) else float(d)
    return _shift_scalar(x, int(value / sampling_time))


class _Shift(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, d, sampling_time):
        ctx.d, ctx.ts = (d.detach() if torch.is_tensor(d) else d), sampling_time
        return _shift_raw(x, d, sampling_time)

    @staticmethod
    def backward(ctx, grad):
        return _shift_raw(grad, -ctx.d, ctx.ts), None, None


def shift(x: torch.Tensor, d=1, sampling_time: float = 1) -> torch.Tensor:
    """Shift in time by ``trunc(d/Ts)`` steps with zero fill: ``y[t] = x[t − n]`` (§5.1).

    ``d`` is a number (one shift for all) or a tensor with one value per channel (repeated over
    H, W) or per neuron.  The gradient is the inverse shift; ``d`` gets none (see :func:`delay`).
    lava-dl's CPU path divides a per-neuron shift by ``Ts`` twice; here it is divided once.
    """
    return _Shift.apply(x, d, sampling_time)


class _Delay(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, d, grad_scale, sampling_time):
        n = _per_neuron_steps(x, d, sampling_time) if d.numel() > 1 else None
        y = _shift_each(x, n) if n is not None else _shift_raw(x, d, sampling_time)
        ctx.save_for_backward(y, d)
        ctx.n, ctx.grad_scale, ctx.ts = n, grad_scale, sampling_time
        return y

    @staticmethod
    def backward(ctx, grad):
        y, d = ctx.saved_tensors
        if ctx.n is not None:
            gx = _shift_each(grad, -ctx.n)
        else:
            gx = _shift_raw(grad, -d, ctx.ts)
        gd = None
        if ctx.needs_input_grad[1]:
            # Σ_t g[t]·(y[t−1] − y[t]) with y[−1] = 0, through one temporary
            step = torch.sub(y[..., :-1], y[..., 1:]).mul_(grad[..., 1:]).sum(-1)
            full = step.sub_(grad[..., 0] * y[..., 0]).mul_(ctx.grad_scale)  # [N, *S]
            view = param_view(d, tuple(y.shape[1:-1]), "delay")
            gd = reduce_to(full, view.shape, d.shape)
        return gx, gd, None, None


def delay(x: torch.Tensor, d: torch.Tensor, grad_scale: float = 1, sampling_time: float = 1):
    """Learnable delay: :func:`shift` by ``trunc(d/Ts)`` with a gradient for ``d`` (§5.2).

    .. math:: \\partial L/\\partial d = \\text{grad\\_scale}\\sum_{n,t} g[t]\\,(y[t-1] - y[t])

    summed per channel (or per neuron) as ``d`` is shaped.
    """
    return _Delay.apply(x, d, grad_scale, sampling_time)


# ------------------------------------------------------------------------------ delta / sigma


def _delta_loop(dx, theta, residual, error):
    """Time-major delta recursion; returns outputs, the pre-threshold deltas and final states."""
    if _cmp.delta_fits(dx, residual, error):
        return _cmp.delta_loop(dx, theta, residual, error)
    out, deltas = torch.empty_like(dx), torch.empty_like(dx)
    mag = torch.empty_like(residual)
    send = torch.empty_like(residual)
    for t in range(dx.shape[0]):
        d = torch.add(dx[t], residual, out=deltas[t])
        if error is None:
            torch.ge(torch.abs(d, out=mag), theta, out=send)
            torch.mul(d, send, out=out[t])
        else:
            error = error + d
            torch.ge(torch.abs(error, out=mag), theta, out=send)
            torch.mul(d, send, out=out[t])
            error = error * (out[t] == 0)
        residual = d - out[t]
    return out, deltas, residual, error


class _DeltaUnit(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, threshold, pre, residual, error, scale, tau_grad, scale_grad):
        spatial = tuple(x.shape[1:-1])
        theta = param_view(threshold.detach(), spatial, "threshold").to(x.dtype)
        prev = torch.cat([pre.expand(x.shape[:-1]).unsqueeze(-1), x[..., :-1]], dim=-1)
        dx = (x.detach() - prev).movedim(-1, 0).contiguous()
        out, deltas, residual, error = _delta_loop(dx, theta, residual.expand(x.shape[:-1]), error)
        step = 1 / scale
        y = torch.floor(out.movedim(0, -1) / step) * step
        ctx.save_for_backward(deltas, threshold)
        ctx.params = (tau_grad, scale_grad, spatial)
        return y.contiguous(), residual, error

    @staticmethod
    def backward(ctx, grad, *_):
        deltas, threshold = ctx.saved_tensors
        tau, sg, spatial = ctx.params
        gx = grad.clone()
        gx[..., :-1] -= grad[..., 1:]
        gth = None
        if ctx.needs_input_grad[1]:
            d = deltas.movedim(0, -1)
            th = param_view(threshold.detach(), spatial).to(d.dtype).unsqueeze(-1)
            sub = torch.abs(d) - th
            g = torch.where(sub > 0, -d * sg * torch.exp(-sub / tau) / th, -torch.sign(d)) * grad
            view = param_view(threshold.detach(), spatial)
            gth = reduce_to(g.sum(-1), view.shape, threshold.shape)
        return gx, gth, None, None, None, None, None, None


def delta_encode(
    x: torch.Tensor,
    threshold: torch.Tensor,
    pre_state: torch.Tensor | None = None,
    residual_state: torch.Tensor | None = None,
    error_state: torch.Tensor | None = None,
    scale: int = 1 << 6,
    tau_grad: float = 1,
    scale_grad: float = 1,
):
    """Delta encoder with threshold (§5.3).  Returns ``(y, residual, error)``.

    .. math::
        \\Delta[t] &= x[t] - x[t-1] + r[t-1] \\\\
        y[t] &= \\Delta[t]\\ \\text{if}\\ |\\Delta[t]| \\ge \\vartheta\\ \\text{else}\\ 0, \\qquad
        r[t] = \\Delta[t] - y[t]

    With an ``error_state`` (cumulative error): ``e += Δ``; send when ``|e| ≥ θ``; ``e = 0`` after
    a send.  ``x[−1]``/``r[−1]`` are ``pre_state``/``residual_state`` (0 when None).  The output is
    then floor-quantized to steps of ``1/scale`` (the error is not fed back).  Backward (lava-dl):
    ``gx[t] = g[t] − g[t+1]``; ``gθ = Σ g·(−Δ·σ·e^{−(|Δ|−θ)/τ}/θ)`` where ``|Δ| > θ``, else
    ``−sign(Δ)·g``, reduced to ``threshold``'s shape (one value or per channel).
    """
    zero = torch.zeros(x.shape[:-1], dtype=x.dtype, device=x.device)
    pre = zero if pre_state is None else pre_state.to(x.dtype)
    res = zero if residual_state is None else residual_state.to(x.dtype)
    err = None if error_state is None else error_state.to(x.dtype).expand(x.shape[:-1])
    return _DeltaUnit.apply(x, threshold, pre, res, err, scale, tau_grad, scale_grad)


def sigma(x: torch.Tensor, state: torch.Tensor | None = None) -> torch.Tensor:
    """Sigma decoder ``y[t] = state + Σ_{k ≤ t} x[k]`` (cumulative sum over time)."""
    y = torch.cumsum(x, dim=-1)
    if state is not None:
        y = y + state.unsqueeze(-1)
    return y
