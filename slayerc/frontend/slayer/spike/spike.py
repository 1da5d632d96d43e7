"""Real spike function (``slayer.spike.spike``)."""

from __future__ import annotations

from slayerc.runtime import spikes as _spikes


class Spike:
    """lava-dl's ``Spike`` autograd entry point: ``Spike.apply(v, θ, τ, σ, graded, v_last, scale)``.

    ``s = H(v − θ)``; graded ``s = H(v − θ)·v/scale``.  ``v_last`` is accepted and unused (as in
    lava-dl).  See :func:`slayerc.runtime.spikes.spike` for the surrogate gradient.
    """

    @staticmethod
    def apply(voltage, threshold, tau_rho, scale_rho, graded_spike=False, voltage_last=None,
              scale=1):
        """Spikes of ``voltage`` (``[N, *S, T]``) against ``threshold``."""
        s = _spikes.spike(voltage, threshold, tau_rho, scale_rho, bool(graded_spike))
        return s / scale if graded_spike and scale != 1 else s
