"""Resonate-and-fire Izhikevich blocks (``slayer.block.rf_iz``).

Each block is its ``base.Abstract*`` class with resonate-and-fire Izhikevich neurons and complex
(real, imag) synapses;
see :mod:`slayerc.frontend.slayer.block.base` for the forward and export rules.
"""

from __future__ import annotations

from ..neuron import rf_iz as _neuron
from ..synapse import complex as _synapses
from . import base

__all__ = [
    "Input",
    "Flatten",
    "Average",
    "Affine",
    "TimeDecimation",
    "Dense",
    "Conv",
    "ConvT",
    "Pool",
    "Unpool",
    "KWTA",
    "Recurrent",
]


class _RfIz:
    """Family settings: resonate-and-fire Izhikevich neurons, complex synapses."""

    neuron_cls = _neuron.Neuron
    synapses = _synapses
    delay_shift_default = True


class Flatten(base.AbstractFlatten):
    """Flatten block: ``NCHWT`` → ``N(C·H·W)T``."""


class Average(base.AbstractAverage):
    """Average block: mean over ``num_outputs`` groups of neurons."""


class TimeDecimation(base.AbstractTimeDecimation):
    """Time decimation block: mean over bins of ``factor`` steps."""


class Input(_RfIz, base.AbstractInput):
    """Input block: quantized (optionally scaled and shifted) input through a resonate-and-fire
    Izhikevich neuron.
    """


class Affine(_RfIz, base.AbstractAffine):
    """Affine block: dense synapse and resonate-and-fire Izhikevich dynamics without spikes."""


class Dense(_RfIz, base.AbstractDense):
    """Resonate-and-fire Izhikevich dense block."""


class Conv(_RfIz, base.AbstractConv):
    """Resonate-and-fire Izhikevich convolution block."""


class ConvT(_RfIz, base.AbstractConvT):
    """Resonate-and-fire Izhikevich transposed convolution block."""


class Pool(_RfIz, base.AbstractPool):
    """Resonate-and-fire Izhikevich sum-pooling block."""


class Unpool(_RfIz, base.AbstractUnpool):
    """Resonate-and-fire Izhikevich unpooling block."""


class KWTA(_RfIz, base.AbstractKWTA):
    """Resonate-and-fire Izhikevich K-winners-take-all block."""


class Recurrent(_RfIz, base.AbstractRecurrent):
    """Resonate-and-fire Izhikevich recurrent dense block."""
