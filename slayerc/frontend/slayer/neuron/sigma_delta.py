"""Sigma-delta neuron (lava-dl ``neuron/sigma_delta.py``; spec §4.7)."""

from __future__ import annotations

import numpy as np
import torch

from slayerc.frontend.slayer.axon.delta import Delta
from slayerc.frontend.slayer.dendrite.sigma import Sigma
from slayerc.frontend.slayer.neuron import base


def neuron_params(device_params, scale=1 << 6):
    """Neuron keyword arguments (the threshold) from hardware parameters."""
    return {"threshold": device_params["vThMant"] / scale}


class Neuron(base.Neuron):
    """Sigma-delta neuron: ``σ = Σ x``; ``a = activation(σ + bias)``; output ``Δ``-encoded ``a``.

    .. math::
        \\sigma[t] = \\sigma[t-1] + x[t], \\quad a[t] = f(\\text{norm}(\\sigma[t]) + b), \\quad
        y = \\text{Delta}_\\vartheta(a)

    Always graded.  The threshold lives in ``delta`` (``delta.threshold``, learnable with
    ``requires_grad``); the Delta unit quantizes its output to steps of ``1/s_scale``.  The bias
    is used only after :meth:`set_bias`.
    """

    def __init__(
        self, threshold, activation, tau_grad=1, scale_grad=1, scale=1 << 6, num_neurons=None,
        cum_error=False, norm=None, dropout=None, shared_param=True, persistent_state=False,
        requires_grad=False, per_neuron_param=False, shape=None,
    ):
        super().__init__(
            threshold=threshold, num_neurons=num_neurons, w_scale=scale,
            s_scale=scale * (1 << 6), norm=norm, dropout=dropout,
            persistent_state=persistent_state, shared_param=shared_param,
            requires_grad=requires_grad, per_neuron_param=per_neuron_param,
        )
        self.graded_spike = True
        self.activation = activation
        self.sigma = Sigma(persistent_state=self.persistent_state)
        self.delta = Delta(
            threshold=self._threshold, scale=self.s_scale, tau_grad=tau_grad,
            scale_grad=scale_grad, cum_error=cum_error, shared_param=self.shared_param,
            persistent_state=self.persistent_state, requires_grad=self.requires_grad,
            per_neuron_param=self.per_neuron_param,
        )
        self.bias_is_set = False
        self.register_parameter(
            "bias", torch.nn.Parameter(torch.zeros(1), requires_grad=self.requires_grad)
        )
        if shape is not None:
            self.set_shape(shape)

    def set_shape(self, shape) -> None:
        """Fix the per-sample shape (and size a per-channel threshold) now."""
        super().set_shape(shape)
        self.delta.set_shape(shape)

    @property
    def device(self):
        """Device of the neuron."""
        return self.delta.threshold.device

    @property
    def threshold(self):
        """The delta threshold parameter."""
        return self.delta.threshold

    @property
    def v_th_mant(self):
        """``int(θ·w_scale)`` (an int64 array when thresholds are per channel)."""
        th = self.delta.threshold.detach().cpu().numpy().reshape(-1) * self.w_scale
        return int(th[0]) if th.size == 1 else th.astype(np.int64)

    @property
    def device_params(self):
        """netx neuron parameters (type ``SDNN``)."""
        return {
            "type": "SDNN",
            "activation": self.activation.__name__,
            "vThMant": self.v_th_mant,
        }

    def set_bias(self, bias):
        """Set the per-neuron (or shared) bias added before the activation."""
        bias = torch.as_tensor(bias, dtype=self.bias.dtype)
        if self.shape is not None and bias.numel() == int(np.prod(self.shape)):
            bias = bias.reshape(self.shape)
        self.bias.data = bias.to(self.bias.device)
        self.bias_is_set = True

    def forward(self, input):
        """Graded output for ``input`` ``[N, *S, T]``."""
        self._check_input(input)
        dend = self.sigma(input)
        if self.norm is not None:
            dend = self.norm(dend)
        if self.bias_is_set:
            dend = dend + self.bias.unsqueeze(0).unsqueeze(-1)
        axon = self.delta(self.activation(dend))
        return self.drop(axon) if self.drop is not None else axon
