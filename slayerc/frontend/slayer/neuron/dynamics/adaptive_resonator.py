"""Adaptive resonator (lava-dl ``neuron.dynamics.adaptive_resonator``): the resonator (no
reset) with the adaptive threshold and refractory of :mod:`.adaptive_threshold`, spiking on
``Im z − r ≥ θ``."""

from __future__ import annotations

from slayerc.runtime.dynamics import adaptive_resonator as _kernel

from ._adaptive import persistent_ref_state, persistent_th_state  # noqa: F401


def dynamics(real_input, imag_input, sin_decay, cos_decay, ref_decay, th_decay, real_state,
             imag_state, ref_state, th_state, th_scale, th0, w_scale, debug=False):
    """Traces ``(real, imag, threshold, refractory)``; decays are ×4096 integers."""
    return _kernel(real_input, imag_input, sin_decay, cos_decay, th_decay, ref_decay,
                   float(th_scale), float(th0), int(w_scale),
                   (real_state, imag_state, th_state, ref_state))
