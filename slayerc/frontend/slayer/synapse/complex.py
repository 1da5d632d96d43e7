"""Complex synapses: two independent real synapses ``real`` and ``imag``.

``forward(x)`` returns ``(real(x), imag(x))``; state_dict keys are ``real.weight`` and
``imag.weight`` (lava-dl's).  Unlike lava-dl, reading ``pre_hook_fx`` works, and every complex
synapse exposes the geometry attributes (``in_channels``, ``kernel_size``, …) that export needs.
"""

from __future__ import annotations

import numpy as np
import torch

from . import layer


class ComplexLayer(torch.nn.Module):
    """Base of the complex synapses; ``complex`` is True."""

    complex = True

    def forward(self, input, mask=None):
        """Forward complex synaptic operation: ``(real(x), imag(x))``."""
        return self.real(input, mask), self.imag(input, mask)

    def enable_weight_norm(self):
        """Enables weight normalization on both synapses."""
        self.real.enable_weight_norm()
        self.imag.enable_weight_norm()

    def disable_weight_norm(self):
        """Disables weight normalization on both synapses."""
        self.real.disable_weight_norm()
        self.imag.disable_weight_norm()

    @property
    def weight_norm_enabled(self):
        """True when the synapses use weight normalization."""
        return self.real.weight_norm_enabled

    @property
    def grad_norm(self):
        """Norm of weight gradients. Useful for monitoring gradient flow."""
        return float(np.sqrt(self.real.grad_norm**2 + self.imag.grad_norm**2))

    @property
    def pre_hook_fx(self):
        """The weight pre-hook, shared by the real and imaginary synapses."""
        return self.real.pre_hook_fx

    @pre_hook_fx.setter
    def pre_hook_fx(self, fx):
        self.real.pre_hook_fx = fx
        self.imag.pre_hook_fx = fx

    @property
    def shape(self):
        """Shape of the synapse weight."""
        return self.real.shape

    def __getattr__(self, name):
        if name in ("in_channels", "out_channels", "kernel_size", "stride", "padding", "dilation",
                    "groups", "output_padding", "mask"):
            return getattr(self._modules["real"], name)
        return super().__getattr__(name)


class Dense(ComplexLayer):
    """Dense complex synapse (see :class:`slayerc.slayer.synapse.Dense`)."""

    def __init__(
        self, in_neurons, out_neurons, weight_scale=1, weight_norm=False, pre_hook_fx=None,
        mask=None,
    ):
        super().__init__()
        args = (in_neurons, out_neurons, weight_scale, weight_norm, pre_hook_fx, mask)
        self.real = layer.Dense(*args)
        self.imag = layer.Dense(*args)


class Conv(ComplexLayer):
    """Convolution complex synapse (see :class:`slayerc.slayer.synapse.Conv`)."""

    def __init__(
        self, in_features, out_features, kernel_size, stride=1, padding=0, dilation=1, groups=1,
        weight_scale=1, weight_norm=False, pre_hook_fx=None, mask=None,
    ):
        super().__init__()
        args = (in_features, out_features, kernel_size, stride, padding, dilation, groups,
                weight_scale, weight_norm, pre_hook_fx, mask)
        self.real = layer.Conv(*args)
        self.imag = layer.Conv(*args)


class Pool(ComplexLayer):
    """Pooling complex synapse (see :class:`slayerc.slayer.synapse.Pool`)."""

    def __init__(
        self, kernel_size, stride=None, padding=0, dilation=1, weight_scale=1, weight_norm=False,
        pre_hook_fx=None,
    ):
        super().__init__()
        args = (kernel_size, stride, padding, dilation, weight_scale, weight_norm, pre_hook_fx)
        self.real = layer.Pool(*args)
        self.imag = layer.Pool(*args)


class ConvTranspose(ComplexLayer):
    """Transposed convolution complex synapse."""

    def __init__(
        self, in_features, out_features, kernel_size, stride=1, padding=0, dilation=1, groups=1,
        weight_scale=1, weight_norm=False, pre_hook_fx=None,
    ):
        super().__init__()
        args = (in_features, out_features, kernel_size, stride, padding, dilation, groups,
                weight_scale, weight_norm, pre_hook_fx)
        self.real = layer.ConvTranspose(*args)
        self.imag = layer.ConvTranspose(*args)


class Unpool(ComplexLayer):
    """Unpooling complex synapse."""

    def __init__(
        self, kernel_size, stride=None, padding=0, dilation=1, weight_scale=1, weight_norm=False,
        pre_hook_fx=None,
    ):
        super().__init__()
        args = (kernel_size, stride, padding, dilation, weight_scale, weight_norm, pre_hook_fx)
        self.real = layer.Unpool(*args)
        self.imag = layer.Unpool(*args)
