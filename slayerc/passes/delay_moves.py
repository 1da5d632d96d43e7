"""Moving an axonal delay downstream onto the next dense layer (a helper of ``legalize-delay``).

Not a pass.  A delay commutes with ``axon.shift``, with ``tensor.flatten`` (per-channel delays
repeat over H·W), with a neuron that has no bias and no carried-over state (at rest with no
input it stays at rest, so delaying its input delays its output), and, when it is the same for
every neuron of a channel, with a per-channel linear synapse without bias: a sum pool or a
depthwise conv (the form ``lower-pool`` gives a pool), since ``Σ_window x_c[t − d_c] =
(Σ_window x_c)[t − d_c]``.  An equal delay on every input
of a ``synapse.dense`` without bias commutes with it too, so it can join the dense layer's own
output delay; unequal delays stay on the input side, right before the dense synapse, which netx
holds per column when the layer is in Lava's form (``axon.shift → axon.delay → synapse.dense``)
or in slayer's (``… → axon.delay → synapse.dense → neuron → axon.shift``, the neuron without
bias) and holds no other delay (one equal for every output joins the columns).
"""

from __future__ import annotations

import numpy as np

from slayerc.errors import PassError
from slayerc.ir import ops
from slayerc.ir.core import Op, ParamRef
from slayerc.passes.rewrite import Rewriter

PASSABLE = frozenset({"axon.shift", "tensor.flatten"})


def move_to_dense(rw: Rewriter, node: Op, host: Op, target: str, d: np.ndarray) -> str:
    """Move the delay ``node`` (of the layer of ``host``) onto the next dense layer.

    Returns a note saying where it went; raises :class:`PassError` when no exact move exists.
    """
    why = (f"{node.describe()}: target {target} cannot hold a delay on a {host.OP} layer "
           "(netx ignores it)")
    prev, per, cur = node, d, node
    while True:
        user = rw.only_user(cur.name)
        if user is None or user.OP == "synapse.dense":
            break
        if not _passable(user, rw):
            raise PassError(f"{why}, and it cannot move past {user.describe()} to a dense "
                            "layer (only axon.shift, tensor.flatten, neurons without bias and "
                            "per-channel pools / depthwise convs without bias commute with it); "
                            "remove the delay or use target slayerc")
        if user.OP == "tensor.flatten":
            per = per if per.ndim == 0 else _per_feature(per, cur.shape or ())
        elif user.OP in CHANNELWISE:
            per = _per_channel(per, cur.shape or (), user, why)
        prev = cur = user
    if user is None:
        raise PassError(f"{why}, and no single dense layer follows it; remove the delay or use "
                        "target slayerc")
    rw.bypass(node.name)
    if per.ndim == 0 or np.all(per == per.flat[0]):
        return _place_uniform(rw, node, user, int(per.flat[0]), why)
    return _place_columns(rw, node, user, prev if prev is not node else None, per, why)


CHANNELWISE = frozenset({"synapse.pool", "synapse.conv"})


def _passable(n: Op, rw: Rewriter | None = None) -> bool:
    if n.OP in PASSABLE:
        return True
    if n.OP in CHANNELWISE:
        return rw is not None and _channelwise(n, rw)
    return (n.OP in ops.NEURON_OPS and getattr(n, "bias", None) is None
            and not getattr(n, "persistent", False))


def _channelwise(n: Op, rw: Rewriter) -> bool:
    """A synapse whose output channel ``c`` reads input channel ``c`` alone, with no bias: a
    sum pool, or a depthwise conv (one input channel per group, one output per group)."""
    if getattr(n, "bias", None) is not None or getattr(n, "weight_imag", None) is not None:
        return False
    if n.OP == "synapse.pool":
        return True  # shape inference refuses pools whose windows read two channels
    w = rw.params[n.weight.name].shape  # type: ignore[union-attr]
    return w[1] == 1 and w[0] == getattr(n, "groups", 1)


def _per_channel(d: np.ndarray, shape: tuple[int, ...], user: Op, why: str) -> np.ndarray:
    """Delays as one per channel, to pass a per-channel synapse (which mixes H and W)."""
    if d.ndim <= 1:
        return d
    flat = d.reshape(d.shape[0], -1)
    if not np.all(flat == flat[:, :1]):
        raise PassError(f"{why}, and its delays differ within a channel, so they cannot move "
                        f"past {user.describe()}, which mixes the neurons of a channel; use one "
                        "delay per channel, remove the delay or use target slayerc")
    return flat[:, 0]


def _per_feature(d: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Per-channel (C,) or per-neuron (C, H, W) delays as one per flattened feature."""
    if d.shape == tuple(shape):
        return d.reshape(-1)
    return np.repeat(d, int(np.prod(shape[1:])) if len(shape) > 1 else 1)


def _place_uniform(rw: Rewriter, node: Op, syn: Op, k: int, why: str) -> str:
    if getattr(syn, "bias", None) is not None:
        raise PassError(f"{why}; moving it past {syn.describe()} would delay that synapse's "
                        "bias too; remove the delay or use target slayerc")
    user = rw.only_user(syn.name)
    lava = rw.nodes[syn.inputs[0]].OP == "axon.shift"
    if user is not None and user.OP == "axon.delay":
        return _merge(rw, node, user, k)
    if user is not None and user.OP in ops.NEURON_OPS and lava:
        insert_after(rw, syn.name, [_delay(node, syn, k)])
        return f"moved {node.describe()} ({k} steps) onto dense layer %{syn.name}"
    shift = rw.only_user(user.name) if user is not None else None
    if user is None or shift is None or shift.OP != "axon.shift" or not _passable(user):
        raise PassError(f"{why}, and the dense layer %{syn.name} after it is neither in Lava's "
                        "form (axon.shift → synapse.dense → [axon.delay] → neuron) nor in "
                        "slayer's (synapse.dense → neuron without bias → axon.shift); remove "
                        "the delay or use target slayerc")
    after = rw.only_user(shift.name)
    if after is not None and after.OP == "axon.delay":
        return _merge(rw, node, after, k)
    insert_after(rw, shift.name, [_delay(node, shift, k)])
    return f"moved {node.describe()} ({k} steps) onto the output of dense layer %{syn.name}"


def _place_columns(rw: Rewriter, node: Op, syn: Op, prev: Op | None, per: np.ndarray,
                   why: str) -> str:
    """Unequal delays as the next dense layer's per-column (input-side) delays, right before
    it: ``axon.shift → axon.delay → synapse.dense → neuron`` (Lava's form) or ``… → axon.delay →
    synapse.dense → neuron → axon.shift`` (slayer's form, where the dense layer's one-step hold
    follows its neuron; without a bias the neuron commutes with that shift, so both forms are the
    same netx layer).  netx holds one delay vector per layer: the dense layer must carry no
    delay of its own, and in ≠ out features (netx reads an equal-length vector per output)."""
    w = rw.params[syn.weight.name]  # type: ignore[union-attr]
    problem = _columns_problem(rw, syn, prev, w.shape)
    if problem:
        raise PassError(f"{why}; its delays differ per channel, so they can only become the "
                        f"per-column input delays of the next dense layer %{syn.name}, "
                        f"but {problem}; make the delays equal, remove them or use target "
                        "slayerc")
    assert prev is not None
    own, merged = _own_delay(rw, syn), ""
    k = _uniform(rw, own) if own is not None else None
    if own is not None and k is not None:  # equal on every output = the same on every column
        per, merged = per + k, f", with the {k} steps of {own.describe()}"
        rw.bypass(own.name)
    elif own is not None:  # (checked by _columns_problem: the next layer's columns hold it)
        merged = f"; its own {own.describe()} becomes the next dense layer's column delays"
    ref = rw.put(None, f"{node.name}.delay", per.astype(np.float32))
    moved = ops.Delay(name=node.name, inputs=(prev.name,), delay=ref, max_delay=None,
                      shape=prev.shape, dtype=prev.dtype, loc=node.loc)
    insert_after(rw, prev.name, [moved])
    return f"moved {node.describe()} onto the input columns of dense layer %{syn.name}{merged}"


def _columns_problem(rw: Rewriter, syn: Op, prev: Op | None,
                     wshape: tuple[int, ...]) -> str | None:
    """Why the dense layer ``syn`` (read from ``prev``) cannot take per-column delays, or None."""
    user = rw.only_user(syn.name)
    if prev is None:
        return "the delay reads the layer before it directly, which would hold it as its own"
    if user is None or user.OP not in ops.NEURON_OPS:
        return (f"%{syn.name} does not feed a neuron directly (its own delay or another node "
                "sits between them)")
    if wshape[0] == wshape[1]:
        return (f"it has as many input as output features ({wshape[0]}), and netx reads such "
                "a delay vector per output")
    if prev.OP == "axon.shift":
        return None  # Lava's form
    trail = rw.only_user(user.name)
    if trail is None or trail.OP != "axon.shift" or not _passable(user):
        return ("it is in neither Lava's form (axon.shift → axon.delay → synapse.dense → "
                "neuron) nor slayer's (synapse.dense → neuron without bias → axon.shift)")
    own = _own_delay(rw, syn)
    if own is None or _uniform(rw, own) is not None:
        return None
    nxt = _next_columns_problem(rw, own)
    if nxt is None:
        return None  # the writer gives the own delay to the next layer, as its input columns
    return (f"it carries a delay of its own that differs per output ({own.describe()}), "
            f"a netlist layer holds one delay vector, and that one cannot go to the next "
            f"layer's input columns instead: {nxt}")


def _next_columns_problem(rw: Rewriter, own: Op) -> str | None:
    """Why the dense layer right after ``own`` (a slayer-form layer's own output delay) cannot
    hold it as its per-column input delays, or None.  It can when ``own`` feeds that dense
    synapse directly, in ≠ out features, and that layer has no delay of its own."""
    syn = rw.only_user(own.name)
    if syn is None or syn.OP != "synapse.dense":
        return f"{own.describe()} does not feed a dense layer directly"
    w = rw.params[syn.weight.name]  # type: ignore[union-attr]
    if w.shape[0] == w.shape[1]:
        return (f"the dense layer %{syn.name} after it has as many input as output features "
                f"({w.shape[0]}), so netx would read its delays per output")
    neuron = rw.only_user(syn.name)
    if neuron is None or neuron.OP not in ops.NEURON_OPS or not _passable(neuron):
        return f"the dense layer %{syn.name} after it does not feed a neuron without bias"
    after = _own_delay(rw, syn)
    if after is not None:
        return (f"the dense layer %{syn.name} after it carries a delay of its own "
                f"({after.describe()})")
    return None


def _own_delay(rw: Rewriter, syn: Op) -> Op | None:
    """The output delay of the slayer-form dense layer of ``syn`` (after its shift), if any."""
    neuron = rw.only_user(syn.name)
    trail = rw.only_user(neuron.name) if neuron is not None else None
    after = rw.only_user(trail.name) if trail is not None and trail.OP == "axon.shift" else None
    return after if after is not None and after.OP == "axon.delay" else None


def _uniform(rw: Rewriter, node: Op) -> int | None:
    """The delay of ``node`` when it is the same for every channel, else None."""
    value = node.delay  # type: ignore[attr-defined]
    if not isinstance(value, ParamRef):
        return int(value)
    arr = np.asarray(rw.params[value.name])
    if arr.size and np.all(arr == arr.flat[0]) and arr.flat[0] == np.floor(arr.flat[0]):
        return int(arr.flat[0])
    return None


def _delay(node: Op, src: Op, k: int) -> Op:
    return ops.Delay(name=node.name, inputs=(src.name,), delay=k, shape=src.shape,
                     dtype=src.dtype, loc=node.loc)


def _merge(rw: Rewriter, node: Op, other: Op, k: int) -> str:
    value = other.delay  # type: ignore[attr-defined]
    if isinstance(value, ParamRef):
        arr = np.asarray(rw.params[value.name], np.float64) + k
        rw.nodes[other.name] = other.replace(delay=rw.put(value, f"{other.name}.delay",
                                                          arr.astype(np.float32)))
    else:
        rw.nodes[other.name] = other.replace(delay=int(value) + k)
    return f"moved {node.describe()} ({k} steps) into {other.describe()}"


def insert_after(rw: Rewriter, anchor: str, chain: list[Op]) -> None:
    """Put ``chain`` right after ``anchor``; the anchor's old users read the chain's end."""
    taken = [n.name for n in chain if n.name in rw.nodes]
    if taken:
        raise PassError(f"legalize-delay: node name %{taken[0]} is already used")
    end = chain[-1].name
    nodes: dict[str, Op] = {}
    for key, n in rw.nodes.items():
        if anchor in n.inputs:
            n = n.replace(inputs=tuple(end if i == anchor else i for i in n.inputs))
        nodes[key] = n
        if key == anchor:
            nodes.update((c.name, c) for c in chain)
    rw.nodes = nodes
