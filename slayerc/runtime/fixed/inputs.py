"""Input checking for the fixed-point simulator: each network input is validated (dtype, shape,
batch, length) and read time-major without copying where it can be; values the chip cannot take
(NaN/inf, graded inputs whose ``x·64`` leaves 24 bits, spikes/payloads past the target's message
bits) are refused naming the input node, step, sample and neuron."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from slayerc.errors import RuntimeSimError
from slayerc.ir.core import Graph, Op
from slayerc.ir.target import Target
from slayerc.runtime import neurons as families

NEURONS = frozenset(families.ops_with("fixed"))

GRADED_INPUT_MAX = float(1 << 17)
"""Largest magnitude of a value fed through an input layer: ``x·64`` (netx's input transform)
must fit the 24 signed bits of the chip's input (and of a state)."""
PAYLOAD_MAX = (1 << 31) - 1
"""Largest integer payload fed straight to a synapse when no target limits messages (int32)."""


class Source:
    """One input array, validated but not copied: ``[N, *shape, T_in]`` (a memory map stays one);
    :meth:`window` gives steps ``[t0, t1)`` time-major in float64, zero past its end."""

    def __init__(self, g: Graph, node: Op, x: Any, target: Target | None):
        self.node, self.shape = node, tuple(node.shape or ())
        arr = x.detach().cpu().numpy() if hasattr(x, "detach") else x
        arr = arr if isinstance(arr, np.ndarray) else np.asarray(arr)
        if arr.dtype.kind not in "biuf":
            raise RuntimeSimError(f"{node.describe()}: input must be numeric, got dtype "
                                  f"{arr.dtype}")
        shape = self.shape
        self.batched = arr.ndim == len(shape) + 2
        if arr.ndim not in (len(shape) + 1, len(shape) + 2) or \
                tuple(arr.shape[-1 - len(shape):-1]) != shape:
            want = ",".join(str(d) for d in shape)
            raise RuntimeSimError(f"{node.describe()}: input of shape {list(arr.shape)} does not "
                                  f"match the network input: expected [{want},T] or [N,{want},T] "
                                  "(slayer layout, time last)")
        self.arr = arr if self.batched else arr[None]
        self.n, self.t_in = self.arr.shape[0], self.arr.shape[-1]
        self.graded = graded_route(g, node)
        lo, hi = target.message_range if target is not None else (-PAYLOAD_MAX, PAYLOAD_MAX)
        self.limit = (-GRADED_INPUT_MAX, GRADED_INPUT_MAX) if self.graded else (lo, hi)

    def window(self, t0: int, t1: int, lo: int = 0, hi: int | None = None) -> np.ndarray:
        """Steps ``[t0, t1)`` of samples ``[lo, hi)`` as float64 ``[t1 − t0, hi − lo, *shape]``,
        checked (see :meth:`check`)."""
        hi = self.n if hi is None else hi
        out = np.zeros((t1 - t0, hi - lo, *self.shape))
        keep = max(0, min(t1, self.t_in) - t0)
        if keep:
            np.copyto(out[:keep], np.moveaxis(self.arr[lo:hi, ..., t0:t0 + keep], -1, 0),
                      casting="unsafe")
            self.check(out[:keep], t0, lo)
        return out

    def view(self, t0: int, t1: int, lo: int = 0, hi: int | None = None,
             checked: bool = False) -> np.ndarray:
        """As :meth:`window`, but a time-major view of the input array itself (no copy) when
        it holds all these steps in float32 or float64; fused layers read it in place, other
        kernels get it as float64 when they first read it (``simulator._Run._value``).  ``checked``:
        the caller has checked these steps already (:meth:`check_all`)."""
        if t1 > self.t_in or self.arr.dtype not in (np.float32, np.float64):
            return self.window(t0, t1, lo, hi)
        part = np.moveaxis(np.asarray(self.arr[lo:hi, ..., t0:t1]), -1, 0)
        if not checked:
            self.check(part, t0, lo)
        return part

    def check_all(self, steps: int) -> None:
        """:meth:`check` the first ``steps`` steps of every sample, in place (no copy; the
        bounds are read in the array's own order, which is faster, and only a failing input
        is read time-major to name its first offending step)."""
        arr = np.asarray(self.arr[..., :steps])
        if not self._within(arr):
            self.check(np.moveaxis(arr, -1, 0), 0)

    def _within(self, arr: np.ndarray) -> bool:
        """Whether every entry lies in the allowed range (NaN does not)."""
        lo, hi = self.limit
        return not arr.size or (float(arr.min()) >= lo and float(arr.max()) <= hi)

    def check(self, arr: np.ndarray, t0: int, first: int = 0) -> None:
        """Refuse NaN/inf and values whose fixed-point form the chip cannot hold (payloads
        fed straight to a synapse: the target's message bits); name the first offending entry
        (``arr``'s samples are numbered from ``first``)."""
        if self._within(arr):
            return  # (NaN fails both comparisons; integer-ness is the first synapse's check)
        lo, hi = self.limit
        finite = np.isfinite(arr)
        bad = ~finite | (arr < lo) | (arr > hi)
        why = "is not a finite number" if not finite.all() else "is out of range"
        t, n, *idx = (int(i) for i in np.argwhere(bad)[0])
        v = float(arr[(t, n, *idx)])
        where = f"step {t0 + t}, sample {first + n}, neuron {tuple(idx)}"
        if self.graded:
            rule = (f"values through the input layer must be finite with |x| < {hi:g} "
                    "(x·64 must fit the chip's 24-bit input)")
        else:
            rule = ("it feeds the first synapse directly (netx sends it as spikes), so it must "
                    f"hold integer spikes or payloads in [{lo}, {hi}]"
                    + (" (the target's message bits)" if hi != PAYLOAD_MAX else ""))
        raise RuntimeSimError(f"{self.node.describe()}: input value {v:g} at {where} {why}: "
                              f"{rule}; fix the input array")


def graded_route(g: Graph, node: Op) -> bool:
    """Whether the input reaches a neuron or input transform before any synapse (the graded
    input of an input layer) rather than a first synapse (integer spikes/payloads)."""
    todo, seen = [node.name], set()
    while todo:
        for user in g.users(todo.pop()):
            if user.name in seen:
                continue
            seen.add(user.name)
            if user.OP in NEURONS or user.OP == "tensor.affine":
                return True
            if not user.OP.startswith("synapse."):
                todo.append(user.name)
    return False


def read_sources(g: Graph, x: Any, target: Target | None) -> dict[str, Source]:
    nodes = g.inputs
    if not nodes:
        raise RuntimeSimError("the graph has no io.input node")
    if isinstance(x, Mapping):
        missing = [n.name for n in nodes if n.name not in x]
        if missing:
            raise RuntimeSimError(f"no input given for {', '.join('%' + m for m in missing)}")
        data = {n.name: Source(g, n, x[n.name], target) for n in nodes}
    elif len(nodes) == 1:
        data = {nodes[0].name: Source(g, nodes[0], x, target)}
    else:
        raise RuntimeSimError(f"the graph has {len(nodes)} inputs: pass a dict name -> array")
    lengths = {(s.t_in, s.n) for s in data.values()}
    if len(lengths) > 1:
        raise RuntimeSimError(f"inputs disagree in length or batch size: {sorted(lengths)}")
    return data


def steps_of(sources: dict[str, Source], steps: int | None) -> int:
    t_in = next(iter(sources.values())).t_in
    steps = t_in if steps is None else int(steps)
    if steps < 1:
        raise RuntimeSimError(f"steps must be at least 1, got {steps}")
    return steps


def inputs(g: Graph, x: Any, steps: int | None, target: Target | None = None
            ) -> tuple[dict[str, np.ndarray], bool]:
    """Every input as float64 ``[T, N, *shape]`` (zero-padded or cut to ``steps``), checked;
    and whether the input was batched."""
    sources = read_sources(g, x, target)
    steps = steps_of(sources, steps)
    batched = any(s.batched for s in sources.values())
    return {k: s.window(0, steps) for k, s in sources.items()}, batched
