"""The op vocabulary of the slayerc IR.

One frozen dataclass per SNN primitive; the docstring of each gives its equations in slayer units
over time steps ``t`` (the exact integer arithmetic is in ``spec/slayer-dynamics.md`` and is
implemented once in ``slayerc.runtime``).  ``x`` is the input sequence, ``y`` the output.
Shapes are per step, without batch and time.  Neuron parameters are a scalar (shared) or a
``ParamRef`` to an array of shape ``(C,)`` (per channel) or the node's shape (per neuron).

The classes live in :mod:`~slayerc.ir.ops_layers` (io, synapses), :mod:`~slayerc.ir.ops_neurons`
(neurons, axons, dendrites) and :mod:`~slayerc.ir.ops_tensor` (tensor ops, norms), with the shared
rules in :mod:`~slayerc.ir.op_rules`; this module is the one place to import them from.
"""

from __future__ import annotations

from slayerc.ir.op_rules import pool_is_per_channel
from slayerc.ir.ops_layers import (
    KWTA,
    Conv,
    ConvTranspose,
    Dense,
    Input,
    Output,
    Pool,
    Unpool,
)
from slayerc.ir.ops_neurons import (
    ACTIVATIONS,
    LI,
    RF,
    Adrf,
    AdrfIz,
    Alif,
    Cuba,
    Delay,
    Delta,
    Dropout,
    RFIz,
    Shift,
    Sigma,
    SigmaDelta,
)
from slayerc.ir.ops_tensor import (
    Add,
    Affine,
    Average,
    BatchNorm,
    Concat,
    Flatten,
    MeanOnlyNorm,
    Quantize,
    Reshape,
    WeightScaleNorm,
)

__all__ = [
    "ACTIVATIONS", "KWTA", "NEURON_OPS", "RF", "SYNAPSE_OPS", "Add", "Adrf", "AdrfIz", "Affine",
    "Alif", "Average", "BatchNorm", "Concat", "Conv", "ConvTranspose", "Cuba", "Delay", "Delta",
    "Dense", "Dropout", "Flatten", "Input", "LI", "MeanOnlyNorm", "Output", "Pool", "Quantize",
    "RFIz", "Reshape", "Shift", "Sigma", "SigmaDelta", "Unpool", "WeightScaleNorm",
    "pool_is_per_channel",
]

#: Neuron op names, for analyses that count neurons.
NEURON_OPS = frozenset(c.OP for c in (Cuba, Alif, RF, RFIz, Adrf, AdrfIz, SigmaDelta))
#: Weighted synapse op names.
SYNAPSE_OPS = frozenset(c.OP for c in (Dense, Conv, ConvTranspose, Pool, Unpool, KWTA))
