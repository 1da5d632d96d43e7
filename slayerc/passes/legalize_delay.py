"""``legalize-delay``: whole-step delays, at most the target's maximum, on layers that hold them.

1. Float delays (learnt by lava-dl's ``axon.Delay``, or hand-written) become whole steps by
   ``floor``, as lava-dl's exporter does.
2. A delay on a layer type the target cannot delay (netx ignores conv delays) moves downstream
   onto the next ``synapse.dense``, over neurons without bias (a neuron at rest with no input
   stays at rest, so it commutes with a delay), ``axon.shift`` and ``tensor.flatten`` (per-channel
   delays repeat over H·W): equal delays become that dense layer's output delay (merged with its
   own), unequal ones its input-side per-column delay right before it (netx's per-column
   delays), in Lava's form (``axon.shift → axon.delay → synapse.dense → neuron``) or slayer's
   (``tensor.flatten → axon.delay → synapse.dense → neuron → axon.shift``), when the layer has
   in ≠ out features and no delay of its own (an equal one joins every column).  Otherwise a
   :class:`PassError` names the node and says what to do.
3. A delay longer than ``max`` is split into the part the layer keeps and ``n`` relay layers
   appended after the delayed spikes, each ``synapse.dense`` (identity, weight 1.0) →
   ``neuron.cuba`` (relay) → ``axon.shift`` (one step) → ``axon.delay`` (≤ ``max``).  Per channel
   the total stays exactly ``d = d0 + Σ (1 + d_i)``; each relay adds at least one step, so every
   channel needs ``d ≥ n``.  In Lava's form (``synapse → axon.delay → neuron``) the layer keeps
   ``d0`` before its neuron and the relays follow the neuron, which must have no bias (the bias
   would act during the moved steps: spec §7 bias head-start) and not be recurrent.

The relay neuron reproduces its input spike train exactly in float and in fixed point (spec §7,
Lava LIF): ``iDecay = 4096`` (``du = 4095``) so ``u[t] = a_in[t]·64``; the identity weight 64 gives
``a_in ∈ {0, 64}`` (netx's ``optimize_weight_bits`` stores it as 128 >> 1: exact), so
``u ∈ {0, 4096}``; ``vDecay = 4095`` (fits the 12-bit hardware field, unlike 4096) gives
``v[t] = (v[t−1] >> 12) + u[t] = u[t]`` because ``v[t−1]`` is 0 after a spike and
``≤ vth·64 = 2048 < 4096`` otherwise; it spikes iff ``v > 32·64``, i.e. iff an input spike
arrived at ``t``.  No bias, so Lava's bias head-start does not apply.

Before (``max = 62``)::

    %s = axon.shift(%n) : f32[4]
    %d = axon.delay(%s) {delay = 150} : f32[4]
After::

    %d = axon.delay(%s) {delay = 62, max_delay = 62} : f32[4]
    %d_relay1_syn = synapse.dense(%d) {weight = @d_relay1_syn.weight} : f32[4]
    %d_relay1 = neuron.cuba(%d_relay1_syn) {current_decay = 1.0, threshold = 0.5, ...} : f32[4]
    %d_relay1_shift = axon.shift(%d_relay1) : f32[4]
    %d_relay1_delay = axon.delay(%d_relay1_shift) {delay = 62, max_delay = 62} : f32[4]
    ... relay 2 carries the last 150 − 2 − 124 = 24 steps

Requires ``shapes``; establishes ``delays-legal``; invalidates nothing (relay values are on the
quantization grid).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from slayerc.errors import PassError
from slayerc.ir import ops
from slayerc.ir.core import Graph, Op, ParamRef
from slayerc.ir.target import LOIHI2, Target
from slayerc.ir.target import get as get_target
from slayerc.passes.delay_moves import insert_after, move_to_dense
from slayerc.passes.report import Note, Report, note
from slayerc.passes.rewrite import Rewriter

NAME = "legalize-delay"
SUMMARY = "floor float delays, split delays over the maximum into relay layers, move conv delays"
REQUIRES = frozenset({"shapes"})
ESTABLISHES = frozenset({"delays-legal"})
INVALIDATES: frozenset[str] = frozenset()

#: Binary spiking neurons whose output a relay can reproduce.
SPIKING = frozenset({"neuron.cuba", "neuron.alif", "neuron.rf", "neuron.rf_iz", "neuron.adrf",
                     "neuron.adrf_iz"})
RELAY = {"threshold": 0.5, "current_decay": 1.0, "voltage_decay": 4095 / 4096}


@dataclass(frozen=True)
class Options:
    """``max``: longest delay a layer may hold; ``target``: which layer types may hold one."""

    max: int = LOIHI2.max_delay  # type: ignore[assignment]
    target: str = "loihi2"


def run(g: Graph, opts: Options = Options()) -> Graph:
    """Return ``g`` with every delay legal for the target (see the module docstring)."""
    return run_with_report(g, opts)[0]


def run_with_report(g: Graph, opts: Options = Options()) -> tuple[Graph, Report]:
    """:func:`run`, plus a note per changed delay."""
    if opts.max < 0:
        raise PassError(f"legalize-delay: max must be >= 0, got {opts.max}")
    target, rw, notes = get_target(opts.target, PassError), Rewriter(g), []
    delays = [n.name for n in g if n.OP == "axon.delay"]
    for name in delays:
        _floor(rw, name, notes)
    for name in delays:
        if name in rw.nodes:  # (a move can absorb a later delay)
            _move_off(rw, name, target, notes)
    for name in delays:
        if name in rw.nodes:
            _split(rw, name, opts.max, notes)
    return rw.finish(ESTABLISHES, INVALIDATES), Report(NAME, tuple(notes))


def delays_of(rw: Rewriter, node: Op) -> np.ndarray:
    """The delays of an ``axon.delay`` as an int64 array (shape ``()`` for an int)."""
    value = node.delay  # type: ignore[attr-defined]
    if isinstance(value, ParamRef):
        return np.asarray(rw.params[value.name]).astype(np.int64)
    return np.asarray(int(value), np.int64)


def _floor(rw: Rewriter, name: str, notes: list[Note]) -> None:
    node = rw.nodes[name]
    ref = node.delay  # type: ignore[attr-defined]
    if not isinstance(ref, ParamRef):
        return
    arr = np.asarray(rw.params[ref.name])
    if arr.dtype.kind not in "f" or np.array_equal(arr, np.floor(arr)):
        return
    rw.nodes[name] = node.replace(delay=rw.put(ref, f"{name}.delay", np.floor(arr)))
    notes.append(note(f"floored the fractional delays of {node.describe()} to whole steps"))


def _move_off(rw: Rewriter, name: str, target: Target, notes: list[Note]) -> None:
    node = rw.nodes[name]
    host = _host(rw, node)
    if host is None or target.holds_delay_on(host.OP):
        return
    if not np.any(delays_of(rw, node)):
        rw.bypass(name)
        notes.append(note(f"removed {node.describe()}: all its delays are 0"))
        return
    notes.append(note(move_to_dense(rw, node, host, target.name, delays_of(rw, node))))


def _host(rw: Rewriter, node: Op) -> Op | None:
    """The synapse of the layer whose delay this is (as the hdf5 writer groups it), if any."""
    src = rw.nodes[node.inputs[0]]
    if src.OP in ops.SYNAPSE_OPS:
        return src  # Lava form: synapse → delay → neuron
    for _ in range(3):  # slayer form: synapse → neuron → shift → delay
        if src.OP not in ("axon.shift", *ops.NEURON_OPS) or not src.inputs:
            return None
        src = rw.nodes[src.inputs[0]]
        if src.OP in ops.SYNAPSE_OPS:
            return src
    return None


# ----------------------------------------------------------------------------- splitting


def _split(rw: Rewriter, name: str, max_delay: int, notes: list[Note]) -> None:
    node = rw.nodes[name]
    d = delays_of(rw, node)
    if not d.size or int(d.max()) <= max_delay:
        rw.nodes[name] = node.replace(max_delay=max_delay)
        return
    n = -(-(int(d.max()) - max_delay) // (max_delay + 1))
    anchor = _relay_anchor(rw, node, max_delay, n)
    if int(d.min()) < n:
        raise PassError(f"{node.describe()}: delay {int(d.max())} exceeds max {max_delay} and "
                        f"needs {n} relay layers, which add at least {n} steps to every "
                        f"channel, but some channel has delay {int(d.min())}; make the shorter "
                        f"delays at least {n} or the longest at most {max_delay}")
    parts = _parts(d - n, max_delay, n + 1)
    rw.nodes[name] = node.replace(delay=_delay_value(rw, _ref(node), f"{name}.delay", parts[0]),
                                  max_delay=max_delay)
    chain = _relays(rw, node, anchor, parts[1:], max_delay)
    insert_after(rw, anchor.name, chain)
    notes.append(note(f"split delay {int(d.max())} of {node.describe()} into {parts[0].max()} "
                      f"on the layer and {n} relay layer{'s' * (n > 1)} after %{anchor.name}"))


def _relay_anchor(rw: Rewriter, node: Op, max_delay: int, n: int) -> Op:
    """The node whose binary spikes the relays delay: the delay itself or, in Lava form, the
    neuron after it.  Raises PassError when neither carries binary spikes."""
    src = rw.nodes[node.inputs[0]]
    while src.OP in ("axon.shift", "axon.delay"):
        src = rw.nodes[src.inputs[0]]
    if src.OP in SPIKING and not getattr(src, "graded", False):
        return node
    user = rw.only_user(node.name)
    why = (f"{node.describe()}: delay exceeds max {max_delay} and needs {n} relay layer(s), "
           "which can only repeat binary spikes of a neuron")
    if src.OP in ops.SYNAPSE_OPS and user is not None and user.OP in SPIKING \
            and not getattr(user, "graded", False):
        if getattr(user, "bias", None) is not None or getattr(user, "persistent", False):
            raise PassError(f"{why}; it delays the input of {user.describe()}, which has a bias "
                            "(or persistent state), so the excess cannot move past that neuron "
                            "(Lava integrates the bias during the moved steps: spec §7 bias "
                            f"head-start); shorten the delay to at most {max_delay}")
        return user
    if src.OP == "tensor.add":
        raise PassError(f"{why}; this one is inside a recurrent layer; shorten it to at most "
                        f"{max_delay}")
    raise PassError(f"{why}, not the output of %{src.name} ({src.OP}); shorten it to at most "
                    f"{max_delay} or use target slayerc with a larger max")


def _parts(rest: np.ndarray, max_delay: int, k: int) -> list[np.ndarray]:
    """Split per-channel delays into ``k`` parts of at most ``max_delay`` each, greedily."""
    out = []
    for _ in range(k):
        take = np.minimum(rest, max_delay)
        out.append(take)
        rest = rest - take
    assert not np.any(rest), "relay capacity"
    return out


def _delay_value(rw: Rewriter, old: ParamRef | None, base: str, d: np.ndarray) -> int | ParamRef:
    """Equal delays as an int, others as a parameter (``old`` is overwritten if unshared)."""
    if d.ndim == 0 or np.all(d == d.flat[0]):
        return int(d.flat[0])
    return rw.put(old, base, d.astype(np.float32))


def _ref(node: Op) -> ParamRef | None:
    value = getattr(node, "delay", None)
    return value if isinstance(value, ParamRef) else None


def _relays(rw: Rewriter, node: Op, anchor: Op, parts: list[np.ndarray],
            max_delay: int) -> list[Op]:
    shape = anchor.shape
    if shape is None or len(shape) != 1:
        raise PassError(f"{node.describe()}: relay layers are dense, but the delayed output "
                        f"of %{anchor.name} has shape {list(shape or ())}; shorten the delay "
                        f"to at most {max_delay}")
    eye = np.eye(shape[0], dtype=np.float32)
    chain: list[Op] = []
    prev, loc = anchor.name, node.loc
    for i, part in enumerate(parts, 1):
        base = f"{node.name}_relay{i}"
        w = rw.put(None, f"{base}_syn.weight", eye)
        made = [ops.Dense(name=f"{base}_syn", inputs=(prev,), weight=w),
                ops.Cuba(name=base, inputs=(f"{base}_syn",), **RELAY),  # type: ignore[arg-type]
                ops.Shift(name=f"{base}_shift", inputs=(base,))]
        if np.any(part):
            made.append(ops.Delay(name=f"{base}_delay", inputs=(f"{base}_shift",),
                                  delay=_delay_value(rw, None, f"{base}_delay.delay", part),
                                  max_delay=max_delay))
        chain += [m.replace(shape=shape, dtype="f32", loc=loc) for m in made]
        prev = chain[-1].name
    return chain

