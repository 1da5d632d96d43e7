"""Adaptive resonate-and-fire Izhikevich blocks (``slayer.block.adrf_iz``).

Each block is its ``base.Abstract*`` class with adaptive resonate-and-fire Izhikevich neurons and
complex (real, imag) synapses;
see :mod:`slayerc.frontend.slayer.block.base` for the forward and export rules.
"""

from __future__ import annotations

from ..neuron import adrf_iz as _neuron
from ..synapse import complex as _synapses
from . import base

__all__ = [
    "Input",
    "Flatten",
    "Average",
    "TimeDecimation",
    "Dense",
    "Conv",
    "ConvT",
    "Pool",
    "Unpool",
    "KWTA",
    "Recurrent",
]


class _AdrfIz:
    """Family settings: adaptive resonate-and-fire Izhikevich neurons, complex synapses."""

    neuron_cls = _neuron.Neuron
    synapses = _synapses
    delay_shift_default = True


class Flatten(base.AbstractFlatten):
    """Flatten block: ``NCHWT`` → ``N(C·H·W)T``."""


class Average(base.AbstractAverage):
    """Average block: mean over ``num_outputs`` groups of neurons."""


class TimeDecimation(base.AbstractTimeDecimation):
    """Time decimation block: mean over bins of ``factor`` steps."""


class Input(_AdrfIz, base.AbstractInput):
    """Input block: quantized (optionally scaled and shifted) input through a adaptive resonate-and-
    fire Izhikevich neuron.
    """


class Dense(_AdrfIz, base.AbstractDense):
    """Adaptive resonate-and-fire Izhikevich dense block."""


class Conv(_AdrfIz, base.AbstractConv):
    """Adaptive resonate-and-fire Izhikevich convolution block."""


class ConvT(_AdrfIz, base.AbstractConvT):
    """Adaptive resonate-and-fire Izhikevich transposed convolution block."""


class Pool(_AdrfIz, base.AbstractPool):
    """Adaptive resonate-and-fire Izhikevich sum-pooling block."""


class Unpool(_AdrfIz, base.AbstractUnpool):
    """Adaptive resonate-and-fire Izhikevich unpooling block."""


class KWTA(_AdrfIz, base.AbstractKWTA):
    """Adaptive resonate-and-fire Izhikevich K-winners-take-all block."""


class Recurrent(_AdrfIz, base.AbstractRecurrent):
    """Adaptive resonate-and-fire Izhikevich recurrent dense block."""
