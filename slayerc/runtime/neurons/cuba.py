"""``neuron.cuba``: current-based leaky integrate-and-fire (``spec/slayer-dynamics.md`` §4.1).

.. math::
    u[t] = (1-\\alpha_u)\\,u[t-1] + x[t], \\quad v[t] = (1-\\alpha_v)\\,v[t-1] + u[t] + b,
    \\quad s[t] = v[t] > \\vartheta, \\text{ then } v \\leftarrow 0

in the integer arithmetic of :mod:`slayerc.runtime.dynamics` (both integrators in one loop,
:func:`slayerc.runtime.cuba_lif.cuba_lif`; inference without autograd takes the compiled
spike loop :func:`slayerc.runtime.cuba_lif.cuba_lif_spikes` when numba is there).  Kernels:
``torch`` (:func:`dynamics`), ``fixed`` and ``numba`` (Loihi's fixed-point CUBA,
:mod:`slayerc.runtime.fixed`), ``triton`` (registered by :mod:`slayerc.backends.triton.ops`).
"""

from __future__ import annotations

from typing import Any

import torch

from slayerc.ir.core import Op
from slayerc.ir.target import STATE_SCALE
from slayerc.runtime import spikes
from slayerc.runtime.cuba_lif import cuba_lif, cuba_lif_spikes
from slayerc.runtime.dynamics import leaky_integrator
from slayerc.runtime.neurons.common import (
    NO_OUTPUT,
    Value,
    apply_output,
    bias_norm,
    decay,
    fired,
    last,
    spike_args,
)

OP = "neuron.cuba"
PARAMS = ("current_decay", "voltage_decay")
STATES = ("current_state", "voltage_state")
TAU, SIGMA = 100, 0.1
"""Surrogate multipliers (spec §2.3): ``τ = tau_rho·TAU``, ``σ = scale_rho·SIGMA``."""


def dynamics(
    x, current_decay, voltage_decay, threshold, tau_rho, scale_rho, *, scale=STATE_SCALE,
    graded=False, current_state=None, voltage_state=None, norm=None, output=NO_OUTPUT,
    want_state=True, exact_decay=False,
):
    """CUBA-LIF spikes of ``x`` ``[N, *S, T]``; returns ``(y, states)``.

    Args:
        current_decay, voltage_decay: decays ×4096 (one, per channel or per neuron).
        threshold: θ (quantized); spikes and resets use ``θ + 0.01/scale``.
        tau_rho, scale_rho: the surrogate's ``tau_rho``/``scale_rho`` (×100 / ×0.1).
        scale: integer state scale ``s_scale``.
        graded: emit the voltage instead of 1.
        current_state, voltage_state: initial states (persistent neurons), or None.
        norm: applied to the current trace before the voltage integrates it (slayer's neuron
            norm; the IR's ``bias``), or None.
        output: the block's delay_shift and axonal delay.
        want_state: return the carried states (False skips the current trace when possible).
        exact_decay: the decays unrounded (the IR node's ``exact_decays``; slayer rounds them).
    """
    th = threshold + 0.01 / scale
    if norm is None and not _needs_grad(x, current_decay, voltage_decay):
        fast = cuba_lif_spikes(x, current_decay, voltage_decay, current_state, voltage_state,
                               scale, th, graded, exact_decay)
        if fast is not None:  # inference: spikes in one compiled pass, no traces
            s, (u_last, v_last) = fast
            states = {}
            if want_state:
                states = {"current_state": u_last, "voltage_state": v_last * (1 - fired(s)),
                          "shift_state": last(s)}
            return apply_output(s, output), states
    if norm is None:
        u, v = cuba_lif(x, current_decay, voltage_decay, current_state, voltage_state, scale, th,
                        current=want_state, exact_decay=exact_decay)
    else:
        u = norm(leaky_integrator(x, current_decay, current_state, scale,
                                  exact_decay=exact_decay))
        v = leaky_integrator(u, voltage_decay, voltage_state, scale, th, exact_decay)
    s = spikes.spike(v, th, tau_rho * TAU, scale_rho * SIGMA, graded)
    states: dict[str, Any] = {}
    if want_state:
        states = {"current_state": last(u), "voltage_state": last(v) * (1 - fired(s)),
                  "shift_state": last(s)}
    return apply_output(s, output), states


def _needs_grad(*tensors) -> bool:
    """Whether autograd will record the dynamics (grad mode on and a tensor requires grad)."""
    return torch.is_grad_enabled() and any(torch.is_tensor(t) and t.requires_grad
                                           for t in tensors)


def node_args(node: Op, value: Value) -> tuple[tuple, dict[str, Any]]:
    """``dynamics`` arguments of a ``neuron.cuba`` node."""
    a = spike_args(node)
    args = (decay(value, "current_decay"), decay(value, "voltage_decay"), a.pop("threshold"),
            a.pop("tau_rho"), a.pop("scale_rho"))
    exact = {"exact_decay": True} if getattr(node, "exact_decays", False) else {}
    return args, {**a, "norm": bias_norm(value), **exact}


KERNELS = {
    "torch": dynamics,
    "fixed": "slayerc.runtime.fixed.neurons:Cuba",
    "numba": "slayerc.runtime.fixed.fast:run_cuba",
}
