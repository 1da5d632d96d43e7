"""What a deployment target can hold: bit widths, scales, delay limits, layer and neuron types.

One frozen :class:`Target` per target keeps the limits in one place (DESIGN.md "Targets",
contract 3); passes (``legalize-delay``, ``legalize-quant``) and the hdf5 writer read them
instead of scattering constants.  Units follow ``spec/netx-hdf5.md``: a weight, threshold or
bias of ``v`` slayer units is the integer ``v·w_scale`` in a netlist, a decay ``α`` is
``α·2^decay_bits``, and neuron state is held ``×state_scale`` (``w_scale·64``) in ``state_bits``
signed bits.

* ``loihi2``: what lava-dl netx 0.6 loads and Loihi 2 runs: layers input, dense, dense_rec, conv,
  flatten; CUBA, SDNN, RF, RF_IZ neurons; axonal delays of at most 62 steps on dense layers only;
  16-bit graded messages (netx's SDNN setting) and Loihi 2's unsigned 12-bit decay fields.
* ``slayerc``: every op of the IR, for slayerc's own fixed-point runtime (same bit widths,
  delays of any length on any layer, 24-bit messages, no decay fields: any decay in [0, 1]).
* :func:`generic` builds a target with other bit widths (for experiments and tests).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["DECAY_SCALE", "LOIHI2", "SLAYERC", "STATE_SCALE", "TARGETS", "WEIGHT_MANT",
           "W_SCALE", "Misfit", "Target", "generic", "get"]

# slayer's fixed-point scales (spec/netx-hdf5.md §4): the one home of these numbers
DECAY_SCALE = 1 << 12
"""Decays are 12-bit fractions: slayer stores ``α·4096`` (its ``p_scale``)."""
W_SCALE = 64
"""slayer's default weight scale ``w_scale``: a weight ``v`` is the netlist integer ``v·64``."""
STATE_SCALE = W_SCALE << 6
"""slayer's default state scale ``s_scale = 64·w_scale`` (4096)."""
WEIGHT_MANT = (-256, 254)
"""slayer's 8-bit weight quantizer: even integers in ``[-256, 254]`` (×``1/w_scale``)."""


@dataclass(frozen=True)
class Misfit:
    """A decay a chip field cannot hold (see :meth:`Target.decay_misfits`)."""

    attr: str
    field: str
    value: float  #: the first value that does not fit (IR units)
    field_value: float  #: what the loader puts in the field for it (an integer)
    count: int  #: how many entries do not fit ...
    size: int  #: ... of how many
    fits: str  #: the IR values of ``attr`` the field holds, e.g. ``[1/4096, 4096/4096]``


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
    #: Signed payload bits of a graded spike / sigma-delta message, in netlist integers (units
    #: of 2^-12: Lava's ``s_out``).  Default 24: what a Loihi 2 graded spike can carry.
    #: ``loihi2`` uses 16: netx builds every SDNN layer with 16-bit messages (spec §5.1) and
    #: ignores ``gradedSpike``, so those are the only graded messages its netlists send, and a
    #: 24-bit limit would pass messages netx's synapses misread on the chip.  Messages depend
    #: on the data, so the fixed-point runtime checks them as it runs (``simulate(target=)``).
    message_bits: int = 24
    #: Range of the chip's unsigned decay fields (Loihi 2: 12 bits, 0..4095), in units of
    #: ``2^-decay_bits``.  None: no chip; every decay in [0, 1] runs (slayerc's own runtime).
    decay_field_range: tuple[int, int] | None = None
    #: ``(IR attribute, chip field, offset)``: the loader puts ``netlist integer + offset`` in
    #: that field.  netx: CUBA ``du = iDecay − 1`` (Lava's LIF adds ``ds_offset = 1`` back),
    #: ``dv = vDecay``; RF/RF_IZ sin/cos decays as stored (spec §5.1).
    decay_fields: tuple[tuple[str, str, int], ...] = ()
    max_delay: int | None = 62
    w_scale: int = W_SCALE
    state_scale: int = STATE_SCALE
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

    def decay_misfits(self, decays: Mapping[str, float | np.ndarray]) -> list[Misfit]:
        """The decays (IR values by attribute, on the grid) whose chip field cannot hold them.

        Each mapped attribute is checked as ``integer + offset`` against ``decay_field_range``;
        a resonator's ``(sin_decay, cos_decay)`` vector must also be at most the field's
        maximum long (slayer's export scales it down to that: a longer one does not decay).
        """
        if self.decay_field_range is None:
            return []
        (lo, hi), u, out = self.decay_field_range, self.decay_unit, []
        ints = {a: np.atleast_1d(np.rint(np.asarray(v, np.float64) * u))
                for a, v in decays.items()}
        for attr, field_, off in self.decay_fields:
            a = ints.get(attr, np.zeros(0))
            bad = a[(a + off < lo) | (a + off > hi)]
            if bad.size:
                v = float(bad.flat[0])
                out.append(Misfit(attr, field_, v / u, v + off, bad.size, a.size,
                                  f"[{lo - off}/{u}, {hi - off}/{u}]"))
        mapped = {attr for attr, _, _ in self.decay_fields}
        if {"sin_decay", "cos_decay"} <= mapped & set(ints):
            length = np.hypot(ints["sin_decay"], ints["cos_decay"]).reshape(-1)
            bad = length[length > hi]
            if bad.size:
                out.append(Misfit("|(sin_decay, cos_decay)|", "the decay vector's length",
                                  float(bad[0]) / u, round(float(bad[0]), 1), bad.size,
                                  length.size, f"[0, {hi}/{u}]"))
        return out

    @property
    def message_range(self) -> tuple[int, int]:
        """Smallest and largest graded-message integer (signed ``message_bits``)."""
        half = 1 << (self.message_bits - 1)
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
    message_bits=16,  # netx's SDNN messages, not the chip's 24 (see Target.message_bits)
    decay_field_range=(0, 4095),
    decay_fields=(("current_decay", "du", -1), ("voltage_decay", "dv", 0),
                  ("sin_decay", "sin_decay", 0), ("cos_decay", "cos_decay", 0)),
)
SLAYERC = Target(name="slayerc", max_delay=None)
TARGETS: dict[str, Target] = {"loihi2": LOIHI2, "slayerc": SLAYERC}


def generic(name: str = "generic", **bit_widths: Any) -> Target:
    """A target holding every op, with the given bit widths (e.g. ``weight_bits=4``)."""
    return Target(name=name, **bit_widths)


def get(name: str, error: type[Exception] = KeyError) -> Target:
    """The registered target called ``name``; else raises ``error`` naming the known ones
    (callers pass their own :class:`~slayerc.errors.SlayerError` subclass)."""
    if name not in TARGETS:
        raise error(f"unknown target {name!r}; known targets: {', '.join(TARGETS)}")
    return TARGETS[name]


def on_grid(values: np.ndarray, unit: float) -> bool:
    """True when every ``value·unit`` is a whole number (within float32 storage noise)."""
    a = np.asarray(values, dtype=np.float64) * unit
    return bool(np.all(np.abs(a - np.rint(a)) <= 1e-6 * np.maximum(1.0, np.abs(a))))
