"""CUBA-LIF blocks (``slayer.block.cuba``).

Each block is its ``base.Abstract*`` class with CUBA-LIF neurons and real synapses (built by
:func:`slayerc.frontend.slayer.block._family.family`); see
:mod:`slayerc.frontend.slayer.block.base` for the forward and export rules.
"""

from __future__ import annotations

from ..neuron import cuba as _neuron
from ..synapse import layer as _synapses
from ._family import family, mixin_of

__all__ = [
    "Input", "Flatten", "Average", "Affine", "TimeDecimation", "Dense", "Conv", "ConvT",
    "Pool", "Unpool", "KWTA", "Recurrent",
]

(Input, Flatten, Average, Affine, TimeDecimation, Dense, Conv, ConvT, Pool, Unpool, KWTA,
 Recurrent) = family(
    __name__, "CUBA-LIF", _neuron.Neuron, _synapses, __all__,
    mixin="AbstractCuba")
AbstractCuba = mixin_of(Dense)
"""Family settings of every block here that has a neuron (lava-dl's base class)."""
