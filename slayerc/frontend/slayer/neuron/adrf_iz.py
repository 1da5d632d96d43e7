"""Adaptive resonate-and-fire Izhikevich neuron (lava-dl ``neuron/adrf_iz.py``; spec §4.6)."""

from __future__ import annotations

from slayerc.frontend.slayer.neuron._adaptive_rf import AdaptiveResonatorNeuron
from slayerc.frontend.slayer.neuron._resonate import rf_neuron_params as neuron_params
from slayerc.runtime.dynamics import adaptive_resonator
from slayerc.runtime.neurons import adrf_iz as family
from slayerc.runtime.spikes import spike as _spike

__all__ = ["Neuron", "neuron_params"]

SCALE_RHO_MULT = family.SIGMA
TAU_RHO_MULT = family.TAU


class Neuron(AdaptiveResonatorNeuron):
    """ADRF-Iz: adaptive resonator (no re/im reset), spike on ``im[t] ≥ θ[t] + r[t]``.

    Integer arithmetic of :func:`slayerc.runtime.dynamics.adaptive_resonator`.  Unlike lava-dl,
    ``forward`` works (lava-dl calls ``spike`` with the wrong number of arguments).
    """

    DEVICE_TYPE = "ADRF_IZHIKEVICH"

    def dynamics(self, input):
        """Traces ``(re, im, θ, r)`` for the complex input tuple."""
        real_in, imag_in = self._complex_input(input)
        states = self._all_states(real_in)
        real, imag, threshold, refractory = adaptive_resonator(
            real_in, imag_in, self.sin_decay, self.cos_decay, self.threshold_decay,
            self.refractory_decay, self.threshold_step, self.threshold, self.s_scale, states,
        )
        self._store(
            real_state=real, imag_state=imag, threshold_state=threshold,
            refractory_state=refractory,
        )
        return real, imag, threshold, refractory

    def spike(self, real, imag, threshold, refractory):
        """Spikes ``im ≥ θ + r``; persistent θ/r get the post-spike update."""
        s = _spike(
            imag, threshold + refractory, self.tau_rho * TAU_RHO_MULT,
            self.scale_rho * SCALE_RHO_MULT, self.graded_spike,
        )
        self._adaptive_spike_update(s)
        return self.drop(s) if self.drop is not None else s

    def forward(self, input):
        """Spike response to the complex input tuple ``(x_re, x_im)``
        (:func:`slayerc.runtime.neurons.adrf_iz.dynamics`)."""
        return self._run_family(
            family, self._complex_input(input), self.sin_decay, self.cos_decay,
            self.threshold_decay, self.refractory_decay,
            self.threshold, self.threshold_step, self.tau_rho, self.scale_rho,
        )
