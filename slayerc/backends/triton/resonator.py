"""Fused resonator-family operations (rf, rf_iz, adrf, adrf_iz): one autograd Function over the
``rf_fwd``/``rf_bwd`` Triton kernels, shared by the four families (spec §4.3–4.6).

Each op has the signature of its family's ``dynamics`` in :mod:`slayerc.runtime.neurons` (the
torch oracle) and falls back to it where :func:`~slayerc.backends.triton.ops.use_triton` says the
kernels cannot run; the host-side preparation (:class:`~slayerc.backends.triton.ops._Geom`) and
the dispatcher are shared with the LIF and sigma-delta ops in :mod:`.ops`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from slayerc.backends.triton.ops import (
    _adapt_args,
    _delay_grad,
    _delay_learnable,
    _Geom,
    _kernels,
    _pow2,
    _warn_fallback,
    use_triton,
)
from slayerc.runtime.dynamics import P_SCALE, DynamicsShapeError, reset_level
from slayerc.runtime.neurons import adrf as _adrf
from slayerc.runtime.neurons import adrf_iz as _adrf_iz
from slayerc.runtime.neurons import rf as _rf
from slayerc.runtime.neurons import rf_iz as _rf_iz
from slayerc.runtime.neurons.common import NO_OUTPUT, Output

__all__ = ["adrf", "adrf_iz", "rf", "rf_iz"]


@dataclass
class _RfCfg:
    kind: str
    threshold: float
    tau: float
    sigma: float
    graded: bool
    scale: int
    re_state: torch.Tensor | None
    im_state: torch.Tensor | None
    adapt: tuple | None
    out: Output


_RF_KINDS = {
    # kind: (PHASE, RESET, ONE_TRUNC)
    "rf": (True, False, False),
    "rf_iz": (False, True, False),
    "adrf": (True, False, False),
    "adrf_iz": (False, False, True),
}


class _RfFn(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x_re, x_im, sin_decay, cos_decay, delay, cfg: _RfCfg):
        if x_im.shape != x_re.shape:
            raise DynamicsShapeError(
                f"real input {list(x_re.shape)} and imaginary input {list(x_im.shape)} differ"
            )
        phase, reset, one_trunc = _RF_KINDS[cfg.kind]
        g = _Geom(x_re)
        out = g.trace()
        learn = ctx.needs_input_grad[2] or ctx.needs_input_grad[3]
        save_rho = any(ctx.needs_input_grad[:5])
        re_tr, im_tr = (g.trace(), g.trace()) if learn else (g.dummy(), g.dummy())
        rho_re = g.trace() if save_rho and phase else g.dummy()
        rho_im = g.trace() if save_rho else g.dummy()
        last = torch.empty((5, g.total), dtype=g.dtype, device=g.device)
        sn_i, div_s = g.decay_int(sin_decay, "sin_decay")
        cs_i, div_c = g.decay_int(cos_decay, "cos_decay")
        re0 = g.state_int(cfg.re_state, cfg.scale)
        im0 = g.state_int(cfg.im_state, cfg.scale)
        shifts, shift = g.shifts(cfg.out)
        prev = g.state_float(cfg.out.shift_state if cfg.out.delay_shift else None)
        th = torch.tensor([cfg.threshold], dtype=g.dtype, device=g.device)
        level, im_reset = _iz_reset(cfg.threshold * cfg.scale) if reset else (0, 0)
        reset = reset and level is not None
        grid, block = g.grid()
        _kernels().rf_fwd[grid](
            g.to_kernel(x_re), g.to_kernel(x_im), out, re_tr, im_tr, rho_re, rho_im, last,
            sn_i, cs_i, div_s, div_c, re0, im0, g.state_float(cfg.im_state),
            *_adapt_args(g, cfg.adapt, cfg.scale), shifts, prev, th,
            int(level or 0), int(im_reset), float(cfg.tau), float(cfg.sigma),
            g.total, g.m, g.t, g.sn, g.st,
            S=cfg.scale, POW2=_pow2(cfg.scale), PHASE=phase, RESET=reset,
            ADAPT=cfg.adapt is not None, ONE_TRUNC=one_trunc, GRADED=cfg.graded, SHIFT=shift,
            SAVE_STATE=learn, SAVE_RHO=save_rho, BLOCK=block,
        )
        y = g.from_kernel(out)
        inits = (
            g.init_trace(re0, cfg.scale, cfg.re_state is not None),
            g.init_trace(im0, cfg.scale, cfg.im_state is not None),
        )
        keep_y = _delay_learnable(cfg.out, ctx.needs_input_grad[4])
        ctx.save_for_backward(y if keep_y else None, rho_re, rho_im, re_tr, im_tr, *inits,
                              sin_decay, cos_decay, shifts)
        ctx.cfg, ctx.geom, ctx.shift, ctx.phase = cfg, g, shift, phase
        ctx.mark_non_differentiable(last)
        return y, last

    @staticmethod
    def backward(ctx, g_out, _g_last):
        y, rho_re, rho_im, re_tr, im_tr, re_init, im_init, sin_decay, cos_decay, shifts = (
            ctx.saved_tensors
        )
        g, cfg = ctx.geom, ctx.cfg
        learn = ctx.needs_input_grad[2] or ctx.needs_input_grad[3]
        dgrad = _delay_learnable(cfg.out, ctx.needs_input_grad[4])
        gk = g.to_kernel(g_out)
        gxr, gxi = g.trace(gk.dtype), g.trace(gk.dtype)
        acc = torch.zeros((3, g.total), dtype=gk.dtype, device=g.device)
        ks, div_s = g.flat(torch.round(sin_decay.detach().to(gk.dtype)) / P_SCALE, "sin_decay")
        kc, div_c = g.flat(torch.round(cos_decay.detach().to(gk.dtype)) / P_SCALE, "cos_decay")
        grid, block = g.grid()
        _kernels().rf_bwd[grid](
            gk, g.to_kernel(y) if dgrad else gk, gxr, gxi, acc, rho_re, rho_im, re_tr, im_tr,
            re_init, im_init, ks, kc, div_s, div_c, shifts, g.total, g.m, g.t, g.sn, g.st,
            PHASE=ctx.phase, SHIFT=ctx.shift, LEARN=learn, DGRAD=dgrad, BLOCK=block,
        )
        gs = g.reduce(acc[0], sin_decay, 1 / P_SCALE) if learn else None
        gc = g.reduce(acc[1], cos_decay, 1 / P_SCALE) if learn else None
        return (g.from_kernel(gxr), g.from_kernel(gxi), gs, gc,
                _delay_grad(g, acc[2], cfg.out, dgrad), None)


def _iz_reset(th_scaled: float):
    """rf_iz reset: level ``k`` (``y ≥ k`` resets) and the reset value ``I(f32(θS − 1))``."""
    if th_scaled < 0:
        return None, 0
    level = reset_level(th_scaled)
    if not math.isfinite(level):
        return None, 0
    return level, math.trunc(float(np.float32(th_scaled - 1)))


def _rf_states(kind: str, last: torch.Tensor, shape, threshold, step, scale) -> dict:
    re, im, s, th, r = (t.reshape(shape) for t in last)
    fired = (s > 0).to(s.dtype)
    states = {"real_state": re, "imag_state": im, "shift_state": s}
    if kind == "rf_iz":
        states["real_state"] = re * (1 - fired)
        states["imag_state"] = fired * (threshold - 1 / scale) + (1 - fired) * im
    if kind in ("adrf", "adrf_iz"):
        states["refractory_state"] = r + 2 * fired * th
        states["threshold_state"] = th + fired * step
    return states


def _rf_call(kind, x, sin_decay, cos_decay, threshold, tau, sigma, graded, scale, states,
             adapt, output):
    re_state, im_state = states
    cfg = _RfCfg(kind, threshold, tau, sigma, graded, int(scale), re_state, im_state, adapt,
                 output)
    y, last = _RfFn.apply(x[0], x[1], sin_decay, cos_decay, output.delay, cfg)
    step = adapt[2] if adapt is not None else None
    return y, _rf_states(kind, last, x[0].shape[:-1], threshold, step, scale)


def _dispatch(kind, home, x, args, states: dict, scale, graded, output):
    """Run ``kind`` fused, or ``home.dynamics`` (its family's torch oracle) where the kernels
    cannot run.  ``args``: the positional parameters of that ``dynamics`` after ``x``."""
    if not use_triton(x[0]):
        _warn_fallback(x[0])
        return home.dynamics(x, *args, scale=scale, graded=graded, **states, output=output)
    adapt = None
    if len(args) == 8:  # adrf / adrf_iz: the threshold and refractory adaptation first
        sin_decay, cos_decay, th_decay, ref_decay, threshold, step, tau_rho, scale_rho = args
        adapt = (th_decay, ref_decay, step, threshold, states["threshold_state"],
                 states["refractory_state"])
    else:
        sin_decay, cos_decay, threshold, tau_rho, scale_rho = args
    return _rf_call(kind, x, sin_decay, cos_decay, threshold, tau_rho * home.TAU,
                    scale_rho * home.SIGMA, graded, scale,
                    (states["real_state"], states["imag_state"]), adapt, output)


def rf(
    x, sin_decay, cos_decay, threshold, tau_rho, scale_rho, *, scale=1 << 12, graded=False,
    real_state=None, imag_state=None, output=NO_OUTPUT,
):
    """Resonate-and-fire neuron with phase spike, fused (spec §4.3); ``x = (x_re, x_im)``."""
    return _dispatch("rf", _rf, x, (sin_decay, cos_decay, threshold, tau_rho, scale_rho),
                     {"real_state": real_state, "imag_state": imag_state}, scale, graded, output)


def rf_iz(
    x, sin_decay, cos_decay, threshold, tau_rho, scale_rho, *, scale=1 << 12, graded=False,
    real_state=None, imag_state=None, output=NO_OUTPUT,
):
    """Resonate-and-fire Izhikevich neuron, fused (spec §4.4); ``x = (x_re, x_im)``."""
    return _dispatch("rf_iz", _rf_iz, x, (sin_decay, cos_decay, threshold, tau_rho, scale_rho),
                     {"real_state": real_state, "imag_state": imag_state}, scale, graded, output)


def adrf(
    x, sin_decay, cos_decay, threshold_decay, refractory_decay, threshold, threshold_step,
    tau_rho, scale_rho, *, scale=1 << 12, graded=False, real_state=None, imag_state=None,
    threshold_state=None, refractory_state=None, output=NO_OUTPUT,
):
    """Adaptive RF neuron with phase spike, fused (spec §4.5); ``x = (x_re, x_im)``."""
    args = (sin_decay, cos_decay, threshold_decay, refractory_decay, threshold, threshold_step,
            tau_rho, scale_rho)
    states = {"real_state": real_state, "imag_state": imag_state,
              "threshold_state": threshold_state, "refractory_state": refractory_state}
    return _dispatch("adrf", _adrf, x, args, states, scale, graded, output)


def adrf_iz(
    x, sin_decay, cos_decay, threshold_decay, refractory_decay, threshold, threshold_step,
    tau_rho, scale_rho, *, scale=1 << 12, graded=False, real_state=None, imag_state=None,
    threshold_state=None, refractory_state=None, output=NO_OUTPUT,
):
    """Adaptive RF Izhikevich neuron, fused (spec §4.6); ``x = (x_re, x_im)``."""
    args = (sin_decay, cos_decay, threshold_decay, refractory_decay, threshold, threshold_step,
            tau_rho, scale_rho)
    states = {"real_state": real_state, "imag_state": imag_state,
              "threshold_state": threshold_state, "refractory_state": refractory_state}
    return _dispatch("adrf_iz", _adrf_iz, x, args, states, scale, graded, output)
