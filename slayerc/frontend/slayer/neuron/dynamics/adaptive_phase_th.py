"""Adaptive threshold with phase spikes (lava-dl ``neuron.dynamics.adaptive_phase_th``): as
:mod:`.adaptive_threshold`, spiking on ``Re z − r ≥ θ`` at an upward zero crossing of ``Im z``.
"""

from __future__ import annotations

from slayerc.runtime.dynamics import adaptive_phase_threshold as _kernel

from ._adaptive import persistent_ref_state, persistent_th_state  # noqa: F401


def dynamics(re_input, im_input, im_state, ref_state, ref_decay, th_state, th_decay, th_scale,
             th0, w_scale, debug=False):
    """Threshold and refractory traces ``(threshold, refractory)`` for the resonator traces
    ``re_input``/``im_input``; ``im_state`` is ``Im z[−1]``."""
    return _kernel(re_input, im_input, th_decay, ref_decay, float(th_scale), float(th0),
                   int(w_scale), im_state, th_state, ref_state)
