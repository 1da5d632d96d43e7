"""Adaptive resonate-and-fire (phase spike) blocks (``slayer.block.adrf``).

Each block is its ``base.Abstract*`` class with adaptive resonate-and-fire (phase spike) neurons and
complex (real, imag) synapses;
see :mod:`slayerc.frontend.slayer.block.base` for the forward and export rules.
"""

from __future__ import annotations

from ..neuron import adrf as _neuron
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


class _Adrf:
    """Family settings: adaptive resonate-and-fire (phase spike) neurons, complex synapses."""

    neuron_cls = _neuron.Neuron
    synapses = _synapses
    delay_shift_default = True


class Flatten(base.AbstractFlatten):
    """Flatten block: ``NCHWT`` → ``N(C·H·W)T``."""


class Average(base.AbstractAverage):
    """Average block: mean over ``num_outputs`` groups of neurons."""


class TimeDecimation(base.AbstractTimeDecimation):
    """Time decimation block: mean over bins of ``factor`` steps."""


class Input(_Adrf, base.AbstractInput):
    """Input block: quantized (optionally scaled and shifted) input through a adaptive resonate-and-
    fire (phase spike) neuron.
    """


class Dense(_Adrf, base.AbstractDense):
    """Adaptive resonate-and-fire (phase spike) dense block."""


class Conv(_Adrf, base.AbstractConv):
    """Adaptive resonate-and-fire (phase spike) convolution block."""


class ConvT(_Adrf, base.AbstractConvT):
    """Adaptive resonate-and-fire (phase spike) transposed convolution block."""


class Pool(_Adrf, base.AbstractPool):
    """Adaptive resonate-and-fire (phase spike) sum-pooling block."""


class Unpool(_Adrf, base.AbstractUnpool):
    """Adaptive resonate-and-fire (phase spike) unpooling block."""


class KWTA(_Adrf, base.AbstractKWTA):
    """Adaptive resonate-and-fire (phase spike) K-winners-take-all block."""


class Recurrent(_Adrf, base.AbstractRecurrent):
    """Adaptive resonate-and-fire (phase spike) recurrent dense block."""
