"""Run ``slayerc.slayer`` neurons and block tails through the fused ops.

:func:`neuron_forward` reads a neuron module's parameters and persistent states, calls the fused
op of its family and stores the new states exactly as the module's own ``forward`` would.
:func:`block_forward` does the same for a block's ``neuron → delay_shift → axonal delay`` tail,
including the block's persistent ``delay_shift`` frame.

Neurons the kernels do not cover run their own (reference) ``forward``: a norm or dropout, or a
sigma-delta activation other than ReLU.  The family is looked up by the neuron's module name in
one table (no ``isinstance`` chain).
"""

from __future__ import annotations

import torch

from slayerc.backends.triton import ops
from slayerc.backends.triton.reference import NO_OUTPUT, Output, apply_output

__all__ = ["block_forward", "fused_supported", "neuron_forward"]


def _family(neuron) -> str:
    return type(neuron).__module__.rsplit(".", 1)[-1]


def _common(neuron, x):
    neuron._check_input(x)
    if neuron.requires_grad:
        neuron.clamp()


def _keep(neuron, states: dict, names: tuple[str, ...]) -> None:
    if neuron.persistent_state:
        for name in names:
            setattr(neuron, name, states[name].detach().clone())


def _cuba(neuron, x, output):
    _common(neuron, x)
    u0, v0 = neuron._states(x, ("current_state", "voltage_state"))
    y, st = ops.cuba(
        x, neuron.current_decay, neuron.voltage_decay, neuron.threshold, neuron.tau_rho,
        neuron.scale_rho, scale=neuron.s_scale, graded=neuron.graded_spike, current_state=u0,
        voltage_state=v0, output=output,
    )
    _keep(neuron, st, ("current_state", "voltage_state"))
    return y, st


_ADAPTIVE = ("threshold_state", "refractory_state")


def _alif(neuron, x, output):
    _common(neuron, x)
    u0, v0, th0, r0 = neuron._states(x, ("current_state", "voltage_state") + _ADAPTIVE)
    y, st = ops.alif(
        x, neuron.current_decay, neuron.voltage_decay, neuron.threshold_decay,
        neuron.refractory_decay, neuron.threshold, neuron.threshold_step, neuron.tau_rho,
        neuron.scale_rho, scale=neuron.s_scale, graded=neuron.graded_spike, current_state=u0,
        voltage_state=v0, threshold_state=th0, refractory_state=r0, output=output,
    )
    _keep(neuron, st, ("current_state", "voltage_state") + _ADAPTIVE)
    return y, st


def _complex_check(neuron, x):
    real, imag = x
    if real.shape != imag.shape:
        raise ValueError(f"real input {list(real.shape)} and imaginary {list(imag.shape)} differ")
    _common(neuron, real)


def _resonator(op):
    def run(neuron, x, output):
        _complex_check(neuron, x)
        re0, im0 = neuron._states(x[0], ("real_state", "imag_state"))
        y, st = op(
            x, neuron.sin_decay, neuron.cos_decay, neuron.threshold, neuron.tau_rho,
            neuron.scale_rho, scale=neuron.s_scale, graded=neuron.graded_spike,
            real_state=re0, imag_state=im0, output=output,
        )
        _keep(neuron, st, ("real_state", "imag_state"))
        return y, st

    return run


def _adaptive_resonator(op):
    def run(neuron, x, output):
        _complex_check(neuron, x)
        re0, im0, th0, r0 = neuron._all_states(x[0])
        y, st = op(
            x, neuron.sin_decay, neuron.cos_decay, neuron.threshold_decay,
            neuron.refractory_decay, neuron.threshold, neuron.threshold_step, neuron.tau_rho,
            neuron.scale_rho, scale=neuron.s_scale, graded=neuron.graded_spike,
            real_state=re0, imag_state=im0, threshold_state=th0, refractory_state=r0,
            output=output,
        )
        _keep(neuron, st, ("real_state", "imag_state") + _ADAPTIVE)
        return y, st

    return run


def _fresh(module, x, names):
    """Delta/Sigma bookkeeping: zero the states when the batch shape changes."""
    for name in names:
        if tuple(getattr(module, name).shape) != tuple(x.shape[:-1]):
            setattr(module, name, torch.zeros(x.shape[:-1], dtype=x.dtype, device=x.device))


def _sigma_delta(neuron, x, output):
    neuron._check_input(x)
    sigma, delta = neuron.sigma, neuron.delta
    _fresh(sigma, x, ("pre_state",))
    delta._check(x)
    _fresh(delta, x, ("pre_state", "residual_state", "error_state"))
    delta.clamp()
    keep = delta.persistent_state
    error = delta.error_state if keep else None
    y, st = ops.sigma_delta(
        x, delta.threshold, bias=neuron.bias if neuron.bias_is_set else None, scale=delta.scale,
        tau_grad=delta.tau_grad, scale_grad=delta.scale_grad, cum_error=delta.cum_error,
        sigma_state=sigma.pre_state if sigma.persistent_state else None,
        pre_state=delta.pre_state if keep else None,
        residual_state=delta.residual_state if keep else None,
        error_state=error if delta.cum_error else None, output=output,
    )
    if sigma.persistent_state:
        sigma.pre_state = st["sigma_state"].detach().clone()
    if keep:
        delta.pre_state = st["pre_state"].detach().clone()
        delta.residual_state = st["residual_state"].detach().clone()
        if delta.cum_error:
            delta.error_state = st["error_state"].detach().clone()
    return y, st


_FUSED = {
    "cuba": _cuba,
    "alif": _alif,
    "rf": _resonator(ops.rf),
    "rf_iz": _resonator(ops.rf_iz),
    "adrf": _adaptive_resonator(ops.adrf),
    "adrf_iz": _adaptive_resonator(ops.adrf_iz),
    "sigma_delta": _sigma_delta,
}
"""Neuron module name → adapter running the family's fused op."""

_RELU = (torch.relu, torch.nn.functional.relu)


def fused_supported(neuron) -> bool:
    """Whether the fused op reproduces ``neuron`` (no norm, no dropout, ReLU for sigma-delta)."""
    family = _family(neuron)
    if family not in _FUSED or getattr(neuron, "drop", None) is not None:
        return False
    norms = [getattr(neuron, k, None) for k in ("norm", "real_norm", "imag_norm")]
    if any(n is not None for n in norms):
        return False
    if family == "sigma_delta":
        act = neuron.activation
        return act in _RELU or isinstance(act, torch.nn.ReLU)
    return True


def neuron_forward(neuron, x, output: Output = NO_OUTPUT) -> torch.Tensor:
    """``output(neuron(x))`` with one fused kernel; neuron states are kept as the module does.

    ``x`` is ``[N, *S, T]`` (or the ``(x_re, x_im)`` pair of the resonator families).
    Unsupported neurons (:func:`fused_supported`) run their own ``forward``.
    """
    if not fused_supported(neuron):
        return apply_output(neuron(x), output)
    return _FUSED[_family(neuron)](neuron, x, output)[0]


def block_forward(block, z) -> torch.Tensor:
    """A block's tail ``delay(step_delay(neuron(z)))`` for the synapse output ``z``, fused.

    Keeps the block's persistent ``delay_shift`` frame and clamps/initialises its ``Delay`` as
    the block's own forward does.
    """
    neuron = block.neuron
    real = z[0] if isinstance(z, tuple) else z
    persistent = bool(getattr(neuron, "persistent_state", False))
    first = None
    if block.delay_shift and persistent:
        last = block._delay_state
        if last is not None and last.shape == real.shape[:-1]:
            first = last
    d = None
    ax = block.delay
    if ax is not None:
        ax.set_channels(real.shape[1])
        ax.clamp()
        d = ax.delay
    output = Output(
        bool(block.delay_shift), first, d, getattr(ax, "grad_scale", 1.0),
        getattr(ax, "sampling_time", 1.0),
    )
    if not fused_supported(neuron):
        s = neuron(z)
        if block.delay_shift and persistent:
            block._delay_state = s[..., -1].detach().clone()
        return apply_output(s, output)
    y, st = _FUSED[_family(neuron)](neuron, z, output)
    if block.delay_shift and persistent:
        block._delay_state = st["shift_state"].detach().clone()
    return y
