"""One factory for the neuron-family block modules (``block.cuba``, ``block.alif``, ``block.rf``…).

In lava-dl every neuron family has a block module whose blocks are the same ``base.Abstract*``
classes with another neuron class and synapse kind.  :func:`family` builds that set once per
module: each block is a real class named as in lava-dl, defined in the calling module (so
``repr``, pickling and ``isinstance`` checks behave as for hand-written classes), whose
family settings (``neuron_cls``, ``synapses``, ``delay_shift_default``) come from one mixin.
Flatten/Average/TimeDecimation need no neuron and get no mixin.  The sigma-delta module adds
blocks of its own and is written by hand.
"""

from __future__ import annotations

from collections.abc import Sequence
from types import ModuleType

from . import base

#: Block name -> (abstract base, takes the family mixin, docstring with ``{what}``/``{What}``).
KINDS: dict[str, tuple[type, bool, str]] = {
    "Input": (base.AbstractInput, True, "Input block: quantized (optionally scaled and shifted) "
              "input through a {what} neuron."),
    "Flatten": (base.AbstractFlatten, False, "Flatten block: ``NCHWT`` → ``N(C·H·W)T``."),
    "Average": (base.AbstractAverage, False,
                "Average block: mean over ``num_outputs`` groups of neurons."),
    "Affine": (base.AbstractAffine, True,
               "Affine block: dense synapse and {what} dynamics without spikes."),
    "TimeDecimation": (base.AbstractTimeDecimation, False,
                       "Time decimation block: mean over bins of ``factor`` steps."),
    "Dense": (base.AbstractDense, True, "{What} dense block."),
    "Conv": (base.AbstractConv, True, "{What} convolution block."),
    "ConvT": (base.AbstractConvT, True, "{What} transposed convolution block."),
    "Pool": (base.AbstractPool, True, "{What} sum-pooling block."),
    "Unpool": (base.AbstractUnpool, True, "{What} unpooling block."),
    "KWTA": (base.AbstractKWTA, True, "{What} K-winners-take-all block."),
    "Recurrent": (base.AbstractRecurrent, True, "{What} recurrent dense block."),
}


def family(module: str, what: str, neuron_cls: type, synapses: ModuleType,
           names: Sequence[str], delay_shift_default: bool = True,
           mixin: str = "_Family") -> tuple[type, ...]:
    """The block classes ``names`` (keys of :data:`KINDS`, in that order) of one family.

    ``module`` is the defining module's ``__name__``; ``what`` names the neuron in docstrings
    (e.g. ``"CUBA-LIF"``); ``synapses`` is ``synapse.layer`` (real) or ``synapse.complex``;
    ``mixin`` names the family-settings class, the first base of every block that takes it
    (lava-dl's ``AbstractCuba``, ``AbstractALIF``, …; read it back with :func:`mixin_of`).
    """
    settings = type(mixin, (), {
        "__doc__": f"Family settings: {what} neurons, {synapses.__name__.rsplit('.', 1)[-1]} "
                   "synapses.",
        "__module__": module, "__qualname__": mixin, "neuron_cls": neuron_cls,
        "synapses": synapses, "delay_shift_default": delay_shift_default})
    words = {"what": what, "What": what[:1].upper() + what[1:]}
    out = []
    for name in names:
        abstract, mixed, doc = KINDS[name]
        bases = (settings, abstract) if mixed else (abstract,)
        out.append(type(name, bases, {"__doc__": doc.format(**words), "__module__": module,
                                      "__qualname__": name}))
    return tuple(out)


def mixin_of(block_cls: type) -> type:
    """The family-settings class of a block class made by :func:`family` (e.g. ``Dense``)."""
    return block_cls.__bases__[0]
