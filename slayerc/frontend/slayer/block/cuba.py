"""CUBA-LIF blocks (``slayer.block.cuba``).

Each block is its ``base.Abstract*`` class with CUBA-LIF neurons and real synapses;
see :mod:`slayerc.frontend.slayer.block.base` for the forward and export rules.
"""

from __future__ import annotations

from ..neuron import cuba as _neuron
from ..synapse import layer as _synapses
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


class _Cuba:
    """Family settings: CUBA-LIF neurons, layer synapses."""

    neuron_cls = _neuron.Neuron
    synapses = _synapses
    delay_shift_default = True


class Flatten(base.AbstractFlatten):
    """Flatten block: ``NCHWT`` → ``N(C·H·W)T``."""


class Average(base.AbstractAverage):
    """Average block: mean over ``num_outputs`` groups of neurons."""


class TimeDecimation(base.AbstractTimeDecimation):
    """Time decimation block: mean over bins of ``factor`` steps."""


class Input(_Cuba, base.AbstractInput):
    """Input block: quantized (optionally scaled and shifted) input through a CUBA-LIF neuron."""


class Affine(_Cuba, base.AbstractAffine):
    """Affine block: dense synapse and CUBA-LIF dynamics without spikes."""


class Dense(_Cuba, base.AbstractDense):
    """CUBA-LIF dense block."""


class Conv(_Cuba, base.AbstractConv):
    """CUBA-LIF convolution block."""


class ConvT(_Cuba, base.AbstractConvT):
    """CUBA-LIF transposed convolution block."""


class Pool(_Cuba, base.AbstractPool):
    """CUBA-LIF sum-pooling block."""


class Unpool(_Cuba, base.AbstractUnpool):
    """CUBA-LIF unpooling block."""


class KWTA(_Cuba, base.AbstractKWTA):
    """CUBA-LIF K-winners-take-all block."""


class Recurrent(_Cuba, base.AbstractRecurrent):
    """CUBA-LIF recurrent dense block."""
