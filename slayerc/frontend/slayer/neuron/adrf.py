"""Adaptive resonate-and-fire neuron with phase spike (lava-dl ``neuron/adrf.py``; spec §4.5)."""

from __future__ import annotations

from slayerc.frontend.slayer.neuron._adaptive_rf import AdaptiveResonatorNeuron
from slayerc.frontend.slayer.neuron._resonate import rf_neuron_params as neuron_params
from slayerc.runtime.dynamics import adaptive_phase_threshold, resonator
from slayerc.runtime.neurons import adrf as family
from slayerc.runtime.spikes import complex_spike

__all__ = ["Neuron", "neuron_params"]

SCALE_RHO_MULT = family.SIGMA
TAU_RHO_MULT = family.TAU


class Neuron(AdaptiveResonatorNeuron):
    """ADRF: resonator (no reset), adaptive threshold, phase spike.

    .. math::
        s[t] = re[t] \\ge \\vartheta[t] + r[t] \\wedge im[t-1] < 0 \\wedge im[t] \\ge 0

    with the resonator of :mod:`.rf` and θ, r as :func:`slayerc.runtime.dynamics.
    adaptive_phase_threshold`.  netx runs it as plain RF (the adaptation is lost there).
    """

    DEVICE_TYPE = "ADRF_PHASE"

    def dynamics(self, input):
        """Traces ``(re, im, θ, r)`` for the complex input tuple."""
        real_in, imag_in = self._complex_input(input)
        re0, im0, th0, r0 = self._all_states(real_in)
        real, imag = resonator(
            real_in, imag_in, self.sin_decay, self.cos_decay, re0, im0, self.s_scale
        )
        threshold, refractory = adaptive_phase_threshold(
            real, imag, self.threshold_decay, self.refractory_decay, self.threshold_step,
            self.threshold, self.s_scale, im0, th0, r0,
        )
        self._store(real_state=real, threshold_state=threshold, refractory_state=refractory)
        return real, imag, threshold, refractory

    def spike(self, real, imag, threshold, refractory):
        """Phase spikes against ``θ + r``; persistent θ/r get the post-spike update."""
        im_last = self.imag_state if self.persistent_state else None
        s = complex_spike(
            real, imag, threshold + refractory, self.tau_rho * TAU_RHO_MULT,
            self.scale_rho * SCALE_RHO_MULT, self.graded_spike, im_last,
        )
        self._store(imag_state=imag)
        self._adaptive_spike_update(s)
        return self.drop(s) if self.drop is not None else s

    def forward(self, input):
        """Spike response to the complex input tuple ``(x_re, x_im)``
        (:func:`slayerc.runtime.neurons.adrf.dynamics`)."""
        return self._run_family(
            family, self._complex_input(input), self.sin_decay, self.cos_decay,
            self.threshold_decay, self.refractory_decay,
            self.threshold, self.threshold_step, self.tau_rho, self.scale_rho,
        )
