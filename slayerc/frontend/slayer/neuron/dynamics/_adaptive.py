"""The persistent-state rules the three adaptive dynamics share (lava-dl's)."""

from __future__ import annotations

from ._common import fired


def persistent_ref_state(ref_state, spike, th_state):
    """Refractory state to keep: ``r + 2θ`` where the last step spiked."""
    return ref_state + 2 * fired(spike, ref_state) * th_state


def persistent_th_state(th_state, spike, th_step):
    """Threshold state to keep: ``θ + θ_step`` where the last step spiked."""
    return th_state + fired(spike, th_state) * th_step
