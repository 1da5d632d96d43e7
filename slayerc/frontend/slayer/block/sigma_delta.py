"""Sigma-delta blocks (``slayer.block.sigma_delta``).

Blocks of sigma-delta neurons (sigma decoder → activation → delta encoder) on real synapses.
``delay_shift`` defaults to False here (lava-dl), so each synapse stage adds no step in slayer
while Lava adds one.  ``Input`` only delta-encodes its (quantized) input; ``Output`` only
sigma-decodes its synaptic input.
"""

from __future__ import annotations

import torch

from ..neuron import sigma_delta as _neuron
from ..synapse import layer as _synapses
from . import _export as ex
from . import base

__all__ = [
    "Input", "Flatten", "Average", "Dense", "Conv", "ConvT", "Pool", "Unpool", "Output",
]


class AbstractSDRelu:
    """Family settings: sigma-delta neurons, real synapses, no delay shift (lava-dl's name)."""

    neuron_cls = _neuron.Neuron
    synapses = _synapses
    delay_shift_default = False


_SigmaDelta = AbstractSDRelu


class Input(_SigmaDelta, base.AbstractInput):
    """Sigma-delta input block: delta encoding of the quantized input (no sigma/activation)."""

    def _encode(self, z):
        return self.neuron.delta(z)


class Flatten(base.AbstractFlatten):
    """Flatten block: ``NCHWT`` → ``N(C·H·W)T``."""


class Average(base.AbstractAverage):
    """Average block: mean over ``num_outputs`` groups of neurons."""


class Dense(_SigmaDelta, base.AbstractDense):
    """Sigma-delta dense block."""


class Conv(_SigmaDelta, base.AbstractConv):
    """Sigma-delta convolution block."""


class ConvT(_SigmaDelta, base.AbstractConvT):
    """Sigma-delta transposed convolution block."""


class Pool(_SigmaDelta, base.AbstractPool):
    """Sigma-delta sum-pooling block."""


class Unpool(_SigmaDelta, base.AbstractUnpool):
    """Sigma-delta unpooling block."""


class Output(_SigmaDelta, base.Block):
    """Sigma-delta output block: ``y = sigma(W x)`` (a decoder; no activation or delta).

    Exported as a ``dense`` layer whose neuron group adds ``sigma_output = True``.
    """

    def __init__(self, neuron_params, in_neurons, out_neurons, weight_scale=1, weight_norm=False,
                 count_log=False):
        super().__init__()
        self.count_log = count_log
        self.neuron = self._make_neuron(neuron_params)
        self.delay = None
        self.delay_shift = False
        self.synapse = self.synapses.Dense(
            in_neurons, out_neurons, weight_scale=weight_scale, weight_norm=weight_norm,
            pre_hook_fx=self.neuron.quantize_8bit,
        )
        self._static_shape = (int(out_neurons),)

    def forward(self, x):
        """Decoded output of an ``NCT`` input."""
        return self._log(self.neuron.sigma(self.synapse(x)))

    @property
    def shape(self):
        """Shape of the block ``(out_neurons,)``."""
        shape = getattr(self.neuron.sigma, "shape", None)
        return torch.Size(shape) if shape is not None else torch.Size(self._static_shape)

    @ex.through_writer
    def export_hdf5(self, handle):
        """Writes a ``dense`` group with ``neuron/sigma_output = True``."""
        ex.write_type(handle, "dense")
        ex.write_shape(handle, self.shape)
        ex.write_dense_features(handle, self.synapse)
        ex.write_weight(handle, self.synapse)
        ex.write_neuron(handle, self.neuron, {"sigma_output": True})
