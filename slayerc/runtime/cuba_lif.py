"""Fused CUBA-LIF dynamics: current and voltage integrated in one loop over time.

Same integer arithmetic and gradients as two :func:`slayerc.runtime.dynamics.leaky_integrator`
calls (current without reset, then voltage with reset), with fewer operations per step, reused
scratch buffers and time-major traces (see :mod:`slayerc.runtime.dynamics` for conventions).

With numba installed (the optional ``fast`` extra) a float32 CPU input runs the forward as one
compiled loop instead (:func:`_cuba_kernel`: tiles of 128 neurons × 64 steps, float32 in and out,
the integers in registers, no float64 copy of a whole trace), with the same values bit for bit;
:func:`cuba_lif_spikes` is its inference form (spikes only, the input's layout kept).  Without
numba, or with ``SLAYERC_NO_NUMBA=1`` or :func:`set_compiled(False) <set_compiled>`, the torch
loop runs.
"""

from __future__ import annotations

import math
import os
import threading

import numpy as np
import torch

from slayerc.ir.target import STATE_SCALE
from slayerc.runtime.buffers import huge_empty
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
    is_time_major,
    param_view,
    reduce_to,
    reset_level,
    state_int,
    time_major_int,
)

try:  # pragma: no cover - depends on the environment
    import numba
except ImportError:  # pragma: no cover
    numba = None

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


def _cuba_loop(xin, keep2, uv0, level, out=None, keep=None):
    """Current and voltage in one time-major loop; returns ``[T, 2, N, *S]`` (u, pre-reset v).

    Per step: ``(u, v) = tz((u, v_carry)·(4096 − (Du, Dv)))`` as one stacked product,
    ``u += xin[t]``, ``v = u + v·keep`` (``keep = 0`` right after a reset) and
    ``keep = float(v < level)``; the same integers as two :func:`leaky_integrator` calls.
    ``out`` (``[T, 2, N, *S]``) and ``keep`` (updated in place) let a caller run the time axis
    in chunks; by default both are new.
    """
    if out is None:
        out = _scratch("cuba", (xin.shape[0],) + tuple(uv0.shape), xin.device)
    us, vs = out[:, 0].unbind(0), out[:, 1].unbind(0)
    keep = torch.ones_like(uv0[0]) if keep is None else keep
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
    bound (:func:`_cuba_bound_exact`) before scanning the trace itself.  A scale that is not a
    power of two never round-trips exactly.
    """
    if scale & (scale - 1) or x.dtype not in (torch.float32, torch.float64):
        return False
    if _cuba_bound_exact(x, ku, u0, scale):
        return True
    lo, hi = torch.aminmax(u)
    return bool(max(-lo, hi) < 2.0**24)


def _cuba_bound_exact(x, ku, u0, scale: int) -> bool:
    """:func:`_cuba_exact` settled without the current trace: float64, or float32 with
    ``|u[t]| ≤ max|u0| + min(T, 1/(1−ku))·max|I(S·x)| < 2**24`` (for ``0 ≤ ku ≤ 1``)."""
    if scale & (scale - 1) or x.dtype not in (torch.float32, torch.float64):
        return False
    if x.dtype == torch.float64:
        return True
    k_lo, k_hi = float(ku.min()), float(ku.max())
    if not (0 <= k_lo and k_hi <= 1) or x.numel() == 0:
        return False
    lo, hi = torch.aminmax(x.detach().movedim(-1, 0))
    steps = x.shape[-1] if k_hi == 1 else min(x.shape[-1], 1 / (1 - k_hi))
    return float(u0.abs().max()) + steps * scale * max(-float(lo), float(hi)) < 2.0**24


# ------------------------------------------------------------------ compiled forward (numba)

_COMPILED = {"on": numba is not None and os.environ.get("SLAYERC_NO_NUMBA", "") in ("", "0")}
_TILE_J, _TILE_T = 128, 64
"""The compiled loop's tile: neurons advanced together (SIMD lanes) × steps (small enough for
the tile's transposes to stay in L1)."""


def compiled() -> bool:
    """Whether float32 CPU CUBA forwards run the compiled loop (numba present, not disabled)."""
    return _COMPILED["on"]


def set_compiled(on: bool) -> bool:
    """Switch the compiled CUBA forward on or off (tests, benchmarks); returns the old setting.

    Without numba it stays off; ``SLAYERC_NO_NUMBA=1`` starts it off.
    """
    old = _COMPILED["on"]
    _COMPILED["on"] = bool(on) and numba is not None
    return old


def _tile_in(src, n, j0, t0, nk, nt, buf):
    """``buf[t, k] = src[n, j0 + k, t0 + t]``, reading ``src`` along its contiguous axis."""
    if src.strides[2] == src.itemsize:
        for k in range(nk):
            for t in range(nt):
                buf[t, k] = src[n, j0 + k, t0 + t]
    else:
        for t in range(nt):
            for k in range(nk):
                buf[t, k] = src[n, j0 + k, t0 + t]


def _tile_out(buf, dst, n, j0, t0, nk, nt):
    """``dst[n, j0 + k, t0 + t] = buf[t, k]`` (an empty ``dst`` is not wanted: skipped)."""
    if dst.shape[0] == 0:
        return
    if dst.strides[2] == dst.itemsize:
        for k in range(nk):
            for t in range(nt):
                dst[n, j0 + k, t0 + t] = buf[t, k]
    else:
        for t in range(nt):
            for k in range(nk):
                dst[n, j0 + k, t0 + t] = buf[t, k]


def _cuba_tile(xb, ub, vb, sb, st, kuu, kvv, nk, nt, s32, level, th32, graded, traces):
    """Advance the ``nk`` neurons of ``st`` (rows u, v, keep) over the ``nt`` steps of ``xb``
    (``traces``: fill ``ub``/``vb`` too, else only the spikes ``sb``)."""
    zero, one = np.float32(0.0), np.float32(1.0)
    inv = one / s32
    for t in range(nt):
        for k in range(nk):
            uu = np.trunc(st[0, k] * kuu[k]) + np.trunc(np.float64(xb[t, k] * s32))
            vv = np.trunc(st[1, k] * kvv[k]) * st[2, k] + np.float64(np.float32(uu))
            st[0, k], st[1, k] = uu, vv
            st[2, k] = 1.0 if vv < level else 0.0
            v32 = np.float32(vv) * inv + zero
            if traces:
                ub[t, k] = np.float32(uu) * inv + zero
                vb[t, k] = v32
            f = one if v32 >= th32 else zero
            sb[t, k] = v32 * f if graded else f


def _cuba_kernel(x, ku, kv, u0, v0, s32, level, th32, graded, u_out, v_out, s_out, last):
    """CUBA-LIF of ``x`` ``[N, M, T]`` float32 (any strides), tile by tile.

    The integers of :func:`_cuba_loop` followed by the float32 round trip of the current into
    the voltage (what the unfused path computes, and equal to the current itself while it is
    below 2**24), then ``y = float32(y_int)·(1/S) + 0`` (exact: ``S`` is a power of two): the
    values the torch path returns.  Writes the current, pre-reset voltage and spike traces into
    the outputs that are not empty (spikes compare the float32 voltage with ``th32``, as
    :func:`slayerc.runtime.spikes.spike` does), and the float32 current and voltage of the last
    step into ``last`` ``[2, N, M]``.  ``ku``/``kv`` hold one decay factor per neuron of a sample.
    """
    xb = np.empty((_TILE_T, _TILE_J), dtype=np.float32)
    ub, vb, sb = np.empty_like(xb), np.empty_like(xb), np.empty_like(xb)
    st = np.empty((3, _TILE_J))
    traces = u_out.shape[0] > 0 or v_out.shape[0] > 0
    inv = np.float32(1.0) / s32
    for n in range(x.shape[0]):
        for j0 in range(0, x.shape[1], _TILE_J):
            nk = min(_TILE_J, x.shape[1] - j0)
            st[0, :nk], st[1, :nk], st[2, :nk] = u0[n, j0:j0 + nk], v0[n, j0:j0 + nk], 1.0
            kuu, kvv = ku[j0:j0 + nk], kv[j0:j0 + nk]
            for t0 in range(0, x.shape[2], _TILE_T):
                nt = min(_TILE_T, x.shape[2] - t0)
                _tile_in(x, n, j0, t0, nk, nt, xb)
                _cuba_tile(xb, ub, vb, sb, st, kuu, kvv, nk, nt, s32, level, th32, graded,
                           traces)
                _tile_out(ub, u_out, n, j0, t0, nk, nt)
                _tile_out(vb, v_out, n, j0, t0, nk, nt)
                _tile_out(sb, s_out, n, j0, t0, nk, nt)
            for k in range(nk):
                last[0, n, j0 + k] = np.float32(st[0, k]) * inv + np.float32(0.0)
                last[1, n, j0 + k] = np.float32(st[1, k]) * inv + np.float32(0.0)


if numba is not None:
    _jit = numba.njit(cache=True, nogil=True)
    _tile_in, _tile_out, _cuba_tile = _jit(_tile_in), _jit(_tile_out), _jit(_cuba_tile)
    _cuba_kernel = _jit(_cuba_kernel)


def _compiled_fits(x: torch.Tensor, scale: int) -> bool:
    """The compiled loop covers float32 CPU inputs with a power-of-two state scale (where the
    float32 round trip ``float32(y)/S·S`` is ``float32(y)``); other cases run the torch loop."""
    return (_COMPILED["on"] and x.dtype == torch.float32 and x.device.type == "cpu"
            and scale > 0 and not scale & (scale - 1) and x.shape[-1] > 0)


def _run_compiled(x, ku, kv, u0, v0, scale, level, outputs, th=None, graded=False,
                  time_last=False):
    """Run :func:`_cuba_kernel`; ``outputs`` names the traces wanted (``"u"``, ``"v"``, ``"s"``).

    Returns ``({name: trace}, last)``: traces ``[N, *S, T]`` as views of time-major storage
    (as the torch loop returns them; with ``time_last``, contiguous unless ``x`` is time
    major), ``last`` the float32 ``(u, v)`` of the last step, ``[2, N, *S]``.
    """
    n, steps, spatial = x.shape[0], x.shape[-1], tuple(x.shape[1:-1])
    m = math.prod(spatial)
    if is_time_major(x) or not time_last:
        traces = {k: huge_empty((steps, n) + spatial, x.dtype).movedim(0, -1) for k in outputs}
    else:
        traces = {k: huge_empty(tuple(x.shape), x.dtype) for k in outputs}
    empty = np.empty((0, 0, 0), dtype=np.float32)
    arrays = [traces[k].reshape(n, m, steps).numpy() if k in traces else empty for k in "uvs"]
    if any(not np.shares_memory(a, traces[k]) for a, k in zip(arrays, "uvs") if k in traces):
        raise AssertionError("a trace is not a view")

    def flat(p):
        return np.ascontiguousarray(p.expand(spatial).reshape(m).numpy())

    last = np.empty((2, n, m), dtype=np.float32)
    _cuba_kernel(x.detach().reshape(n, m, steps).numpy(), flat(ku), flat(kv),
                 u0.reshape(n, m).numpy(), v0.reshape(n, m).numpy(), np.float32(scale),
                 math.inf if level is None else float(level),
                 np.float32(math.inf if th is None else th), bool(graded), *arrays, last)
    return traces, torch.from_numpy(last).reshape((2, n) + spatial)


def _setup(x, du, dv, u_state, v_state, scale: int, threshold, exact: bool):
    """The integer decay keeps, the reset level (None: no reset) and the integer initial states
    of one CUBA-LIF run: what the compiled, the torch and the inference paths start from."""
    spatial = _spatial(x)
    ku = _decay_keep(du, spatial, "current_decay", exact)
    kv = _decay_keep(dv, spatial, "voltage_decay", exact)
    level = None
    if threshold is not None and threshold * scale > 0:
        level = reset_level(threshold * scale)
    return ku, kv, level, state_int(u_state, x, scale), state_int(v_state, x, scale)


def cuba_lif_spikes(x, current_decay, voltage_decay, current_state, voltage_state, scale,
                    threshold, graded=False, exact_decay=False):
    """Spikes of a CUBA-LIF neuron without traces or autograd (inference), or None when the
    compiled loop does not cover the case.

    Same values as :func:`cuba_lif` followed by :func:`slayerc.runtime.spikes.spike` with
    threshold ``threshold`` (which also sets the reset level), in one pass over ``x``.
    ``exact_decay`` uses the decays unrounded, as :func:`cuba_lif` does.
    Returns ``(s, last)`` with ``last`` the float32 ``(u, v)`` of the final step
    (``[2, N, *S]``, v before its reset).  ``s`` keeps the layout of ``x``: time major for a
    time-major ``x``, else contiguous ``[N, *S, T]`` (inference needs no transposing copies).
    """
    scale = int(scale)
    if not _compiled_fits(x, scale):
        return None
    ku, kv, level, u0, v0 = _setup(x, current_decay, voltage_decay, current_state,
                                   voltage_state, scale, threshold, exact_decay)
    traces, last = _run_compiled(x, ku, kv, u0, v0, scale, level, "s", threshold, graded,
                                 time_last=True)
    return traces["s"], last


_CHUNK = 32
"""Steps per chunk of the torch loop (its float64 scratch is ``[chunk, 3, N, *S]``)."""


def _torch_forward(x, ku, kv, u0, v0, scale, level, want_u):
    """The torch loop of :func:`cuba_lif`'s forward: ``(u or None, v)`` as time-major views.

    Runs the time axis in chunks of :data:`_CHUNK` steps through small reused float64 scratch
    buffers, writing each chunk's traces straight into the ``x``-dtype outputs, when the float
    round trip of the current is known to be exact up front (:func:`_cuba_bound_exact`);
    otherwise the whole traces go through :func:`_whole_forward`.
    """
    if not _cuba_bound_exact(x, ku, u0, scale):
        return _whole_forward(x, ku, kv, u0, v0, scale, level, want_u)
    steps, lead = x.shape[-1], tuple(x.shape[:-1])
    v_out = torch.empty((steps,) + lead, dtype=x.dtype, device=x.device)
    u_out = torch.empty_like(v_out) if want_u else None
    chunk = min(steps, _CHUNK)
    xin = _scratch("cuba_in", (chunk,) + lead, x.device)
    rows = _scratch("cuba", (chunk, 2) + lead, x.device)
    prev = _scratch("cuba_prev", (2,) + lead, x.device)
    prev.copy_(torch.stack([u0, v0]))
    keep, keep2 = torch.ones_like(u0), _keep_pair(ku, kv, x.dim())
    xt = x.detach().movedim(-1, 0)
    for t0 in range(0, steps, chunk):
        n = min(chunk, steps - t0)
        torch.mul(xt[t0:t0 + n], scale, out=xin[:n]).trunc_()
        uv = _cuba_loop(xin[:n], keep2, prev, level, rows[:n], keep)
        prev.copy_(uv[-1])
        v_out[t0:t0 + n].copy_(uv[:, 1]).div_(scale).add_(0.0)
        if u_out is not None:
            u_out[t0:t0 + n].copy_(uv[:, 0]).div_(scale).add_(0.0)
    return (None if u_out is None else u_out.movedim(0, -1)), v_out.movedim(0, -1)


def _keep_pair(ku, kv, rank: int) -> torch.Tensor:
    """``(ku, kv)`` stacked to broadcast against ``[2, N, *S]``."""
    common = torch.broadcast_shapes(ku.shape, kv.shape)
    keep2 = torch.stack([ku.expand(common), kv.expand(common)])
    return keep2.reshape((2,) + (1,) * (rank - 1 - len(common)) + common)


def _whole_forward(x, ku, kv, u0, v0, scale, level, want_u):
    """:func:`_torch_forward` over whole float64 traces, replaying the unfused float round trip
    of the current when it is not exact (float32 currents beyond 2**24, other scales)."""
    scratch = _scratch("cuba_in", x.shape[-1:] + x.shape[:-1], x.device)
    xin = _time_major_int_into(x, scale, scratch)
    uv = _cuba_loop(xin, _keep_pair(ku, kv, x.dim()), torch.stack([u0, v0]), level)
    u_tm, v_tm = uv[:, 0], uv[:, 1]
    if not _cuba_exact(x, ku, u0, u_tm, scale):  # replay the unfused float round trip
        u = from_time_major(u_tm, x.dtype, scale)
        v_tm = _li_loop(time_major_int(u, scale), kv, v0, level)
    v = _time_major_out(v_tm, x.dtype, scale)
    return (_time_major_out(u_tm, x.dtype, scale) if want_u else None), v


class _CubaLIF(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, du, dv, u_state, v_state, scale, threshold, want_u, exact=False):
        spatial = _spatial(x)
        ku, kv, level, u0, v0 = _setup(x, du, dv, u_state, v_state, scale, threshold, exact)
        want_u = want_u or ctx.needs_input_grad[1]
        if _compiled_fits(x, scale):
            # a time-last x (a conv synapse's output) gets time-last traces: its spikes feed the
            # next conv, and their gradients come back time-last, with no transposing copy either
            # way; learnable decays keep time-major traces for :func:`_decay_grad`
            time_last = not (is_time_major(x) or ctx.needs_input_grad[1] or ctx.needs_input_grad[2])
            traces, _ = _run_compiled(x, ku, kv, u0, v0, scale, level, "uv" if want_u else "v",
                                      time_last=time_last)
            u, v = traces.get("u"), traces["v"]
        else:
            u, v = _torch_forward(x, ku, kv, u0, v0, scale, level, want_u)
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
    """``reverse_scan(reverse_scan(g, av), au)`` for one-value decays, as one matrix product.

    A contiguous (time-last) ``g`` ``[M, T]`` gives a time-last result ``g·Pᵀ``, any other
    layout a time-major ``P·g``: the same sums (each entry one length-``T`` dot product; the
    two orientations are checked equal bit for bit), without transposing ``g``.
    """
    n = g.shape[-1]
    if n > 128:
        return _scan_time_major(_scan_time_major(g, av), au)
    pair = _toeplitz(au.reshape(()).to(_F64), n) @ _toeplitz(av.reshape(()).to(_F64), n)
    pair = pair.to(g.dtype)
    if g.is_contiguous() and not is_time_major(g):
        flat = g.reshape(-1, n)
        return torch.mm(flat, pair.t(), out=huge_empty(flat.shape, g.dtype)).reshape(g.shape)
    gt = g.movedim(-1, 0)
    if not gt.is_contiguous():
        gt = gt.contiguous()
    flat = torch.mm(pair, gt.reshape(n, -1), out=huge_empty((n, gt[0].numel()), g.dtype))
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
    (see :func:`is_time_major`), except that the compiled loop keeps a contiguous (time-last)
    ``x``'s layout when no decay needs a gradient (a conv synapse's output: its spikes feed the
    next conv without a transposing copy, and the backward runs in that layout too).  With
    ``current=False`` the current trace is not materialised (returned as None) unless
    ``current_decay`` needs a gradient.  ``exact_decay``: the decays unrounded (an IR node's
    ``exact_decays``).  Returns ``(u, v)``.
    """
    return _CubaLIF.apply(
        x, current_decay, voltage_decay, current_state, voltage_state, int(scale), threshold,
        bool(current), bool(exact_decay),
    )
