"""Shared parts of the resonate-and-fire neurons (rf, rf_iz, adrf, adrf_iz)."""

from __future__ import annotations

import numpy as np
import torch

from slayerc.frontend.slayer.neuron import base


def rf_neuron_params(device_params, scale=1 << 6, p_scale=1 << 12):
    """Neuron keyword arguments ``threshold``, ``period``, ``decay`` from hardware parameters.

    lava-dl's version fails with a TypeError (trailing commas make tuples); this one works.
    """
    sin_decay = device_params["sinDecay"] / p_scale
    cos_decay = device_params["cosDecay"] / p_scale
    decay = 1 - np.sqrt(sin_decay**2 + cos_decay**2)
    frequency = np.arctan2(sin_decay, cos_decay) / 2 / np.pi
    return {"threshold": device_params["vThMant"] / scale, "period": 1 / frequency, "decay": decay}


class ResonatorNeuron(base.Neuron):
    """Base of the resonator neurons: ``sin_decay``/``cos_decay`` parameters from period/decay.

    ``sin_decay = 4096·(1−α)·sin(2π/period)``, ``cos_decay = 4096·(1−α)·cos(2π/period)``.  Not
    shared: frequencies log-spaced (``log_init``) or uniform in ``[1/period_max, 1/period_min]``
    across the channels (or neurons), decays uniform in ``[min, max]``.
    """

    def _init_resonator(self, period, decay, log_init):
        self.log_init = log_init
        if self.shared_param:
            if not (np.isscalar(decay) and np.isscalar(period)):
                raise base.NeuronConfigError(
                    f"expected scalar period and decay when shared_param is True; "
                    f"got period={period!r}, decay={decay!r}"
                )
            self._check_period(period)
            sin = np.sin(2 * np.pi / period) * (1 - decay)
            cos = np.cos(2 * np.pi / period) * (1 - decay)
        else:
            self.period_min, self.period_max = base._range("period", period, 0.01)
            self._check_period(self.period_min)
            self.decay_min, self.decay_max = base._range("decay", decay, 0.01)
            sin = cos = 0.0
        for name, value in (("sin_decay", sin), ("cos_decay", cos)):
            self.register_parameter(name, torch.nn.Parameter(
                torch.tensor([self.p_scale * value], dtype=torch.float32),
                requires_grad=self.requires_grad,
            ))
        if not self.shared_param:
            self._lazy = {"sin_decay": (0.0, 0.0), "cos_decay": (0.0, 0.0), **self._lazy}

    #: netx ``type`` of the neuron group (set by each neuron class).
    DEVICE_TYPE = ""

    @property
    def device_params(self):
        """netx neuron parameters (type ``DEVICE_TYPE``)."""
        return {
            "type": self.DEVICE_TYPE,
            "sinDecay": self.cx_sin_decay,
            "cosDecay": self.cx_cos_decay,
            "vThMant": self.v_th_mant,
            "gradedSpike": self.graded_spike,
        }

    @staticmethod
    def _check_period(period):
        if period < 4:
            raise base.NeuronConfigError(
                f"a neuron period below 4 does not make sense; got {period}"
            )

    def _draw(self, pshape):
        n = int(np.prod(pshape))
        if self.log_init:
            freq = torch.logspace(-np.log10(self.period_max), -np.log10(self.period_min), steps=n)
        else:
            lo, hi = 1 / self.period_max, 1 / self.period_min
            freq = lo + (hi - lo) * torch.rand(n)
        decay = self.decay_min + (self.decay_max - self.decay_min) * torch.rand(n)
        sin = torch.sin(2 * np.pi * freq) * (1 - decay)
        cos = torch.cos(2 * np.pi * freq) * (1 - decay)
        out = {"sin_decay": (self.p_scale * sin).reshape(pshape),
               "cos_decay": (self.p_scale * cos).reshape(pshape)}
        rest = {k: v for k, v in self._lazy.items() if k not in ("sin_decay", "cos_decay")}
        for name, (lo, hi) in rest.items():
            out[name] = self.p_scale * (lo + (hi - lo) * torch.rand(pshape))
        return out

    def clamp(self):
        """Keep ``(sin, cos)`` inside the radius-4095 circle, ``sin ≥ 1`` and ``cos ≥ 0``."""
        with torch.no_grad():
            gain = torch.sqrt(self.sin_decay**2 + self.cos_decay**2)
            ratio = gain.clamp(0, self.p_scale - 1) / gain
            ratio = torch.where(gain > 0, ratio, torch.ones_like(gain))
            self.sin_decay.data *= ratio
            self.cos_decay.data *= ratio
            self.sin_decay.data.clamp_(1)
            self.cos_decay.data.clamp_(0)

    def _q(self, name):
        return np.round(getattr(self, name).detach().cpu().numpy())

    @property
    def decay(self):
        """Decay ``α = 1 − |(sin, cos)|/4096`` of the quantized parameters."""
        self.clamp()
        return 1 - np.sqrt((self._q("sin_decay") / self.p_scale) ** 2
                           + (self._q("cos_decay") / self.p_scale) ** 2)

    @property
    def lam(self):
        """``λ = −ln(1 − α)``."""
        return -np.log(1 - self.decay)

    @property
    def frequency(self):
        """Oscillation frequency ``atan2(sin, cos)/2π`` (cycles per step)."""
        self.clamp()
        return np.arctan2(self._q("sin_decay"), self._q("cos_decay")) / 2 / np.pi

    @property
    def period(self):
        """Oscillation period in steps."""
        return 1 / self.frequency

    cx_sin_decay = property(lambda self: self._cx("sin_decay"), doc="``sinDecay``.")
    cx_cos_decay = property(lambda self: self._cx("cos_decay"), doc="``cosDecay``.")

    def _complex_input(self, input):
        real, imag = input
        self._check_input(real)
        if real.shape != imag.shape:
            raise base.NeuronShapeError(
                f"real input {list(real.shape)} and imaginary input {list(imag.shape)} differ"
            )
        if self.requires_grad:
            self.clamp()
        if self.real_norm is not None:
            real = self.real_norm(real)
        if self.imag_norm is not None:
            imag = self.imag_norm(imag)
        return real, imag

    def _adaptive_spike_update(self, s):
        """Persistent θ/r after spikes in the last step: ``r += 2θ·s``, ``θ += step·s``."""
        if self.persistent_state:
            fired = self._fired(s)
            self.refractory_state = self.refractory_state + 2 * fired * self.threshold_state
            self.threshold_state = self.threshold_state + fired * self.threshold_step


class PlainResonatorNeuron(ResonatorNeuron):
    """Constructor shared by RF and RF-Iz (no adaptation)."""

    def __init__(
        self, threshold, period, decay, tau_grad=1, scale_grad=1, scale=1 << 6, norm=None,
        dropout=None, shared_param=True, persistent_state=False, requires_grad=False,
        graded_spike=False, log_init=True, per_neuron_param=False, shape=None,
    ):
        super().__init__(
            threshold=threshold, tau_grad=tau_grad, scale_grad=scale_grad, p_scale=1 << 12,
            w_scale=scale, s_scale=scale * (1 << 6), norm=norm, dropout=dropout,
            persistent_state=persistent_state, shared_param=shared_param,
            requires_grad=requires_grad, complex=True, per_neuron_param=per_neuron_param,
        )
        self.graded_spike = graded_spike
        self._init_resonator(period, decay, log_init)
        self.register_buffer("real_state", torch.zeros(1), persistent=False)
        self.register_buffer("imag_state", torch.zeros(1), persistent=False)
        self.clamp()
        if shape is not None:
            self.set_shape(shape)
