"""Resonate-and-fire neuron with phase spike (lava-dl ``neuron/rf.py``; spec §4.3)."""

from __future__ import annotations

from slayerc.frontend.slayer.neuron._resonate import PlainResonatorNeuron
from slayerc.frontend.slayer.neuron._resonate import rf_neuron_params as neuron_params
from slayerc.runtime.dynamics import resonator
from slayerc.runtime.neurons import rf as family
from slayerc.runtime.spikes import complex_spike

__all__ = ["Neuron", "neuron_params"]

SCALE_RHO_MULT = family.SIGMA
TAU_RHO_MULT = family.TAU


class Neuron(PlainResonatorNeuron):
    """RF neuron: a damped rotation of the complex state, spiking on upward phase crossings.

    .. math::
        re[t] &= (1-\\alpha)(\\cos\\phi\\,re[t-1] - \\sin\\phi\\,im[t-1]) + x_{re}[t] \\\\
        im[t] &= (1-\\alpha)(\\sin\\phi\\,re[t-1] + \\cos\\phi\\,im[t-1]) + x_{im}[t] \\\\
        s[t] &= re[t] \\ge \\vartheta \\wedge im[t-1] < 0 \\wedge im[t] \\ge 0

    Input is the tuple ``(x_re, x_im)`` of a complex synapse; integer arithmetic as
    :func:`slayerc.runtime.dynamics.resonator` (no reset).  Graded spikes carry ``re[t]``.
    """

    DEVICE_TYPE = "RF_PHASE"

    def dynamics(self, input):
        """Traces ``(re, im)`` for the complex input tuple."""
        real_in, imag_in = self._complex_input(input)
        re0, im0 = self._states(real_in, ("real_state", "imag_state"))
        real, imag = resonator(
            real_in, imag_in, self.sin_decay, self.cos_decay, re0, im0, self.s_scale
        )
        self._store(real_state=real)
        return real, imag

    def spike(self, real, imag):
        """Phase spikes; ``im[−1]`` is the stored imaginary state."""
        im_last = self.imag_state if self.persistent_state else None
        s = complex_spike(
            real, imag, self.threshold, self.tau_rho * TAU_RHO_MULT,
            self.scale_rho * SCALE_RHO_MULT, self.graded_spike, im_last,
        )
        self._store(imag_state=imag)
        return self.drop(s) if self.drop is not None else s

    def forward(self, input):
        """Spike response to the complex input tuple ``(x_re, x_im)``
        (:func:`slayerc.runtime.neurons.rf.dynamics`)."""
        return self._run_family(
            family, self._complex_input(input), self.sin_decay, self.cos_decay, self.threshold,
            self.tau_rho, self.scale_rho,
        )
