"""Adaptive LIF neuron (lava-dl ``neuron/alif.py``; spec §4.2)."""

from __future__ import annotations

import torch

from slayerc.frontend.slayer.neuron import base
from slayerc.runtime.dynamics import adaptive_threshold, leaky_integrator
from slayerc.runtime.neurons import alif as family
from slayerc.runtime.spikes import spike as _spike

SCALE_RHO_MULT = family.SIGMA
TAU_RHO_MULT = family.TAU


def neuron_params(device_params, scale=1 << 6, p_scale=1 << 12):
    """Neuron keyword arguments from hardware parameters (lava-dl's mapping)."""
    return {
        "threshold": device_params["vThMant"] / scale,
        "threshold_step": device_params["vThStep"] / scale,
        "current_decay": device_params["iDecay"] / p_scale,
        "voltage_decay": device_params["vDecay"] / p_scale,
        "threshold_decay": device_params["thDecay"] / p_scale,
        "refractory_decay": device_params["refDecay"] / p_scale,
    }


class Neuron(base.Neuron):
    """Adaptive LIF with soft refractory (no voltage reset).

    .. math::
        u[t] &= (1-\\alpha_u)\\,u[t-1] + x[t] \\qquad v[t] = (1-\\alpha_v)\\,v[t-1] + u[t] \\\\
        \\vartheta[t] &= (1-\\alpha_\\vartheta)(\\vartheta[t-1]-\\vartheta_0) + \\vartheta_0
        \\qquad r[t] = (1-\\alpha_r)\\,r[t-1] \\\\
        s[t] &= v[t] \\ge \\vartheta[t] + r[t]; \\quad
        \\vartheta \\mathrel{+}= \\vartheta_\\text{step}\\,s, \\ r \\mathrel{+}= 2\\vartheta[t]\\,s

    A norm is applied to the input.  Integer arithmetic as
    :func:`slayerc.runtime.dynamics.adaptive_threshold`.  Threshold and refractory decays get no
    jitter when drawn per channel; θ and r carry no gradient.
    """

    def __init__(
        self, threshold, threshold_step, current_decay, voltage_decay, threshold_decay,
        refractory_decay, tau_grad=1, scale_grad=1, scale=1 << 6, norm=None, dropout=None,
        shared_param=True, persistent_state=False, requires_grad=False, graded_spike=False,
        per_neuron_param=False, shape=None,
    ):
        super().__init__(
            threshold=threshold, tau_grad=tau_grad, scale_grad=scale_grad, p_scale=1 << 12,
            w_scale=scale, s_scale=scale * (1 << 6), norm=norm, dropout=dropout,
            persistent_state=persistent_state, shared_param=shared_param,
            requires_grad=requires_grad, per_neuron_param=per_neuron_param,
        )
        self.threshold_step = int(threshold_step * self.w_scale) / self.w_scale
        self.graded_spike = graded_spike
        self._decay("current_decay", current_decay)
        self._decay("voltage_decay", voltage_decay)
        self._decay("threshold_decay", threshold_decay, jitter=0)
        self._decay("refractory_decay", refractory_decay, jitter=0)
        for name in ("current_state", "voltage_state", "refractory_state"):
            self.register_buffer(name, torch.zeros(1), persistent=False)
        self.register_buffer("threshold_state", torch.tensor([self.threshold]), persistent=False)
        self.clamp()
        if shape is not None:
            self.set_shape(shape)

    def clamp(self):
        """Keep the current and voltage decays in ``[0, 4096]`` (θ/r decays are not clamped)."""
        with torch.no_grad():
            self.current_decay.data.clamp_(0, self.p_scale)
            self.voltage_decay.data.clamp_(0, self.p_scale)

    cx_current_decay = property(lambda self: self._cx("current_decay"), doc="``iDecay``.")
    cx_voltage_decay = property(lambda self: self._cx("voltage_decay"), doc="``vDecay``.")
    cx_threshold_decay = property(lambda self: self._cx("threshold_decay"), doc="``thDecay``.")
    cx_refractory_decay = property(lambda self: self._cx("refractory_decay"), doc="``refDecay``.")

    @property
    def v_th_step(self):
        """Threshold step mantissa ``int(θ_step·w_scale)``."""
        return int(self.threshold_step * self.w_scale)

    @property
    def ref_delay(self):
        """Refractory delay (always 1)."""
        return 1

    @property
    def device_params(self):
        """Hardware parameters (type ``ALIF``; netx cannot load it)."""
        return {
            "type": "ALIF",
            "iDecay": self.cx_current_decay,
            "vDecay": self.cx_voltage_decay,
            "thDecay": self.cx_threshold_decay,
            "refDecay": self.cx_refractory_decay,
            "vThMant": self.v_th_mant,
            "vThStep": self.v_th_step,
            "refDelay": self.ref_delay,
            "gradedSpike": self.graded_spike,
        }

    def dynamics(self, input):
        """Traces ``(u, v, θ, r)`` for ``input`` ``[N, *S, T]``."""
        self._check_input(input)
        u0, v0, th0, r0 = self._states(
            input, ("current_state", "voltage_state", "threshold_state", "refractory_state")
        )
        if self.requires_grad:
            self.clamp()
        if self.norm is not None:
            input = self.norm(input)
        current = leaky_integrator(input, self.current_decay, u0, self.s_scale)
        voltage = leaky_integrator(current, self.voltage_decay, v0, self.s_scale)
        threshold, refractory = adaptive_threshold(
            voltage, self.threshold_decay, self.refractory_decay, self.threshold_step,
            self.threshold, self.s_scale, th0, r0,
        )
        self._store(
            current_state=current, voltage_state=voltage, threshold_state=threshold,
            refractory_state=refractory,
        )
        return current, voltage, threshold, refractory

    def spike(self, voltage, threshold, refractory):
        """Spikes ``v ≥ θ + r``; with persistent state, applies the post-spike θ/r update."""
        s = _spike(
            voltage, threshold + refractory, self.tau_rho * TAU_RHO_MULT,
            self.scale_rho * SCALE_RHO_MULT, self.graded_spike,
        )
        if self.persistent_state:
            fired = self._fired(s)
            self.refractory_state = self.refractory_state + 2 * fired * self.threshold_state
            self.threshold_state = self.threshold_state + fired * self.threshold_step
        return self.drop(s) if self.drop is not None else s

    def forward(self, input):
        """Spike response to ``input`` (:func:`slayerc.runtime.neurons.alif.dynamics`)."""
        self._check_input(input)
        if self.requires_grad:
            self.clamp()
        return self._run_family(
            family, input, self.current_decay, self.voltage_decay, self.threshold_decay,
            self.refractory_decay, self.threshold, self.threshold_step, self.tau_rho,
            self.scale_rho, norm=self.norm,
        )
