"""What a deployment target can hold: bit widths, scales, delay limits, layer and neuron types.

One frozen :class:`Target` per target keeps the limits in one place (DESIGN.md "Targets",
contract 3); passes (``legalize-delay``, ``legalize-quant``) and the hdf5 writer read them
instead of scattering constants.  Units follow ``spec/netx-hdf5.md``: a weight, threshold or
bias of ``v`` slayer units is the integer ``v·w_scale`` in a netlist, a decay ``α`` is
``α·2^decay_bits``, and neuron state is held ``×state_scale`` (``w_scale·64``) in ``state_bits``
signed bits.

* ``loihi2``: what lava-dl netx 0.6 loads and Loihi 2 runs: layers input, dense, dense_rec, conv,
  flatten; CUBA, SDNN, RF, RF_IZ neurons; axonal delays of at most 62 steps on dense layers only.
* ``slayerc``: every op of the IR, for slayerc's own fixed-point runtime (same bit widths,
  delays of any length on any layer).
* :func:`generic` builds a target with other bit widths (for experiments and tests).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["LOIHI2", "SLAYERC", "TARGETS", "Target", "generic", "get"]


@dataclass(frozen=True)
class Target:
    """Limits of one target.  ``None`` in a set or limit means "anything".

    Weights are an 8-bit signed mantissa ``m`` in ``[-2^(b-1), 2^(b-1) - 1]`` times
    ``weight_step`` netlist units (lava-dl's ``quantize_8bit``: even integers in [-256, 254],
    i.e. multiples of 2/64 in slayer units), and a per-layer exponent in ``weight_exp_range``
    that ``legalize-quant`` folds into the layer's weights, threshold and bias (netx has no
    weight-exponent key: it derives its own exponent from the integers it reads).
    """

    name: str
    weight_bits: int = 8
    weight_step: int = 2
    weight_exp_range: tuple[int, int] = (-8, 7)
    decay_bits: int = 12
    state_bits: int = 24
    #: ``vThMant`` is unsigned and ``vThMant << 6`` must fit the signed state: 17 bits.
    threshold_bits: int = 17
    #: Lava LIF ``bias_mant`` (signed, applied ``<< 6``).
    bias_bits: int = 13
    #: Payload bits of a graded spike / sigma-delta message.
    message_bits: int = 24
    max_delay: int | None = 62
    w_scale: int = 64
    state_scale: int = 4096
    #: hdf5 layer types the netlist can hold.
    layers: frozenset[str] | None = None
    #: IR neuron ops (plus SDNN ``axon.delta``/``dendrite.sigma``) the netlist can hold.
    neurons: frozenset[str] | None = None
    #: IR synapse ops whose layers can carry an axonal delay.
    delay_synapses: frozenset[str] | None = None
    #: Every synapse holds its input one step and biases sit on neurons (Lava's Dense/Conv and
    #: LIF): ``legalize-layers`` puts a graph in that form.  False: the model's own timing runs.
    lava_layers: bool = False

    # -- derived limits (integers in netlist units) ----------------------------------------
    @property
    def weight_range(self) -> tuple[int, int]:
        """Smallest and largest netlist weight integer: ``[-256, 254]`` for 8 bits, step 2."""
        half = 1 << (self.weight_bits - 1)
        return -half * self.weight_step, (half - 1) * self.weight_step

    @property
    def decay_unit(self) -> int:
        """``2^decay_bits``: a decay of 1.0 (full) is this integer."""
        return 1 << self.decay_bits

    @property
    def threshold_max(self) -> int:
        """Largest ``vThMant``."""
        return (1 << self.threshold_bits) - 1

    @property
    def bias_range(self) -> tuple[int, int]:
        """Smallest and largest ``bias_mant``."""
        half = 1 << (self.bias_bits - 1)
        return -half, half - 1

    def holds_delay_on(self, synapse_op: str) -> bool:
        """Whether a layer of this synapse op can carry an axonal delay."""
        return self.delay_synapses is None or synapse_op in self.delay_synapses

    def holds_neuron(self, op: str) -> bool:
        """Whether this neuron op can be stored."""
        return self.neurons is None or op in self.neurons

    def replace(self, **changes: Any) -> Target:
        """A copy with some limits changed."""
        return dataclasses.replace(self, **changes)


LOIHI2 = Target(
    name="loihi2",
    layers=frozenset({"input", "dense", "dense_rec", "conv", "flatten"}),
    neurons=frozenset({"neuron.cuba", "neuron.sigma_delta", "neuron.rf", "neuron.rf_iz",
                       "axon.delta", "dendrite.sigma"}),
    delay_synapses=frozenset({"synapse.dense"}),
    lava_layers=True,
)
SLAYERC = Target(name="slayerc", max_delay=None)
TARGETS: dict[str, Target] = {"loihi2": LOIHI2, "slayerc": SLAYERC}


def generic(name: str = "generic", **bit_widths: Any) -> Target:
    """A target holding every op, with the given bit widths (e.g. ``weight_bits=4``)."""
    return Target(name=name, **bit_widths)


def get(name: str) -> Target:
    """The registered target called ``name`` (raises ``KeyError`` naming the known ones)."""
    if name not in TARGETS:
        raise KeyError(f"unknown target {name!r}; known targets: {', '.join(TARGETS)}")
    return TARGETS[name]


def on_grid(values: np.ndarray, unit: float) -> bool:
    """True when every ``value·unit`` is a whole number (within float32 storage noise)."""
    a = np.asarray(values, dtype=np.float64) * unit
    return bool(np.all(np.abs(a - np.rint(a)) <= 1e-6 * np.maximum(1.0, np.abs(a))))
