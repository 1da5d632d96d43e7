"""Adaptive LIF (ALIF) blocks (``slayer.block.alif``).

Each block is its ``base.Abstract*`` class with adaptive LIF (ALIF) neurons and real synapses;
see :mod:`slayerc.frontend.slayer.block.base` for the forward and export rules.
"""

from __future__ import annotations

from ..neuron import alif as _neuron
from ..synapse import layer as _synapses
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


class _Alif:
    """Family settings: adaptive LIF (ALIF) neurons, layer synapses."""

    neuron_cls = _neuron.Neuron
    synapses = _synapses
    delay_shift_default = True


class Flatten(base.AbstractFlatten):
    """Flatten block: ``NCHWT`` → ``N(C·H·W)T``."""


class Average(base.AbstractAverage):
    """Average block: mean over ``num_outputs`` groups of neurons."""


class TimeDecimation(base.AbstractTimeDecimation):
    """Time decimation block: mean over bins of ``factor`` steps."""


class Input(_Alif, base.AbstractInput):
    """Input block: quantized (optionally scaled and shifted) input through a adaptive LIF (ALIF)
    neuron.
    """


class Dense(_Alif, base.AbstractDense):
    """Adaptive LIF (ALIF) dense block."""


class Conv(_Alif, base.AbstractConv):
    """Adaptive LIF (ALIF) convolution block."""


class ConvT(_Alif, base.AbstractConvT):
    """Adaptive LIF (ALIF) transposed convolution block."""


class Pool(_Alif, base.AbstractPool):
    """Adaptive LIF (ALIF) sum-pooling block."""


class Unpool(_Alif, base.AbstractUnpool):
    """Adaptive LIF (ALIF) unpooling block."""


class KWTA(_Alif, base.AbstractKWTA):
    """Adaptive LIF (ALIF) K-winners-take-all block."""


class Recurrent(_Alif, base.AbstractRecurrent):
    """Adaptive LIF (ALIF) recurrent dense block."""
