"""Reference (torch) versions of the fused neuron ops, composed from :mod:`slayerc.runtime`.

Each function has the signature of its fused counterpart in :mod:`slayerc.backends.triton.ops`
and computes what a ``slayerc.slayer`` neuron computes (``spec/slayer-dynamics.md`` §4), followed
by a block's one-step ``delay_shift`` (§7) and axonal delay (§5.2):

    s = spike(dynamics(x));   y = delay(step_delay(s))

They are the fallback of the dispatcher and the oracle of ``tests/triton``.  The returned state
dict holds what a persistent neuron stores after the call, and ``shift_state = s[..., -1]``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from slayerc.runtime import axon, spikes
from slayerc.runtime import dynamics as dyn
from slayerc.runtime.dynamics import DynamicsShapeError

__all__ = [
    "NO_OUTPUT", "DynamicsShapeError", "Output", "adrf", "adrf_iz", "alif", "apply_output",
    "cuba", "rf", "rf_iz", "sigma_delta",
]

# Surrogate multipliers of each family (spec §2.3): τ = tau_rho·TAU, σ = scale_rho·SIGMA.
CUBA_TAU, CUBA_SIGMA = 100, 0.1
ALIF_TAU, ALIF_SIGMA = 100, 0.1
RF_TAU, RF_SIGMA = 0.5, 10
RF_IZ_TAU, RF_IZ_SIGMA = 100, 0.1
ADRF_TAU, ADRF_SIGMA = 100, 0.1


@dataclass(frozen=True, eq=False)
class Output:
    """What happens to the spikes on their way out of a block (folded into the kernel's store).

    Attributes:
        delay_shift: the block's one-step shift ``y[t] = s[t−1]``.
        shift_state: ``y[0]`` under ``delay_shift`` (the previous call's last frame for a
            persistent block; zeros when None).
        delay: axonal delay ``d`` (a number, or a tensor per channel or per neuron); the spikes
            move ``trunc(d/Ts)`` further steps.  A tensor gets lava-dl's delay gradient.
        grad_scale, sampling_time: as ``slayer.axon.Delay``.
    """

    delay_shift: bool = False
    shift_state: torch.Tensor | None = None
    delay: torch.Tensor | float | None = None
    grad_scale: float = 1.0
    sampling_time: float = 1.0


NO_OUTPUT = Output()
"""The default: spikes leave unshifted."""


def apply_output(s: torch.Tensor, output: Output) -> torch.Tensor:
    """``step_delay`` (when ``delay_shift``) then the axonal delay, as a block does."""
    y = s
    if output.delay_shift:
        first = output.shift_state
        if first is None:
            y = torch.nn.functional.pad(s, (1, -1))
        else:
            first = first.to(s.dtype).expand(s.shape[:-1])
            y = torch.cat([first.unsqueeze(-1), s[..., :-1]], dim=-1)
    if output.delay is None:
        return y
    if torch.is_tensor(output.delay):
        return axon.delay(y, output.delay, output.grad_scale, output.sampling_time)
    return axon.shift(y, output.delay, output.sampling_time)


def _last(t: torch.Tensor) -> torch.Tensor:
    return t[..., -1].detach().clone()


def _fired(s: torch.Tensor) -> torch.Tensor:
    return (s[..., -1] > 0).to(s.dtype).detach()


def _adapted(states: dict, th: torch.Tensor, r: torch.Tensor, fired, step: float) -> dict:
    """Persistent θ/r after the call: ``r += 2θ·s``, ``θ += step·s`` on the last step."""
    states["refractory_state"] = _last(r) + 2 * fired * _last(th)
    states["threshold_state"] = _last(th) + fired * step
    return states


def cuba(
    x, current_decay, voltage_decay, threshold, tau_rho, scale_rho, *, scale=1 << 12,
    graded=False, current_state=None, voltage_state=None, output=NO_OUTPUT,
):
    """CUBA-LIF (spec §4.1) without norm or dropout.

    Args:
        x: input current ``[N, *S, T]``.
        current_decay, voltage_decay: decays ×4096 (one, per channel or per neuron).
        threshold: the neuron's (quantized) θ; spikes and resets use ``θ + 0.01/scale``.
        tau_rho, scale_rho: the neuron's ``tau_rho``/``scale_rho`` (multiplied by 100 / 0.1).
        scale: integer state scale ``s_scale``.
        graded: emit the voltage instead of 1.
        current_state, voltage_state: initial states (persistent neurons), or None.
        output: the block's delay_shift and axonal delay.
    """
    th = threshold + 0.01 / scale
    u = dyn.leaky_integrator(x, current_decay, current_state, scale)
    v = dyn.leaky_integrator(u, voltage_decay, voltage_state, scale, th)
    s = spikes.spike(v, th, tau_rho * CUBA_TAU, scale_rho * CUBA_SIGMA, graded)
    states = {
        "current_state": _last(u), "voltage_state": _last(v) * (1 - _fired(s)),
        "shift_state": _last(s),
    }
    return apply_output(s, output), states


def alif(
    x, current_decay, voltage_decay, threshold_decay, refractory_decay, threshold,
    threshold_step, tau_rho, scale_rho, *, scale=1 << 12, graded=False, current_state=None,
    voltage_state=None, threshold_state=None, refractory_state=None, output=NO_OUTPUT,
):
    """Adaptive LIF (spec §4.2) without norm or dropout; spikes on ``v ≥ θ[t] + r[t]``."""
    u = dyn.leaky_integrator(x, current_decay, current_state, scale)
    v = dyn.leaky_integrator(u, voltage_decay, voltage_state, scale)
    th, r = dyn.adaptive_threshold(
        v, threshold_decay, refractory_decay, threshold_step, threshold, scale,
        threshold_state, refractory_state,
    )
    s = spikes.spike(v, th + r, tau_rho * ALIF_TAU, scale_rho * ALIF_SIGMA, graded)
    states = {"current_state": _last(u), "voltage_state": _last(v), "shift_state": _last(s)}
    return apply_output(s, output), _adapted(states, th, r, _fired(s), threshold_step)


def rf(
    x, sin_decay, cos_decay, threshold, tau_rho, scale_rho, *, scale=1 << 12, graded=False,
    real_state=None, imag_state=None, output=NO_OUTPUT,
):
    """RF with phase spike (spec §4.3); ``x = (x_re, x_im)``; ``im[−1] = imag_state``."""
    re, im = dyn.resonator(x[0], x[1], sin_decay, cos_decay, real_state, imag_state, scale)
    s = spikes.complex_spike(
        re, im, threshold, tau_rho * RF_TAU, scale_rho * RF_SIGMA, graded, imag_state
    )
    states = {"real_state": _last(re), "imag_state": _last(im), "shift_state": _last(s)}
    return apply_output(s, output), states


def rf_iz(
    x, sin_decay, cos_decay, threshold, tau_rho, scale_rho, *, scale=1 << 12, graded=False,
    real_state=None, imag_state=None, output=NO_OUTPUT,
):
    """RF-Izhikevich (spec §4.4): spike on ``im ≥ θ``, reset ``re = 0``, ``im = θ − 1/S``."""
    re, im = dyn.resonator(
        x[0], x[1], sin_decay, cos_decay, real_state, imag_state, scale, threshold
    )
    s = spikes.spike(im, threshold, tau_rho * RF_IZ_TAU, scale_rho * RF_IZ_SIGMA, graded)
    fired = _fired(s)
    states = {
        "real_state": _last(re) * (1 - fired),
        "imag_state": fired * (threshold - 1 / scale) + (1 - fired) * _last(im),
        "shift_state": _last(s),
    }
    return apply_output(s, output), states


def adrf(
    x, sin_decay, cos_decay, threshold_decay, refractory_decay, threshold, threshold_step,
    tau_rho, scale_rho, *, scale=1 << 12, graded=False, real_state=None, imag_state=None,
    threshold_state=None, refractory_state=None, output=NO_OUTPUT,
):
    """Adaptive RF with phase spike (spec §4.5)."""
    re, im = dyn.resonator(x[0], x[1], sin_decay, cos_decay, real_state, imag_state, scale)
    th, r = dyn.adaptive_phase_threshold(
        re, im, threshold_decay, refractory_decay, threshold_step, threshold, scale,
        imag_state, threshold_state, refractory_state,
    )
    s = spikes.complex_spike(
        re, im, th + r, tau_rho * ADRF_TAU, scale_rho * ADRF_SIGMA, graded, imag_state
    )
    states = {"real_state": _last(re), "imag_state": _last(im), "shift_state": _last(s)}
    return apply_output(s, output), _adapted(states, th, r, _fired(s), threshold_step)


def adrf_iz(
    x, sin_decay, cos_decay, threshold_decay, refractory_decay, threshold, threshold_step,
    tau_rho, scale_rho, *, scale=1 << 12, graded=False, real_state=None, imag_state=None,
    threshold_state=None, refractory_state=None, output=NO_OUTPUT,
):
    """Adaptive RF-Izhikevich (spec §4.6): spike on ``im ≥ θ[t] + r[t]``, no re/im reset."""
    re, im, th, r = dyn.adaptive_resonator(
        x[0], x[1], sin_decay, cos_decay, threshold_decay, refractory_decay, threshold_step,
        threshold, scale, (real_state, imag_state, threshold_state, refractory_state),
    )
    s = spikes.spike(im, th + r, tau_rho * ADRF_TAU, scale_rho * ADRF_SIGMA, graded)
    states = {"real_state": _last(re), "imag_state": _last(im), "shift_state": _last(s)}
    return apply_output(s, output), _adapted(states, th, r, _fired(s), threshold_step)


def sigma_delta(
    x, threshold, *, bias=None, scale=1 << 12, tau_grad=1.0, scale_grad=1.0, cum_error=False,
    sigma_state=None, pre_state=None, residual_state=None, error_state=None, output=NO_OUTPUT,
):
    """Sigma-delta with ReLU (spec §4.7): ``a = relu(Σx + b)``, delta-encoded with threshold.

    ``bias`` is added only when given (the neuron's ``bias_is_set``); ``error_state`` is used
    (zeros when None) only with ``cum_error``.  States: ``sigma_state`` (Sigma's pre_state),
    ``pre_state``/``residual_state``/``error_state`` (the Delta unit's).
    """
    sig = axon.sigma(x, sigma_state)
    dend = sig
    if bias is not None:
        dend = sig + bias.unsqueeze(0).unsqueeze(-1)
    a = torch.relu(dend)
    err = None
    if cum_error:
        err = error_state if error_state is not None else torch.zeros_like(x[..., 0])
    y, res, err = axon.delta_encode(
        a, threshold, pre_state, residual_state, err, scale, tau_grad, scale_grad
    )
    states = {
        "sigma_state": _last(sig), "pre_state": _last(a), "residual_state": res.detach(),
        "error_state": err.detach() if err is not None else torch.zeros_like(x[..., 0]),
        "shift_state": _last(y),
    }
    return apply_output(y, output), states
