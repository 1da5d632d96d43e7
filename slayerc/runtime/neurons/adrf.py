"""``neuron.adrf``: resonator (no reset) with adaptive threshold and refractory, phase spike
(``spec/slayer-dynamics.md`` §4.5).

``spike[t] = re[t] ≥ θ[t] + r[t] ∧ im[t−1] < 0 ∧ im[t] ≥ 0``; θ, r as ``neuron.alif``.
"""

from __future__ import annotations

from slayerc.ir.target import STATE_SCALE
from slayerc.runtime import dynamics as dyn
from slayerc.runtime import spikes
from slayerc.runtime.neurons._resonator import ADAPTIVE_DECAYS, RF_DECAYS
from slayerc.runtime.neurons._resonator import adaptive_args as node_args  # noqa: F401
from slayerc.runtime.neurons.common import NO_OUTPUT, adapted, apply_output, fired, last

OP = "neuron.adrf"
PARAMS = RF_DECAYS + ADAPTIVE_DECAYS
STATES = ("real_state", "imag_state", "threshold_state", "refractory_state")
TAU, SIGMA = 100, 0.1


def dynamics(
    x, sin_decay, cos_decay, threshold_decay, refractory_decay, threshold, threshold_step,
    tau_rho, scale_rho, *, scale=STATE_SCALE, graded=False, real_state=None, imag_state=None,
    threshold_state=None, refractory_state=None, output=NO_OUTPUT,
):
    """Adaptive RF spikes of ``x = (x_re, x_im)``.  Returns ``(y, states)``."""
    re, im = dyn.resonator(x[0], x[1], sin_decay, cos_decay, real_state, imag_state, scale)
    th, r = dyn.adaptive_phase_threshold(
        re, im, threshold_decay, refractory_decay, threshold_step, threshold, scale,
        imag_state, threshold_state, refractory_state,
    )
    s = spikes.complex_spike(
        re, im, th + r, tau_rho * TAU, scale_rho * SIGMA, graded, imag_state
    )
    states = {"real_state": last(re), "imag_state": last(im), "shift_state": last(s)}
    return apply_output(s, output), adapted(states, th, r, fired(s), threshold_step)


KERNELS = {
    "torch": dynamics,
    "fixed": "slayerc.runtime.fixed.neurons:Adrf",
    "numba": "slayerc.runtime.fixed.fast:run_resonator",
}
