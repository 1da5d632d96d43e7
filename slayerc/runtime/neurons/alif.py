"""``neuron.alif``: adaptive LIF with soft refractory (``spec/slayer-dynamics.md`` §4.2).

``u, v`` as CUBA (``v`` never resets); ``θ[t] = (1 − αθ)(θ[t−1] − θ0) + θ0``,
``r[t] = (1 − αr) r[t−1]``; ``s[t] = v[t] ≥ θ[t] + r[t]``; on a spike ``θ += θ_step`` and
``r += 2 θ[t]``.  Kernels: ``torch`` (:func:`dynamics`), ``fixed``/``numba``, ``triton``.
"""

from __future__ import annotations

from typing import Any

from slayerc.ir.core import Op
from slayerc.ir.target import STATE_SCALE
from slayerc.runtime import dynamics as dyn
from slayerc.runtime import spikes
from slayerc.runtime.neurons.common import (
    NO_OUTPUT,
    Value,
    adapted,
    apply_output,
    bias_norm,
    decay,
    fired,
    last,
    scalar,
    spike_args,
)

OP = "neuron.alif"
PARAMS = ("current_decay", "voltage_decay", "threshold_decay", "refractory_decay")
STATES = ("current_state", "voltage_state", "threshold_state", "refractory_state")
TAU, SIGMA = 100, 0.1


def dynamics(
    x, current_decay, voltage_decay, threshold_decay, refractory_decay, threshold,
    threshold_step, tau_rho, scale_rho, *, scale=STATE_SCALE, graded=False, current_state=None,
    voltage_state=None, threshold_state=None, refractory_state=None, norm=None,
    output=NO_OUTPUT,
):
    """Adaptive LIF; spikes on ``v ≥ θ[t] + r[t]``.  ``norm`` (slayer's neuron norm, the IR's
    ``bias``) acts on the input, before the current integrates.  Returns ``(y, states)``."""
    if norm is not None:
        x = norm(x)
    u = dyn.leaky_integrator(x, current_decay, current_state, scale)
    v = dyn.leaky_integrator(u, voltage_decay, voltage_state, scale)
    th, r = dyn.adaptive_threshold(
        v, threshold_decay, refractory_decay, threshold_step, threshold, scale,
        threshold_state, refractory_state,
    )
    s = spikes.spike(v, th + r, tau_rho * TAU, scale_rho * SIGMA, graded)
    states = {"current_state": last(u), "voltage_state": last(v), "shift_state": last(s)}
    return apply_output(s, output), adapted(states, th, r, fired(s), threshold_step)


def node_args(node: Op, value: Value) -> tuple[tuple, dict[str, Any]]:
    """``dynamics`` arguments of a ``neuron.alif`` node."""
    a = spike_args(node)
    args = (*(decay(value, p) for p in PARAMS), a.pop("threshold"),
            scalar(node, "threshold_step"), a.pop("tau_rho"), a.pop("scale_rho"))
    return args, {**a, "norm": bias_norm(value)}


KERNELS = {
    "torch": dynamics,
    "fixed": "slayerc.runtime.fixed.neurons:Alif",
    "numba": "slayerc.runtime.fixed.fast:run_cuba",
}
