"""Fused CUBA-LIF dynamics: current and voltage integrated in one loop over time.

Same integer arithmetic and gradients as two :func:`slayerc.runtime.dynamics.leaky_integrator`
calls (current without reset, then voltage with reset), with fewer operations per step, reused
scratch buffers and time-major traces (see :mod:`slayerc.runtime.dynamics` for conventions).
"""

from __future__ import annotations

import math
import threading

import torch

from slayerc.ir.target import STATE_SCALE
from slayerc.runtime.dynamics import _li_loop
from slayerc.runtime.timescan import (
    _F64,
    P_SCALE,
    _decay_keep,
    _scan_time_major,
    _spatial,
    _time_major_int_into,
    _time_major_out,
    _toeplitz,
    from_time_major,
    param_view,
    reduce_to,
    reset_level,
    state_int,
    time_major_int,
)

# -------------------------------------------------------------------------------- CUBA-LIF


_WORKSPACE = threading.local()
_WORKSPACE_MAX = 1 << 26
"""Largest scratch buffer (bytes) kept between calls; larger ones are allocated each time."""


def _scratch(name: str, shape: tuple[int, ...], device: torch.device) -> torch.Tensor:
    """A float64 scratch buffer, reused between calls of this thread (contents undefined).

    Fresh multi-megabyte buffers cost more in first-touch page faults than the CUBA loop spends
    computing in them; the loop's scratch never escapes the call, so it can be recycled.
    """
    nbytes = math.prod(shape) * 8
    if nbytes > _WORKSPACE_MAX:
        return torch.empty(shape, dtype=_F64, device=device)
    cache = _WORKSPACE.__dict__.setdefault("buffers", {})
    buf = cache.get((name, device))
    if buf is None or buf.numel() < math.prod(shape):
        buf = cache[(name, device)] = torch.empty(math.prod(shape), dtype=_F64, device=device)
    return buf[: math.prod(shape)].view(shape)


def _cuba_loop(xin, keep2, uv0, level):
    """Current and voltage in one time-major loop; returns ``[T, 2, N, *S]`` (u, pre-reset v).

    Per step: ``(u, v) = tz((u, v_carry)·(4096 − (Du, Dv)))`` as one stacked product,
    ``u += xin[t]``, ``v = u + v·keep`` (``keep = 0`` right after a reset) and
    ``keep = float(v < level)``; the same integers as two :func:`leaky_integrator` calls.
    """
    out = _scratch("cuba", (xin.shape[0],) + tuple(uv0.shape), xin.device)
    us, vs = out[:, 0].unbind(0), out[:, 1].unbind(0)
    keep = torch.ones_like(uv0[0])
    prev = uv0
    for row, u, v, x in zip(out.unbind(0), us, vs, xin.unbind(0)):
        torch.mul(prev, keep2, out=row).trunc_()
        u.add_(x)
        if level is None:
            v.add_(u)
        else:
            torch.addcmul(u, v, keep, out=v)  # v·keep is exact: keep is 0 or 1
            torch.lt(v, level, out=keep)
        prev = row
    return out


def _cuba_exact(x, ku, u0, u, scale: int) -> bool:
    """Whether ``v``'s input ``I(S·(u/S))``, rounded through ``x``'s dtype, is ``u`` exactly.

    True for float64 and, for float32, when every ``|u| < 2**24``; that is settled from a
    bound (``|u[t]| ≤ max|u0| + min(T, 1/(1−ku))·max|I(S·x)|`` for ``0 ≤ ku ≤ 1``) before
    scanning the trace itself.  A scale that is not a power of two never round-trips exactly.
    """
    if scale & (scale - 1) or x.dtype not in (torch.float32, torch.float64):
        return False
    if x.dtype == torch.float64:
        return True
    k_lo, k_hi = float(ku.min()), float(ku.max())
    if 0 <= k_lo and k_hi <= 1:
        lo, hi = torch.aminmax(x.detach().movedim(-1, 0))
        steps = x.shape[-1] if k_hi == 1 else min(x.shape[-1], 1 / (1 - k_hi))
        bound = float(u0.abs().max()) + steps * scale * max(-float(lo), float(hi))
        if bound < 2.0**24:
            return True
    lo, hi = torch.aminmax(u)
    return bool(max(-lo, hi) < 2.0**24)


class _CubaLIF(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, du, dv, u_state, v_state, scale, threshold, want_u, exact=False):
        spatial = _spatial(x)
        ku = _decay_keep(du, spatial, "current_decay", exact)
        kv = _decay_keep(dv, spatial, "voltage_decay", exact)
        level = None
        if threshold is not None and threshold * scale > 0:
            level = reset_level(threshold * scale)
        u0, v0 = state_int(u_state, x, scale), state_int(v_state, x, scale)
        scratch = _scratch("cuba_in", x.shape[-1:] + x.shape[:-1], x.device)
        xin = _time_major_int_into(x, scale, scratch)
        common = torch.broadcast_shapes(ku.shape, kv.shape)
        keep2 = torch.stack([ku.expand(common), kv.expand(common)])
        keep2 = keep2.reshape((2,) + (1,) * (x.dim() - 1 - len(common)) + common)
        uv = _cuba_loop(xin, keep2, torch.stack([u0, v0]), level)
        u_tm, v_tm = uv[:, 0], uv[:, 1]
        if not _cuba_exact(x, ku, u0, u_tm, scale):  # replay the unfused float round trip
            u = from_time_major(u_tm, x.dtype, scale)
            v_tm = _li_loop(time_major_int(u, scale), kv, v0, level)
        v = _time_major_out(v_tm, x.dtype, scale)
        u = _time_major_out(u_tm, x.dtype, scale) if want_u or ctx.needs_input_grad[1] else None
        inits = [None if s is None else y / scale for s, y in ((u_state, u0), (v_state, v0))]
        ctx.save_for_backward(u, v, du, dv, *inits)
        ctx.spatial, ctx.exact = spatial, exact
        return u, v

    @staticmethod
    def backward(ctx, gu, gv):
        u, v, du, dv, init_u, init_v = ctx.saved_tensors
        if gv is None:
            gv = torch.zeros_like(v)
        views = [param_view(d.detach(), ctx.spatial).to(gv.dtype) for d in (du, dv)]
        views = views if ctx.exact else [d.round() for d in views]
        gd_u = gd_v = None
        if gu is None and not ctx.needs_input_grad[2] and views[0].numel() == 1 == views[1].numel():
            gx = _scan_pair_tm(gv, 1 - views[1] / P_SCALE, 1 - views[0] / P_SCALE)
        else:
            gvin = _scan_time_major(gv, 1 - views[1] / P_SCALE)
            if ctx.needs_input_grad[2]:
                gd_v = _decay_grad(gvin, v, init_v, views[1].shape, dv.shape).to(dv.dtype)
            gx = _scan_time_major(gvin if gu is None else gvin + gu, 1 - views[0] / P_SCALE)
        if ctx.needs_input_grad[1]:
            gd_u = _decay_grad(gx, u, init_u, views[0].shape, du.shape).to(du.dtype)
        return gx, gd_u, gd_v, None, None, None, None, None, None


def _scan_pair_tm(g: torch.Tensor, av: torch.Tensor, au: torch.Tensor) -> torch.Tensor:
    """``reverse_scan(reverse_scan(g, av), au)`` for one-value decays, as one matrix product."""
    gt = g.movedim(-1, 0)
    if not gt.is_contiguous():
        gt = gt.contiguous()
    n = gt.shape[0]
    if n > 128:
        return _scan_time_major(_scan_time_major(g, av), au)
    pair = _toeplitz(au.reshape(()).to(_F64), n) @ _toeplitz(av.reshape(()).to(_F64), n)
    flat = torch.mm(pair.to(g.dtype), gt.reshape(n, -1))
    return flat.reshape(gt.shape).movedim(0, -1)


def _decay_grad(gx, y, init, view_shape, shape) -> torch.Tensor:
    """``−Σ_t gx[t]·y[t−1] / 4096`` (``y[−1] = init``), reduced to the decay's shape."""
    gt, yt = gx.movedim(-1, 0), y.movedim(-1, 0)
    if len(view_shape) == 0 and init is None and gt.is_contiguous() and yt.is_contiguous():
        # one value: a dot product, without a [T, N, *S] temporary
        dot = torch.dot(gt[1:].reshape(-1), yt[:-1].reshape(-1))
        return dot.neg().div_(P_SCALE).reshape(shape)
    full = (gt[1:] * yt[:-1]).sum(0)
    if init is not None:
        full += gt[0] * init.to(full.dtype)
    return reduce_to(full.neg_().div_(P_SCALE), view_shape, shape)


def cuba_lif(
    x: torch.Tensor,
    current_decay: torch.Tensor,
    voltage_decay: torch.Tensor,
    current_state: torch.Tensor | None = None,
    voltage_state: torch.Tensor | None = None,
    scale: int = STATE_SCALE,
    threshold: float | None = None,
    current: bool = True,
    exact_decay: bool = False,
) -> tuple[torch.Tensor | None, torch.Tensor]:
    """CUBA-LIF current and voltage in one pass (``spec/slayer-dynamics.md`` §4.1, no norm).

    Equal, value for value and gradient formula for gradient formula, to::

        u = leaky_integrator(x, current_decay, current_state, scale)
        v = leaky_integrator(u, voltage_decay, voltage_state, scale, threshold)

    but runs one loop over ``T`` for both integrators (about half the per-step operations), and
    both the traces and the input gradient are ``[N, *S, T]`` views of time-major storage
    (see :func:`is_time_major`).  With ``current=False`` the current trace is not materialised
    (returned as None) unless ``current_decay`` needs a gradient.  ``exact_decay``: the decays
    unrounded (an IR node's ``exact_decays``).  Returns ``(u, v)``.
    """
    return _CubaLIF.apply(
        x, current_decay, voltage_decay, current_state, voltage_state, int(scale), threshold,
        bool(current), bool(exact_decay),
    )
