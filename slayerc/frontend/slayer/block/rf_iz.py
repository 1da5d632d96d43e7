"""Resonate-and-fire Izhikevich blocks (``slayer.block.rf_iz``).

Each block is its ``base.Abstract*`` class with resonate-and-fire Izhikevich neurons and complex
(real, imag) synapses (built by :func:`slayerc.frontend.slayer.block._family.family`); see
:mod:`slayerc.frontend.slayer.block.base` for the forward and export rules.
"""

from __future__ import annotations

from ..neuron import rf_iz as _neuron
from ..synapse import complex as _synapses
from ._family import family, mixin_of

__all__ = [
    "Input", "Flatten", "Average", "Affine", "TimeDecimation", "Dense", "Conv", "ConvT",
    "Pool", "Unpool", "KWTA", "Recurrent",
]

(Input, Flatten, Average, Affine, TimeDecimation, Dense, Conv, ConvT, Pool, Unpool, KWTA,
 Recurrent) = family(
    __name__, "resonate-and-fire Izhikevich", _neuron.Neuron, _synapses, __all__,
    mixin="AbstractRFIz")
AbstractRFIz = mixin_of(Dense)
"""Family settings of every block here that has a neuron (lava-dl's base class)."""
