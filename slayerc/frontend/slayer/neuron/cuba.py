"""CUBA leaky integrate-and-fire neuron (lava-dl ``neuron/cuba.py``; spec §4.1)."""

from __future__ import annotations

import torch

from slayerc.frontend.slayer.neuron import base
from slayerc.runtime.cuba_lif import cuba_lif
from slayerc.runtime.dynamics import leaky_integrator
from slayerc.runtime.neurons import cuba as family
from slayerc.runtime.spikes import spike as _spike

SCALE_RHO_MULT = family.SIGMA
TAU_RHO_MULT = family.TAU


def neuron_params(device_params, scale=1 << 6, p_scale=1 << 12):
    """Neuron keyword arguments (threshold and decay fractions) from hardware parameters."""
    return {
        "threshold": device_params["vThMant"] / scale,
        "current_decay": device_params["iDecay"] / p_scale,
        "voltage_decay": device_params["vDecay"] / p_scale,
    }


class Neuron(base.Neuron):
    """Loihi CUBA-LIF neuron.

    .. math::
        u[t] &= (1-\\alpha_u)\\,u[t-1] + x[t] \\qquad (\\text{then } u \\leftarrow
                 \\text{norm}(u) \\text{ if a norm is set}) \\\\
        v[t] &= (1-\\alpha_v)\\,v[t-1] + u[t] \\\\
        s[t] &= v[t] \\ge \\vartheta + 0.01/S \\quad(v_\\text{int} > \\vartheta_\\text{int}) \\\\
        v[t] &\\leftarrow 0 \\text{ after a spike}

    in the integer arithmetic of :func:`slayerc.runtime.dynamics.leaky_integrator`.  Graded spikes
    carry ``v[t]``.  Decays are stored ×4096 in ``current_decay``/``voltage_decay``.

    Args:
        threshold: spike threshold.
        current_decay, voltage_decay: decay fractions; ``(min, max)`` when not shared.
        tau_grad, scale_grad: surrogate gradient parameters.
        scale: ``w_scale`` (64); ``s_scale = 64·scale``.
        norm, dropout, shared_param, persistent_state, requires_grad: as lava-dl.
        graded_spike: emit the voltage instead of 1.
        per_neuron_param: one decay per neuron (slayerc extension).
        shape: per-sample neuron shape when known at construction (slayerc extension).
    """

    def __init__(
        self, threshold, current_decay, voltage_decay, tau_grad=1, scale_grad=1, scale=1 << 6,
        norm=None, dropout=None, shared_param=True, persistent_state=False,
        requires_grad=False, graded_spike=False, per_neuron_param=False, shape=None,
    ):
        super().__init__(
            threshold=threshold, tau_grad=tau_grad, scale_grad=scale_grad, p_scale=1 << 12,
            w_scale=scale, s_scale=scale * (1 << 6), norm=norm, dropout=dropout,
            persistent_state=persistent_state, shared_param=shared_param,
            requires_grad=requires_grad, per_neuron_param=per_neuron_param,
        )
        self.graded_spike = graded_spike
        self.threshold_eps = 0.01 / self.s_scale
        self._decay("current_decay", current_decay)
        self._decay("voltage_decay", voltage_decay)
        self.register_buffer("current_state", torch.zeros(1), persistent=False)
        self.register_buffer("voltage_state", torch.zeros(1), persistent=False)
        self.clamp()
        if shape is not None:
            self.set_shape(shape)

    def clamp(self):
        """Keep both decays in ``[0, 4096]``."""
        with torch.no_grad():
            self.current_decay.data.clamp_(0, self.p_scale)
            self.voltage_decay.data.clamp_(0, self.p_scale)

    @property
    def cx_current_decay(self):
        """Hardware current decay ``iDecay`` (rounded)."""
        return self._cx("current_decay")

    @property
    def cx_voltage_decay(self):
        """Hardware voltage decay ``vDecay`` (rounded)."""
        return self._cx("voltage_decay")

    @property
    def ref_delay(self):
        """Refractory delay (always 1)."""
        return 1

    @property
    def device_params(self):
        """netx neuron parameters (``spec/netx-hdf5.md`` §3)."""
        return {
            "type": "CUBA",
            "iDecay": self.cx_current_decay,
            "vDecay": self.cx_voltage_decay,
            "vThMant": self.v_th_mant,
            "refDelay": self.ref_delay,
            "gradedSpike": self.graded_spike,
        }

    def dynamics(self, input):
        """Current and voltage traces ``(u, v)`` for ``input`` ``[N, *S, T]`` (v is pre-reset)."""
        self._check_input(input)
        u0, v0 = self._states(input, ("current_state", "voltage_state"))
        if self.requires_grad:
            self.clamp()
        if self.norm is None:  # both integrators in one loop
            current, voltage = cuba_lif(
                input, self.current_decay, self.voltage_decay, u0, v0, self.s_scale,
                self.threshold + self.threshold_eps,
            )
        else:
            current = self.norm(leaky_integrator(input, self.current_decay, u0, self.s_scale))
            voltage = leaky_integrator(
                current, self.voltage_decay, v0, self.s_scale, self.threshold + self.threshold_eps
            )
        self._store(current_state=current, voltage_state=voltage)
        return current, voltage

    def spike(self, voltage):
        """Spikes from a voltage trace; with persistent state, resets the stored voltage."""
        s = _spike(
            voltage, self.threshold + self.threshold_eps, self.tau_rho * TAU_RHO_MULT,
            self.scale_rho * SCALE_RHO_MULT, self.graded_spike,
        )
        if self.persistent_state:
            self.voltage_state = self.voltage_state * (1 - self._fired(s))
        return self.drop(s) if self.drop is not None else s

    #: Whether ``forward`` may return its time-major spike trace as a (non-contiguous) view.
    #: Blocks set it: they consume that layout without a copy.  A neuron used on its own
    #: returns a contiguous tensor, so user code may call ``.view`` on it as with lava-dl.
    time_major_output = False

    def forward(self, input):
        """Spike response to ``input`` ``[N, *S, T]`` (:func:`slayerc.runtime.neurons.cuba.
        dynamics`; :meth:`dynamics` and :meth:`spike` give its two halves, as lava-dl's)."""
        self._check_input(input)
        if self.requires_grad:
            self.clamp()
        s = self._run_family(
            family, input, self.current_decay, self.voltage_decay, self.threshold,
            self.tau_rho, self.scale_rho, norm=self.norm, want_state=self.persistent_state,
        )
        return s if self.time_major_output else s.contiguous()
