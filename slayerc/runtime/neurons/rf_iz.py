"""``neuron.rf_iz``: resonate-and-fire, Izhikevich spike (``spec/slayer-dynamics.md`` §4.4).

Resonator as ``neuron.rf``; ``spike[t] = im[t] ≥ θ``, then ``re = 0``, ``im = θ − 1/S``.
"""

from __future__ import annotations

from slayerc.ir.target import STATE_SCALE
from slayerc.runtime import dynamics as dyn
from slayerc.runtime import spikes
from slayerc.runtime.neurons._resonator import RF_DECAYS
from slayerc.runtime.neurons._resonator import plain_args as node_args  # noqa: F401
from slayerc.runtime.neurons.common import NO_OUTPUT, apply_output, fired, last

OP = "neuron.rf_iz"
PARAMS = RF_DECAYS
STATES = ("real_state", "imag_state")
TAU, SIGMA = 100, 0.1


def dynamics(
    x, sin_decay, cos_decay, threshold, tau_rho, scale_rho, *, scale=STATE_SCALE, graded=False,
    real_state=None, imag_state=None, output=NO_OUTPUT,
):
    """RF-Izhikevich spikes of ``x = (x_re, x_im)``.  Returns ``(y, states)``."""
    re, im = dyn.resonator(
        x[0], x[1], sin_decay, cos_decay, real_state, imag_state, scale, threshold
    )
    s = spikes.spike(im, threshold, tau_rho * TAU, scale_rho * SIGMA, graded)
    f = fired(s)
    states = {
        "real_state": last(re) * (1 - f),
        "imag_state": f * (threshold - 1 / scale) + (1 - f) * last(im),
        "shift_state": last(s),
    }
    return apply_output(s, output), states


KERNELS = {
    "torch": dynamics,
    "fixed": "slayerc.runtime.fixed.neurons:RFIz",
    "numba": "slayerc.runtime.fixed.fast:run_resonator",
}
