"""Constructor and hardware parameters shared by the adaptive resonator neurons."""

from __future__ import annotations

import torch

from slayerc.frontend.slayer.neuron._resonate import ResonatorNeuron


class AdaptiveResonatorNeuron(ResonatorNeuron):
    """Resonator neuron with adaptive threshold ``θ`` and refractory ``r`` (ADRF, ADRF-Iz)."""

    def __init__(
        self, threshold, threshold_step, period, decay, threshold_decay, refractory_decay,
        tau_grad=1, scale_grad=1, scale=1 << 6, norm=None, dropout=None, shared_param=True,
        persistent_state=False, requires_grad=False, graded_spike=False, log_init=True,
        per_neuron_param=False, shape=None,
    ):
        super().__init__(
            threshold=threshold, tau_grad=tau_grad, scale_grad=scale_grad, p_scale=1 << 12,
            w_scale=scale, s_scale=scale * (1 << 6), norm=norm, dropout=dropout,
            persistent_state=persistent_state, shared_param=shared_param,
            requires_grad=requires_grad, complex=True, per_neuron_param=per_neuron_param,
        )
        self.threshold_step = int(threshold_step * self.w_scale) / self.w_scale
        self.graded_spike = graded_spike
        self._init_resonator(period, decay, log_init)
        self._decay("threshold_decay", threshold_decay, jitter=0)
        self._decay("refractory_decay", refractory_decay, jitter=0)
        for name in ("real_state", "imag_state", "refractory_state"):
            self.register_buffer(name, torch.zeros(1), persistent=False)
        self.register_buffer("threshold_state", torch.tensor([self.threshold]), persistent=False)
        self.clamp()
        if shape is not None:
            self.set_shape(shape)

    cx_threshold_decay = property(lambda self: self._cx("threshold_decay"), doc="``thDecay``.")
    cx_refractory_decay = property(lambda self: self._cx("refractory_decay"), doc="``refDecay``.")

    @property
    def v_th_step(self):
        """Threshold step mantissa ``int(θ_step·w_scale)``."""
        return int(self.threshold_step * self.w_scale)

    @property
    def device_params(self):
        """Hardware parameters (lava-dl's ``adrf`` version raises a TypeError; this one works)."""
        return {**super().device_params, "thDecay": self.cx_threshold_decay,
                "refDecay": self.cx_refractory_decay, "vThStep": self.v_th_step}

    def _all_states(self, real_in):
        return self._states(
            real_in, ("real_state", "imag_state", "threshold_state", "refractory_state")
        )
