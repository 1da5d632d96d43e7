"""Complex (phase) spike function (``slayer.spike.complex``)."""

from __future__ import annotations

from slayerc.runtime import spikes as _spikes


class Spike:
    """lava-dl's complex ``Spike``: ``Spike.apply(re, im, θ, τ, σ, graded, im_last, scale)``.

    ``s[t] = (re[t] ≥ θ) ∧ (im[t−1] < 0) ∧ (im[t] ≥ 0)``, ``im[−1] = im_last``; graded spikes carry
    ``re[t]/scale``.  See :func:`slayerc.runtime.spikes.complex_spike`.
    """

    @staticmethod
    def apply(real, imag, threshold, tau_rho, scale_rho, graded_spike=False, imag_last=None,
              scale=1):
        """Phase spikes of the complex state ``(real, imag)``."""
        s = _spikes.complex_spike(
            real, imag, threshold, tau_rho, scale_rho, bool(graded_spike), imag_last
        )
        return s / scale if graded_spike and scale != 1 else s
