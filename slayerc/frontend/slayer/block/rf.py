"""Resonate-and-fire (phase spike) blocks (``slayer.block.rf``).

Each block is its ``base.Abstract*`` class with resonate-and-fire (phase spike) neurons and complex
(real, imag) synapses;
see :mod:`slayerc.frontend.slayer.block.base` for the forward and export rules.
"""

from __future__ import annotations

from ..neuron import rf as _neuron
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


class _Rf:
    """Family settings: resonate-and-fire (phase spike) neurons, complex synapses."""

    neuron_cls = _neuron.Neuron
    synapses = _synapses
    delay_shift_default = True


class Flatten(base.AbstractFlatten):
    """Flatten block: ``NCHWT`` → ``N(C·H·W)T``."""


class Average(base.AbstractAverage):
    """Average block: mean over ``num_outputs`` groups of neurons."""


class TimeDecimation(base.AbstractTimeDecimation):
    """Time decimation block: mean over bins of ``factor`` steps."""


class Input(_Rf, base.AbstractInput):
    """Input block: quantized (optionally scaled and shifted) input through a resonate-and-fire
    (phase spike) neuron.
    """


class Affine(_Rf, base.AbstractAffine):
    """Affine block: dense synapse and resonate-and-fire (phase spike) dynamics without spikes."""


class Dense(_Rf, base.AbstractDense):
    """Resonate-and-fire (phase spike) dense block."""


class Conv(_Rf, base.AbstractConv):
    """Resonate-and-fire (phase spike) convolution block."""


class ConvT(_Rf, base.AbstractConvT):
    """Resonate-and-fire (phase spike) transposed convolution block."""


class Pool(_Rf, base.AbstractPool):
    """Resonate-and-fire (phase spike) sum-pooling block."""


class Unpool(_Rf, base.AbstractUnpool):
    """Resonate-and-fire (phase spike) unpooling block."""


class KWTA(_Rf, base.AbstractKWTA):
    """Resonate-and-fire (phase spike) K-winners-take-all block."""


class Recurrent(_Rf, base.AbstractRecurrent):
    """Resonate-and-fire (phase spike) recurrent dense block."""
