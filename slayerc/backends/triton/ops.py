"""Fused neuron operations: autograd Functions over the Triton kernels, and the dispatcher.

Each family has one functional op (:func:`cuba`, :func:`alif`, :func:`sigma_delta` here;
``rf``, ``rf_iz``, ``adrf``, ``adrf_iz`` in :mod:`.resonator`) that runs dynamics, spike, the
block's one-step ``delay_shift`` and the integer axonal delay in one kernel launch per direction.
Each
has the signature of its family's ``dynamics`` in :mod:`slayerc.runtime.neurons` (the torch
oracle), and registers there as the family's ``"triton"`` kernel when the package is imported.
The dispatcher runs the kernel when the input is on CUDA, or on CPU when ``TRITON_INTERPRET=1``;
otherwise it runs the family's torch dynamics and warns once per process.

Every op returns ``(spikes, states)``; ``states`` is a dict holding what a persistent neuron
stores after the call (slayer units, ``[N, *S]``), plus ``shift_state`` (the last pre-shift
frame, which a persistent block keeps for its ``delay_shift``).
"""

from __future__ import annotations

import importlib
import math
import os
import warnings
from dataclasses import dataclass

import torch

from slayerc.runtime.dynamics import (
    P_SCALE,
    DynamicsShapeError,
    param_view,
    reduce_to,
    reset_level,
)
from slayerc.runtime.neurons import alif as _alif
from slayerc.runtime.neurons import cuba as _cuba
from slayerc.runtime.neurons import sigma_delta as _sd
from slayerc.runtime.neurons.common import NO_OUTPUT, Output
from slayerc.runtime.neurons.delta import held_threshold

__all__ = ["Output", "alif", "cuba", "sigma_delta", "triton_available", "use_triton"]

LAYOUT = os.environ.get("SLAYERC_TRITON_LAYOUT", "time_last")
"""``time_last`` (kernels read ``[N, *S, T]`` in place) or ``time_major`` (transpose once)."""

BLOCK_GPU = 128
"""Neurons per program on a GPU (one neuron per thread, 4 warps)."""

_state = {"warned": False, "kernels": None, "triton": None}


# ------------------------------------------------------------------------------- dispatch


def triton_available() -> bool:
    """Whether ``triton`` imports in this process."""
    if _state["triton"] is None:
        try:
            importlib.import_module("triton")
            _state["triton"] = True
        except ImportError:
            _state["triton"] = False
    return bool(_state["triton"])


def _interpret() -> bool:
    return os.environ.get("TRITON_INTERPRET", "0") == "1"


def use_triton(x: torch.Tensor) -> bool:
    """True when the fused kernels can run on ``x``: CUDA, or CPU with ``TRITON_INTERPRET=1``."""
    return triton_available() and (x.is_cuda or _interpret())


def _kernels():
    """The kernel module, (re)imported so that the interpreter setting in force applies.

    ``@triton.jit`` reads ``TRITON_INTERPRET`` when the module is imported, so a process that
    sets it later gets the module reloaded once.
    """
    mod = _state["kernels"]
    if mod is None:
        mod = importlib.import_module("slayerc.backends.triton.kernels")
    interpreted = type(mod.lif_fwd).__name__ == "InterpretedFunction"
    if interpreted != _interpret():
        mod = importlib.reload(mod)
    _state["kernels"] = mod
    return mod


def _warn_fallback(x: torch.Tensor) -> None:
    if _state["warned"]:
        return
    _state["warned"] = True
    why = "triton is not installed" if not triton_available() else f"the input is on {x.device}"
    warnings.warn(
        f"slayerc.backends.triton: {why}; the fused Triton neuron kernels need a CUDA tensor "
        "(or TRITON_INTERPRET=1 on CPU), so the torch reference dynamics run instead "
        "(same results, slower). This warning is shown once per process.",
        RuntimeWarning,
        stacklevel=3,
    )


# ------------------------------------------------------------------------- host-side prep


class _Geom:
    """Sizes and the kernel layout of an ``[N, *S, T]`` input."""

    def __init__(self, x: torch.Tensor):
        self.shape = x.shape
        self.spatial = tuple(x.shape[1:-1])
        if x.dim() < 3:
            raise DynamicsShapeError(
                f"expected an input of at least 3 dimensions [batch, *neurons, time], "
                f"got shape {list(x.shape)}"
            )
        self.n = x.shape[0]
        self.m = math.prod(self.spatial)
        self.total = self.n * self.m
        self.t = x.shape[-1]
        self.major = LAYOUT == "time_major"
        self.sn, self.st = (1, self.total) if self.major else (self.t, 1)
        self.device = x.device
        self.dtype = x.dtype

    def to_kernel(self, x: torch.Tensor) -> torch.Tensor:
        """The tensor in kernel layout, contiguous."""
        if self.major:
            return x.movedim(-1, 0).contiguous()
        return x.contiguous()

    def from_kernel(self, y: torch.Tensor) -> torch.Tensor:
        """Back to ``[N, *S, T]`` contiguous."""
        return y.movedim(0, -1).contiguous() if self.major else y

    def trace(self, dtype=None) -> torch.Tensor:
        """An uninitialised trace in kernel layout."""
        shape = (self.t,) + tuple(self.shape[:-1]) if self.major else tuple(self.shape)
        return torch.empty(shape, dtype=dtype or self.dtype, device=self.device)

    def dummy(self, dtype=None) -> torch.Tensor:
        """A one-element placeholder for a pointer the kernel does not read."""
        return torch.zeros(1, dtype=dtype or self.dtype, device=self.device)

    def grid(self):
        """Launch grid and ``BLOCK`` (larger blocks in the interpreter: fewer Python loops)."""
        block = BLOCK_GPU
        if _interpret():
            block = min(4096, max(16, 1 << (self.total - 1).bit_length()))
        return ((self.total + block - 1) // block,), block

    def flat(self, p: torch.Tensor, what: str, dtype=None) -> tuple[torch.Tensor, int]:
        """A parameter as a flat tensor and its ``div`` (``M`` shared, ``M/C`` per channel, 1)."""
        view = param_view(p.detach(), self.spatial, what)
        dtype = dtype or view.dtype
        if view.numel() == 1:
            return view.reshape(1).to(device=self.device, dtype=dtype).contiguous(), self.m
        if view.numel() == self.spatial[0] and view.shape[0] == self.spatial[0]:
            return view.reshape(-1).to(device=self.device, dtype=dtype).contiguous(), (
                self.m // self.spatial[0]
            )
        full = view.expand(self.spatial).reshape(-1)
        return full.to(device=self.device, dtype=dtype).contiguous(), 1

    def decay_int(self, p: torch.Tensor, what: str) -> tuple[torch.Tensor, int]:
        """``round(D)`` as int64 (the kernels' integer decay)."""
        return self.flat(torch.round(p.detach().to(torch.float64)), what, torch.int64)

    def keep(self, p: torch.Tensor, what: str, dtype) -> tuple[torch.Tensor, int]:
        """``1 − round(D)/4096`` in the gradient dtype (the reference's backward factor)."""
        d = torch.round(p.detach().to(dtype))
        return self.flat(1 - d / P_SCALE, what, dtype)

    def state_int(self, state, scale: int, fill: float = 0.0) -> torch.Tensor:
        """``I(S·state)`` as flat int64 ``[N·M]`` (``fill`` when None)."""
        if state is None:
            return torch.full((self.total,), fill, dtype=torch.int64, device=self.device)
        s = torch.mul(state.detach(), scale).trunc_().to(torch.float64)
        s = s.expand(tuple(self.shape[:-1])).reshape(-1)
        return s.to(device=self.device, dtype=torch.int64).contiguous()

    def state_float(self, state) -> torch.Tensor:
        """A float state broadcast to flat ``[N·M]`` in the input dtype (zeros when None)."""
        if state is None:
            return torch.zeros(self.total, dtype=self.dtype, device=self.device)
        s = state.detach().to(self.dtype).expand(tuple(self.shape[:-1]))
        return s.reshape(-1).to(self.device).contiguous()

    def init_trace(self, y0: torch.Tensor, scale: int, given: bool) -> torch.Tensor:
        """``y[−1]`` for the decay gradients: ``y0/S`` (float64, then the dtype) or 0."""
        if not given:
            return torch.zeros(self.total, dtype=self.dtype, device=self.device)
        return (y0.to(torch.float64) / scale).to(self.dtype)

    def shifts(self, out: Output) -> tuple[torch.Tensor, bool]:
        """Per-neuron output shift ``k = delay_shift + trunc(d/Ts)`` (int64 ``[M]``)."""
        k = torch.full((self.m,), int(out.delay_shift), dtype=torch.int64, device=self.device)
        d = out.delay
        if d is None:
            return k, bool(out.delay_shift)
        if torch.is_tensor(d) and d.numel() > 1:
            steps = torch.trunc(d.detach().to(torch.float64) / out.sampling_time).to(torch.int64)
            if steps.numel() == self.spatial[0] and steps.numel() != self.m:
                steps = param_view(steps, self.spatial).expand(self.spatial)
            elif steps.numel() != self.m:
                raise DynamicsShapeError(
                    f"delay of shape {list(d.shape)} fits neither the {self.spatial[0]} "
                    f"channels nor the {self.m} neurons of an input of shape {list(self.shape)}"
                )
            return k + steps.reshape(-1).to(self.device), True
        value = float(d.item()) if torch.is_tensor(d) else float(d)
        return k + int(value / out.sampling_time), True

    def reduce(self, acc: torch.Tensor, p: torch.Tensor, factor: float) -> torch.Tensor:
        """Per-neuron partial sums → the parameter's gradient (times ``factor``)."""
        full = (acc * factor).reshape((self.n,) + self.spatial)
        view = param_view(p.detach(), self.spatial)
        return reduce_to(full, view.shape, p.shape).to(p.dtype)


def _pow2(scale: int) -> bool:
    return scale > 0 and (scale & (scale - 1)) == 0


def _delay_learnable(out: Output, ctx_flag: bool) -> bool:
    return bool(ctx_flag) and torch.is_tensor(out.delay)


def _delay_grad(geom: _Geom, acc: torch.Tensor, out: Output, flag: bool):
    if not flag:
        return None
    return geom.reduce(acc, out.delay, out.grad_scale)


# -------------------------------------------------------------------------- LIF family


@dataclass
class _LifCfg:
    threshold: float
    level: float | None
    tau: float
    sigma: float
    graded: bool
    scale: int
    states: tuple
    adapt: tuple | None
    out: Output


class _LifFn(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, du, dv, delay, cfg: _LifCfg):
        k = _kernels()
        g = _Geom(x)
        xk = g.to_kernel(x)
        out = g.trace()
        learn_u, learn_v = ctx.needs_input_grad[1], ctx.needs_input_grad[2]
        # CUBA with a saved voltage recomputes ρ from it in the backward pass (one trace less)
        rho_from_v = learn_v and cfg.adapt is None
        save_rho = any(ctx.needs_input_grad[:4]) and not rho_from_v
        u_tr = g.trace() if learn_u else g.dummy()
        v_tr = g.trace() if learn_v else g.dummy()
        rho = g.trace() if save_rho else g.dummy()
        last = torch.empty((5, g.total), dtype=g.dtype, device=g.device)
        du_i, div_u = g.decay_int(du, "current_decay")
        dv_i, div_v = g.decay_int(dv, "voltage_decay")
        u0 = g.state_int(cfg.states[0], cfg.scale)
        v0 = g.state_int(cfg.states[1], cfg.scale)
        adapt = _adapt_args(g, cfg.adapt, cfg.scale)
        shifts, shift = g.shifts(cfg.out)
        prev = g.state_float(cfg.out.shift_state if cfg.out.delay_shift else None)
        th = torch.tensor([cfg.threshold], dtype=g.dtype, device=g.device)
        reset = cfg.level is not None and math.isfinite(cfg.level)
        c_rho = cfg.sigma if cfg.graded else cfg.sigma / 2 / cfg.tau
        grid, block = g.grid()
        k.lif_fwd[grid](
            xk, out, u_tr, v_tr, rho, last, du_i, dv_i, div_u, div_v, u0, v0, *adapt,
            shifts, prev, th, int(cfg.level) if reset else 0, float(cfg.tau), float(c_rho),
            g.total, g.m, g.t, g.sn, g.st,
            S=cfg.scale, POW2=_pow2(cfg.scale), ADAPT=cfg.adapt is not None, RESET=reset,
            GRADED=cfg.graded, SHIFT=shift, SAVE_U=learn_u, SAVE_V=learn_v, SAVE_RHO=save_rho,
            BLOCK=block,
        )
        y = g.from_kernel(out)
        inits = (
            g.init_trace(u0, cfg.scale, cfg.states[0] is not None),
            g.init_trace(v0, cfg.scale, cfg.states[1] is not None),
        )
        dgrad = _delay_learnable(cfg.out, ctx.needs_input_grad[3])
        ctx.save_for_backward(y if dgrad else None, rho, u_tr, v_tr, *inits, du, dv, shifts, th)
        ctx.cfg, ctx.geom, ctx.shift, ctx.rho = cfg, g, shift, (rho_from_v, float(c_rho))
        ctx.mark_non_differentiable(last)
        return y, last

    @staticmethod
    def backward(ctx, g_out, _g_last):
        y, rho, u_tr, v_tr, u_init, v_init, du, dv, shifts, th = ctx.saved_tensors
        g, cfg = ctx.geom, ctx.cfg
        learn_u, learn_v = ctx.needs_input_grad[1], ctx.needs_input_grad[2]
        dgrad = _delay_learnable(cfg.out, ctx.needs_input_grad[3])
        gk = g.to_kernel(g_out)
        gx = g.trace(gk.dtype)
        acc = torch.zeros((3, g.total), dtype=gk.dtype, device=g.device)
        ku, div_u = g.keep(du, "current_decay", gk.dtype)
        kv, div_v = g.keep(dv, "voltage_decay", gk.dtype)
        grid, block = g.grid()
        _kernels().lif_bwd[grid](
            gk, g.to_kernel(y) if dgrad else gk, gx, acc, rho, u_tr, v_tr, u_init, v_init,
            ku, kv, div_u, div_v, shifts, th, float(cfg.tau), ctx.rho[1],
            g.total, g.m, g.t, g.sn, g.st,
            SHIFT=ctx.shift, LEARN_U=learn_u, LEARN_V=learn_v, DGRAD=dgrad,
            RHO_FROM_V=ctx.rho[0], GRADED=cfg.graded, BLOCK=block,
        )
        gdu = g.reduce(acc[0], du, -1 / P_SCALE) if learn_u else None
        gdv = g.reduce(acc[1], dv, -1 / P_SCALE) if learn_v else None
        return g.from_kernel(gx), gdu, gdv, _delay_grad(g, acc[2], cfg.out, dgrad), None


def _adapt_args(g: _Geom, adapt, scale: int) -> tuple:
    """Kernel arguments of the adaptive threshold (placeholders when there is none)."""
    if adapt is None:
        z = g.dummy(torch.int64)
        return (z, z, g.m, g.m, z, z, 0, 0)
    th_decay, ref_decay, th_step, th0, th_state, ref_state = adapt
    dth, div_th = g.decay_int(th_decay, "threshold_decay")
    dref, div_ref = g.decay_int(ref_decay, "refractory_decay")
    base = int(th0 * scale)
    return (
        dth, dref, div_th, div_ref, g.state_int(th_state, scale, float(base)),
        g.state_int(ref_state, scale), base, int(th_step * scale),
    )


def _lif_states(last: torch.Tensor, shape, adapt_step: float | None) -> dict:
    u, v, s, th, r = (t.reshape(shape) for t in last)
    fired = (s > 0).to(s.dtype)
    if adapt_step is None:
        return {"current_state": u, "voltage_state": v * (1 - fired), "shift_state": s}
    return {
        "current_state": u, "voltage_state": v, "threshold_state": th + fired * adapt_step,
        "refractory_state": r + 2 * fired * th, "shift_state": s,
    }


def cuba(
    x, current_decay, voltage_decay, threshold, tau_rho, scale_rho, *, scale=1 << 12,
    graded=False, current_state=None, voltage_state=None, output=NO_OUTPUT,
):
    """CUBA-LIF neuron, fused (spec §4.1); signature of ``neurons.cuba.dynamics``."""
    if not use_triton(x):
        _warn_fallback(x)
        return _cuba.dynamics(
            x, current_decay, voltage_decay, threshold, tau_rho, scale_rho, scale=scale,
            graded=graded, current_state=current_state, voltage_state=voltage_state,
            output=output,
        )
    th = threshold + 0.01 / scale
    level = reset_level(th * scale) if th * scale > 0 else None
    cfg = _LifCfg(
        th, level, tau_rho * _cuba.TAU, scale_rho * _cuba.SIGMA, graded, int(scale),
        (current_state, voltage_state), None, output,
    )
    y, last = _LifFn.apply(x, current_decay, voltage_decay, output.delay, cfg)
    return y, _lif_states(last, x.shape[:-1], None)


def alif(
    x, current_decay, voltage_decay, threshold_decay, refractory_decay, threshold,
    threshold_step, tau_rho, scale_rho, *, scale=1 << 12, graded=False, current_state=None,
    voltage_state=None, threshold_state=None, refractory_state=None, output=NO_OUTPUT,
):
    """Adaptive LIF neuron, fused (spec §4.2); signature of ``neurons.alif.dynamics``."""
    if not use_triton(x):
        _warn_fallback(x)
        return _alif.dynamics(
            x, current_decay, voltage_decay, threshold_decay, refractory_decay, threshold,
            threshold_step, tau_rho, scale_rho, scale=scale, graded=graded,
            current_state=current_state, voltage_state=voltage_state,
            threshold_state=threshold_state, refractory_state=refractory_state, output=output,
        )
    adapt = (threshold_decay, refractory_decay, threshold_step, threshold, threshold_state,
             refractory_state)
    cfg = _LifCfg(
        threshold, None, tau_rho * _alif.TAU, scale_rho * _alif.SIGMA, graded, int(scale),
        (current_state, voltage_state), adapt, output,
    )
    y, last = _LifFn.apply(x, current_decay, voltage_decay, output.delay, cfg)
    return y, _lif_states(last, x.shape[:-1], threshold_step)


# ---------------------------------------------------------------------------- sigma-delta


@dataclass
class _SdCfg:
    scale: int
    tau_grad: float
    scale_grad: float
    cum_error: bool
    states: tuple
    out: Output


class _SdFn(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, threshold, bias, delay, cfg: _SdCfg):
        g = _Geom(x)
        out = g.trace()
        learn_th = ctx.needs_input_grad[1]
        save_mask = any(ctx.needs_input_grad[:4])
        d_tr = g.trace() if learn_th else g.dummy()
        mask_tr = g.trace(torch.int8) if save_mask else g.dummy(torch.int8)
        last = torch.empty((5, g.total), dtype=g.dtype, device=g.device)
        th, div_th = g.flat(threshold, "threshold", g.dtype)
        b, div_b = g.flat(bias, "bias", g.dtype) if bias is not None else (g.dummy(), g.m)
        sig0, pre, res, err = (g.state_float(s) for s in cfg.states)
        shifts, shift = g.shifts(cfg.out)
        prev = g.state_float(cfg.out.shift_state if cfg.out.delay_shift else None)
        step = torch.tensor([1 / cfg.scale], dtype=g.dtype, device=g.device)
        grid, block = g.grid()
        _kernels().sd_fwd[grid](
            g.to_kernel(x), out, d_tr, mask_tr, last, sig0, b, div_b, th, div_th, pre, res, err,
            shifts, prev, step, float(cfg.scale), g.total, g.m, g.t, g.sn, g.st,
            HAS_BIAS=bias is not None, CUM=cfg.cum_error, QPOW2=_pow2(cfg.scale), SHIFT=shift,
            SAVE_D=learn_th, SAVE_MASK=save_mask, BLOCK=block,
        )
        y = g.from_kernel(out)
        keep_y = _delay_learnable(cfg.out, ctx.needs_input_grad[3])
        ctx.save_for_backward(y if keep_y else None, d_tr, mask_tr, threshold, bias, shifts)
        ctx.cfg, ctx.geom, ctx.shift = cfg, g, shift
        ctx.mark_non_differentiable(last)
        return y, last

    @staticmethod
    def backward(ctx, g_out, _g_last):
        y, d_tr, mask_tr, threshold, bias, shifts = ctx.saved_tensors
        g, cfg = ctx.geom, ctx.cfg
        learn_th = ctx.needs_input_grad[1]
        dgrad = _delay_learnable(cfg.out, ctx.needs_input_grad[3])
        gk = g.to_kernel(g_out)
        gx = g.trace(gk.dtype)
        acc = torch.zeros((3, g.total), dtype=gk.dtype, device=g.device)
        th, div_th = g.flat(threshold, "threshold", gk.dtype)
        grid, block = g.grid()
        _kernels().sd_bwd[grid](
            gk, g.to_kernel(y) if dgrad else gk, gx, acc, d_tr, mask_tr, th, div_th, shifts,
            float(cfg.tau_grad), float(cfg.scale_grad), g.total, g.m, g.t, g.sn, g.st,
            SHIFT=ctx.shift, LEARN_TH=learn_th, DGRAD=dgrad, BLOCK=block,
        )
        gth = g.reduce(acc[1], threshold, 1.0) if learn_th else None
        gb = g.reduce(acc[0], bias, 1.0) if ctx.needs_input_grad[2] else None
        return g.from_kernel(gx), gth, gb, _delay_grad(g, acc[2], cfg.out, dgrad), None


def sigma_delta(
    x, threshold, *, bias=None, scale=1 << 12, tau_grad=1.0, scale_grad=1.0, cum_error=False,
    sigma_state=None, pre_state=None, residual_state=None, error_state=None, output=NO_OUTPUT,
):
    """Sigma-delta neuron with ReLU activation, fused (spec §4.7, §5.3)."""
    threshold = held_threshold(threshold, int(scale))
    if not use_triton(x):
        _warn_fallback(x)
        return _sd.dynamics(
            x, threshold, bias=bias, scale=scale, tau_grad=tau_grad, scale_grad=scale_grad,
            cum_error=cum_error, sigma_state=sigma_state, pre_state=pre_state,
            residual_state=residual_state, error_state=error_state, output=output,
        )
    states = (sigma_state, pre_state, residual_state, error_state if cum_error else None)
    cfg = _SdCfg(int(scale), tau_grad, scale_grad, cum_error, states, output)
    y, last = _SdFn.apply(x, threshold, bias, output.delay, cfg)
    sig, a, res, err, s = (t.reshape(x.shape[:-1]) for t in last)
    return y, {"sigma_state": sig, "pre_state": a, "residual_state": res, "error_state": err,
               "shift_state": s}
