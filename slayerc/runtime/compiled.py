"""Compiled (numba) forward loops of the integer neuron recursions in :mod:`.dynamics`.

Each kernel runs one recursion of :mod:`slayerc.runtime.dynamics` over time-major, integer-valued
float64 storage ``[T, M]`` (``M`` neurons, flattened) with the per-neuron parameters broadcast to
``[M]``.  The operations and their order are the torch loops' (product, truncation toward zero,
sum; comparisons give 0/1 masks that multiply), so the results are the same bits.  The backward
passes are log-depth scans already (no per-step Python loop), so only the forwards are compiled.

numba is optional: without it, with ``SLAYERC_NO_NUMBA=1`` or after :func:`set_compiled(False)
<set_compiled>`, :func:`fits` is false and the torch loops run.
"""

from __future__ import annotations

import os

import numpy as np
import torch

try:  # pragma: no cover - exercised by whichever environment runs the tests
    import numba
except ImportError:  # pragma: no cover
    numba = None

_ON = {"on": numba is not None and os.environ.get("SLAYERC_NO_NUMBA", "") in ("", "0")}


def compiled() -> bool:
    """Whether the neuron recursions run compiled (numba present and not disabled)."""
    return _ON["on"]


def set_compiled(on: bool) -> bool:
    """Switch the compiled recursions on or off (stays off without numba); returns the old
    setting."""
    old = _ON["on"]
    _ON["on"] = bool(on) and numba is not None
    return old


def fits(x: torch.Tensor) -> bool:
    """Whether a float64 CPU time-major buffer ``x`` takes the compiled loop."""
    return _ON["on"] and x.device.type == "cpu" and x.dtype == torch.float64


def flat(p: torch.Tensor, like: torch.Tensor) -> np.ndarray:
    """``p`` broadcast to ``like`` (``[N, *S]``) as a contiguous float64 ``[M]`` array."""
    return p.to(torch.float64).expand(like.shape).contiguous().reshape(-1).numpy()


def rows(x: torch.Tensor) -> np.ndarray:
    """A time-major ``[T, N, *S]`` tensor as a ``[T, M]`` array (a view when contiguous)."""
    return x.contiguous().reshape(x.shape[0], -1).numpy()


# ----------------------------------------------------------------------------- kernels


def _li_kernel(xin, keep, y0, level, has_level, out):
    steps, m = xin.shape
    prev = y0.copy()
    for t in range(steps):
        for j in range(m):
            y = np.trunc(prev[j] * keep[j]) + xin[t, j]
            out[t, j] = y
            if has_level:
                prev[j] = y * (1.0 if y < level else 0.0)
            else:
                prev[j] = y


def _res_kernel(xr, xi, s, c, re0, im0, level, im_reset, has_level, out_re, out_im):
    steps, m = xr.shape
    re, im = re0.copy(), im0.copy()
    for t in range(steps):
        for j in range(m):
            rt = (np.trunc(re[j] * c[j]) - np.trunc(im[j] * s[j])) + xr[t, j]
            it = (np.trunc(re[j] * s[j]) + np.trunc(im[j] * c[j])) + xi[t, j]
            out_re[t, j] = rt
            out_im[t, j] = it
            if not has_level:
                re[j], im[j] = rt, it
            elif it < level:
                re[j], im[j] = rt * 1.0, it
            else:
                re[j], im[j] = rt * 0.0, im_reset


def _adapt_kernel(drive, gate, gated, im0, kth, kref, th, ref, th0, step, th_out, ref_out):
    steps, m = drive.shape
    th, ref, im_prev = th.copy(), ref.copy(), im0.copy()
    for t in range(steps):
        for j in range(m):
            r = np.trunc(ref[j] * kref[j])
            h = np.trunc((th[j] - th0) * kth[j]) + th0
            th_out[t, j] = h
            ref_out[t, j] = r
            f = 1.0 if drive[t, j] >= h + r else 0.0
            if gated:
                f = f * (1.0 if gate[t, j] >= 0 else 0.0) * (1.0 if im_prev[j] < 0 else 0.0)
                im_prev[j] = gate[t, j]
            th[j] = h + f * step
            ref[j] = r + 2.0 * (f * h)


def _adres_kernel(xr, xi, s, c, re0, im0, kth, kref, th, ref, th0, step, outs):
    steps, m = xr.shape
    re, im, th, ref = re0.copy(), im0.copy(), th.copy(), ref.copy()
    for t in range(steps):
        for j in range(m):
            r = np.trunc(ref[j] * kref[j])
            h = np.trunc((th[j] - th0) * kth[j]) + th0
            rt = np.trunc(re[j] * c[j] - im[j] * s[j]) + xr[t, j]
            it = np.trunc(re[j] * s[j] + im[j] * c[j]) + xi[t, j]
            outs[0, t, j], outs[1, t, j], outs[2, t, j], outs[3, t, j] = rt, it, h, r
            f = 1.0 if it >= h + r else 0.0
            th[j] = h + f * step
            ref[j] = r + 2.0 * (f * h)
            re[j], im[j] = rt, it


def _li_f32_kernel(x, keep, y0, level, has_level, scale, out):
    """``x`` float32 ``[M, T]`` time last: ``I(S·x)`` in float32, the recursion, ``y/S`` out.
    Blocks of 64 neurons step through time together (independent chains, one cache line each)."""
    m, steps = x.shape
    s32 = np.float32(scale)
    prev = y0.copy()
    for j0 in range(0, m, 64):
        j1 = min(j0 + 64, m)
        for t in range(steps):
            for j in range(j0, j1):
                y = np.trunc(prev[j] * keep[j]) + np.float64(np.trunc(x[j, t] * s32))
                out[j, t] = np.float32(y) / s32 + np.float32(0.0)
                if has_level:
                    prev[j] = y * (1.0 if y < level else 0.0)
                else:
                    prev[j] = y


def _delta_kernel(dx, theta, residual, error, has_error, out, deltas):
    steps, m = dx.shape
    zero = dx.dtype.type(0)
    one = dx.dtype.type(1)
    for t in range(steps):
        for j in range(m):
            d = dx[t, j] + residual[j]
            deltas[t, j] = d
            if has_error:
                e = error[j] + d
                o = d * (one if abs(e) >= theta[j] else zero)
                error[j] = e * (one if o == 0 else zero)
            else:
                o = d * (one if abs(d) >= theta[j] else zero)
            out[t, j] = o
            residual[j] = d - o


def _binary_kernel(x):
    for b in range(0, x.size, 4096):  # blocks without an early exit vectorise
        bad = 0
        for i in range(b, min(b + 4096, x.size)):
            v = x[i]
            bad += (v != 0.0) & (v != 1.0)
        if bad:
            return False
    return True


def _exponent_kernel(bits):
    top = 0
    subnormal = 0
    for i in range(bits.size):
        b = bits[i]
        e = (b >> 23) & 0xFF
        top = max(top, e)
        subnormal += (e == 0) & ((b & 0x7FFFFF) != 0)
    return top, subnormal


if numba is not None:
    _jit = numba.njit(cache=True, nogil=True)
    _binary_kernel = _jit(_binary_kernel)
    _exponent_kernel = _jit(_exponent_kernel)
    _delta_kernel = _jit(_delta_kernel)
    _li_kernel = _jit(_li_kernel)
    _li_f32_kernel = _jit(_li_f32_kernel)
    _res_kernel = _jit(_res_kernel)
    _adapt_kernel = _jit(_adapt_kernel)
    _adres_kernel = _jit(_adres_kernel)


# ----------------------------------------------------------------------------- wrappers


def float32_exponents(x: torch.Tensor) -> tuple[int, int] | None:
    """``(largest biased exponent, number of subnormal entries)`` of a contiguous float32 CPU
    ``x`` in one pass over its bits (255: an inf or NaN is there), or None when not compiled
    or another kind of tensor."""
    if not (_ON["on"] and x.device.type == "cpu" and x.dtype == torch.float32
            and x.is_contiguous()):
        return None
    top, subnormal = _exponent_kernel(x.detach().reshape(-1).view(torch.int32).numpy())
    return int(top), int(subnormal)


def is_binary(x: torch.Tensor) -> bool:
    """Whether every entry of ``x`` is 0 or 1 (spikes); one early-exit pass when compiled."""
    x = x.detach()
    if (_ON["on"] and x.device.type == "cpu" and x.is_contiguous()
            and x.dtype in (torch.float32, torch.float64)):
        return bool(_binary_kernel(x.reshape(-1).numpy()))
    return bool(((x == 0) | (x == 1)).all())


def li_loop(xin: torch.Tensor, keep: torch.Tensor, y0: torch.Tensor, level: float | None):
    """:func:`slayerc.runtime.dynamics._li_loop`, compiled."""
    out = torch.empty_like(xin)
    lv = 0.0 if level is None else float(level)
    _li_kernel(rows(xin), flat(keep, y0), flat(y0, y0), lv, level is not None, rows(out))
    return out


def fits_f32(x: torch.Tensor) -> bool:
    """Whether a float32 CPU time-last input ``x`` takes the fused compiled leaky integrator."""
    return _ON["on"] and x.device.type == "cpu" and x.dtype == torch.float32


def li_f32(x: torch.Tensor, keep: torch.Tensor, y0: torch.Tensor, level: float | None,
           scale: int) -> torch.Tensor:
    """:func:`slayerc.runtime.dynamics.leaky_integrator`'s forward on float32 ``[N, *S, T]``
    in one pass: input rounding, recursion and ``y/S`` fused (no time-major copies)."""
    out = torch.empty(x.shape, dtype=torch.float32)
    lv = 0.0 if level is None else float(level)
    xs = x.detach().contiguous().reshape(-1, x.shape[-1])
    _li_f32_kernel(xs.numpy(), flat(keep, y0), flat(y0, y0), lv, level is not None, int(scale),
                   out.reshape(-1, x.shape[-1]).numpy())
    return out


def res_loop(xr, xi, s, c, re0, im0, level, im_reset):
    """:func:`slayerc.runtime.dynamics._res_loop`, compiled."""
    out_re, out_im = torch.empty_like(xr), torch.empty_like(xi)
    has = level is not None
    _res_kernel(rows(xr), rows(xi), flat(s, re0), flat(c, re0), flat(re0, re0), flat(im0, re0),
                float(level) if has else 0.0, float(im_reset) if has else 0.0, has,
                rows(out_re), rows(out_im))
    return out_re, out_im


def adaptive_loop(ad, drive: torch.Tensor, im_gate, im_prev):
    """:func:`slayerc.runtime.dynamics._adaptive_loop`, compiled (``ad`` an ``_Adaptation``)."""
    th_out, ref_out = torch.empty_like(drive), torch.empty_like(drive)
    like = ad.ref
    gated = im_gate is not None
    gate = rows(im_gate) if gated else np.zeros((1, 1))
    im0 = flat(im_prev, like) if gated else np.zeros(1)
    _adapt_kernel(rows(drive), gate, gated, im0, flat(ad.kth, like), flat(ad.kref, like),
                  flat(ad.th, like), flat(ad.ref, like), ad.th0, ad.step, rows(th_out),
                  rows(ref_out))
    return th_out, ref_out


def adres_loop(ad, xr, xi, s, c, re, im):
    """:func:`slayerc.runtime.dynamics._adres_loop`, compiled."""
    outs = torch.empty((4,) + tuple(xr.shape), dtype=xr.dtype)
    _adres_kernel(rows(xr), rows(xi), flat(s, re), flat(c, re), flat(re, re), flat(im, re),
                  flat(ad.kth, re), flat(ad.kref, re), flat(ad.th, re), flat(ad.ref, re),
                  ad.th0, ad.step, outs.reshape(4, xr.shape[0], -1).numpy())
    return list(outs.unbind(0))


def delta_fits(dx: torch.Tensor, residual: torch.Tensor, error) -> bool:
    """Whether :func:`delta_loop` takes these (CPU, one float dtype throughout)."""
    same = residual.dtype == dx.dtype and (error is None or error.dtype == dx.dtype)
    return _ON["on"] and dx.device.type == "cpu" and dx.is_floating_point() and same


def delta_loop(dx, theta, residual, error):
    """:func:`slayerc.runtime.axon._delta_loop`, compiled (same dtype, same bits)."""
    like = residual
    out, deltas = torch.empty_like(dx), torch.empty_like(dx)
    res = residual.to(dx.dtype).contiguous().clone()
    err = None if error is None else error.expand(like.shape).contiguous().clone()
    spare = np.zeros(1, dtype=torch.empty(0, dtype=dx.dtype).numpy().dtype)
    np_err = err.reshape(-1).numpy() if err is not None else spare
    th = theta.to(dx.dtype).expand(like.shape).contiguous().reshape(-1).numpy()
    _delta_kernel(rows(dx), th, res.reshape(-1).numpy(), np_err, err is not None, rows(out),
                  rows(deltas))
    return out, deltas, res, err
