"""``neuron.rf``: resonate-and-fire with phase spike (``spec/slayer-dynamics.md`` §4.3).

``re[t] = c re[t−1] − s im[t−1] + x_re[t]``; ``im[t] = s re[t−1] + c im[t−1] + x_im[t]``;
``spike[t] = re[t] ≥ θ ∧ im[t−1] < 0 ∧ im[t] ≥ 0``.  Input is the pair ``(x_re, x_im)``.
"""

from __future__ import annotations

from slayerc.ir.target import STATE_SCALE
from slayerc.runtime import dynamics as dyn
from slayerc.runtime import spikes
from slayerc.runtime.neurons._resonator import RF_DECAYS
from slayerc.runtime.neurons._resonator import plain_args as node_args  # noqa: F401
from slayerc.runtime.neurons.common import NO_OUTPUT, apply_output, last

OP = "neuron.rf"
PARAMS = RF_DECAYS
STATES = ("real_state", "imag_state")
TAU, SIGMA = 0.5, 10


def dynamics(
    x, sin_decay, cos_decay, threshold, tau_rho, scale_rho, *, scale=STATE_SCALE, graded=False,
    real_state=None, imag_state=None, output=NO_OUTPUT,
):
    """RF spikes of ``x = (x_re, x_im)``; ``im[−1] = imag_state``.  Returns ``(y, states)``."""
    re, im = dyn.resonator(x[0], x[1], sin_decay, cos_decay, real_state, imag_state, scale)
    s = spikes.complex_spike(
        re, im, threshold, tau_rho * TAU, scale_rho * SIGMA, graded, imag_state
    )
    states = {"real_state": last(re), "imag_state": last(im), "shift_state": last(s)}
    return apply_output(s, output), states


KERNELS = {
    "torch": dynamics,
    "fixed": "slayerc.runtime.fixed.neurons:RF",
    "numba": "slayerc.runtime.fixed.fast:run_resonator",
}
