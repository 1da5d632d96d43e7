"""Resonate-and-fire Izhikevich neuron (lava-dl ``neuron/rf_iz.py``; spec §4.4)."""

from __future__ import annotations

from slayerc.frontend.slayer.neuron._resonate import PlainResonatorNeuron
from slayerc.frontend.slayer.neuron._resonate import rf_neuron_params as neuron_params
from slayerc.runtime.dynamics import resonator
from slayerc.runtime.neurons import rf_iz as family
from slayerc.runtime.spikes import spike as _spike

__all__ = ["Neuron", "neuron_params"]

SCALE_RHO_MULT = family.SIGMA
TAU_RHO_MULT = family.TAU


class Neuron(PlainResonatorNeuron):
    """RF neuron with Izhikevich reset: spike on ``im[t] ≥ θ``, then ``re = 0``, ``im = θ − 1/S``.

    Resonator as :mod:`.rf` (integer arithmetic of
    :func:`slayerc.runtime.dynamics.resonator` with ``threshold=θ``).  Graded spikes carry ``im``.
    """

    DEVICE_TYPE = "RF_IZHIKEVICH"

    def dynamics(self, input):
        """Pre-reset traces ``(re, im)`` for the complex input tuple."""
        real_in, imag_in = self._complex_input(input)
        re0, im0 = self._states(real_in, ("real_state", "imag_state"))
        real, imag = resonator(
            real_in, imag_in, self.sin_decay, self.cos_decay, re0, im0, self.s_scale,
            self.threshold,
        )
        self._store(real_state=real, imag_state=imag)
        return real, imag

    def spike(self, real, imag):
        """Spikes ``im ≥ θ``; with persistent state, applies the reset to the stored state."""
        s = _spike(
            imag, self.threshold, self.tau_rho * TAU_RHO_MULT, self.scale_rho * SCALE_RHO_MULT,
            self.graded_spike,
        )
        if self.persistent_state:
            fired = self._fired(s)
            self.real_state = self.real_state * (1 - fired)
            self.imag_state = fired * (self.threshold - 1 / self.s_scale) + (
                1 - fired
            ) * self.imag_state
        return self.drop(s) if self.drop is not None else s

    def forward(self, input):
        """Spike response to the complex input tuple ``(x_re, x_im)``
        (:func:`slayerc.runtime.neurons.rf_iz.dynamics`)."""
        return self._run_family(
            family, self._complex_input(input), self.sin_decay, self.cos_decay, self.threshold,
            self.tau_rho, self.scale_rho,
        )
