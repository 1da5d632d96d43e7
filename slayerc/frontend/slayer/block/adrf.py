"""Adaptive resonate-and-fire (phase spike) blocks (``slayer.block.adrf``).

Each block is its ``base.Abstract*`` class with adaptive resonate-and-fire (phase spike) neurons
and complex (real, imag) synapses (built by :func:`slayerc.frontend.slayer.block._family.family`);
see :mod:`slayerc.frontend.slayer.block.base` for the forward and export rules.
"""

from __future__ import annotations

from ..neuron import adrf as _neuron
from ..synapse import complex as _synapses
from ._family import family, mixin_of

__all__ = [
    "Input", "Flatten", "Average", "TimeDecimation", "Dense", "Conv", "ConvT", "Pool",
    "Unpool", "KWTA", "Recurrent",
]

(Input, Flatten, Average, TimeDecimation, Dense, Conv, ConvT, Pool, Unpool, KWTA,
 Recurrent) = family(
    __name__, "adaptive resonate-and-fire (phase spike)", _neuron.Neuron, _synapses, __all__,
    mixin="AbstractADRF")
AbstractADRF = mixin_of(Dense)
"""Family settings of every block here that has a neuron (lava-dl's base class)."""
