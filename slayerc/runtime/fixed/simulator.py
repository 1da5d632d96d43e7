"""Bit-accurate fixed-point simulation of an IR graph, batched over inputs.

Scheduling: the graph's strongly connected components are run in topological order.  A node
outside any cycle is evaluated for the whole sequence at once (synapses become one matmul or one
convolution over all ``T·N`` frames, delays are array shifts, neurons loop over ``T`` vectorised
over ``N`` and the neurons), so Python runs one loop per neuron layer and nothing per synapse.
A recurrent component (``dense_rec``) is stepped: per step its delaying nodes first emit what
they hold, then the other members run in dataflow order, then the delaying nodes take their new
input.  Every failure is re-raised naming the node being run.

Graded messages (graded CUBA/ALIF/RF payloads, sigma-delta and delta messages: the outputs in
units of 2^-12, Lava's ``s_out`` integers) must fit the target's signed ``message_bits`` (16 for
``loihi2``: netx's SDNN setting; 24 for ``slayerc``).  They depend on the data, so this is
checked as the simulation runs: the first message that does not fit raises
:class:`RuntimeSimError` naming the node, the step, the value and the limit.  Lava's Python
simulation does not truncate messages, so without the check the output would still match
Lava's, but not the chip's.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import networkx as nx
import numpy as np

from slayerc.errors import RuntimeSimError, SlayerError
from slayerc.ir.analysis import to_nx, topo_order
from slayerc.ir.core import Graph, Op
from slayerc.ir.target import Target
from slayerc.ir.target import get as get_target
from slayerc.runtime import neurons as families
from slayerc.runtime.fixed.kernels import (
    Delayed,
    Kernel,
    Neuron,
    Sig,
    joint_dense_weights,
    make_kernel,
)

MESSAGE_EXP = 12
"""Graded messages are integers in units of 2^-12 slayer units (``docs/fixed-point.md``)."""
NEURONS = frozenset(families.ops_with("fixed"))
LAYER_OPS = NEURONS | {"synapse.dense"}
"""Ops whose output is a netlist layer's output (a dense layer without neuron is its synapse)."""


def layer_nodes(g: Graph) -> list[str]:
    """Node names of the netlist layers in netx numbering (``layerK`` = the K-th of them).

    A netlist layer ends in a neuron-like op; flatten and the input are not layers.  For graphs
    read from a netlist (nodes ``layer<i>``) the hdf5 order is used, otherwise graph order.
    """
    named = [n for n in g if n.name.startswith("layer") and n.name[5:].isdigit()]
    if named:
        named.sort(key=lambda n: int(n.name[5:]))
        return [n.name for n in named if n.OP in LAYER_OPS]
    return [n.name for n in g if n.OP in NEURONS]


def _fail(node: Op, err: Exception) -> SlayerError:
    if isinstance(err, SlayerError) and node.describe() in str(err):
        return err
    return RuntimeSimError(f"{node.describe()}: {err}")


def _to_time_major(g: Graph, node: Op, x: Any, steps: int | None) -> tuple[np.ndarray, bool]:
    """``x`` as float64 ``[T, N, *shape]``, zero-padded or cut to ``steps``; and batched?"""
    shape = tuple(node.shape or ())
    arr = np.asarray(x.detach().cpu().numpy() if hasattr(x, "detach") else x)
    if arr.dtype.kind not in "biuf":
        raise RuntimeSimError(f"{node.describe()}: input must be numeric, got dtype {arr.dtype}")
    batched = arr.ndim == len(shape) + 2
    if arr.ndim not in (len(shape) + 1, len(shape) + 2) or \
            tuple(arr.shape[-1 - len(shape):-1]) != shape:
        want = ",".join(str(d) for d in shape)
        raise RuntimeSimError(f"{node.describe()}: input of shape {list(arr.shape)} does not "
                              f"match the network input: expected [{want},T] or [N,{want},T] "
                              "(slayer layout, time last)")
    if not batched:
        arr = arr[None]
    t_in = arr.shape[-1]
    steps = t_in if steps is None else int(steps)
    if steps < 1:
        raise RuntimeSimError(f"steps must be at least 1, got {steps}")
    out = np.zeros((steps, arr.shape[0], *shape))
    keep = min(steps, t_in)
    out[:keep] = np.moveaxis(arr[..., :keep], -1, 0)
    return out, batched


def _inputs(g: Graph, x: Any, steps: int | None) -> tuple[dict[str, np.ndarray], bool]:
    nodes = g.inputs
    if not nodes:
        raise RuntimeSimError("the graph has no io.input node")
    if isinstance(x, Mapping):
        missing = [n.name for n in nodes if n.name not in x]
        if missing:
            raise RuntimeSimError(f"no input given for {', '.join('%' + m for m in missing)}")
        data = {n.name: _to_time_major(g, n, x[n.name], steps) for n in nodes}
    elif len(nodes) == 1:
        data = {nodes[0].name: _to_time_major(g, nodes[0], x, steps)}
    else:
        raise RuntimeSimError(f"the graph has {len(nodes)} inputs: pass a dict name -> array")
    lengths = {(a.shape[0], a.shape[1]) for a, _ in data.values()}
    if len(lengths) > 1:
        raise RuntimeSimError(f"inputs disagree in batch size or length: {sorted(lengths)}")
    batched = any(b for _, b in data.values())
    return {k: a for k, (a, _) in data.items()}, batched


def _units(g: Graph) -> list[list[str]]:
    """Strongly connected components in a topological order; members in dataflow order."""
    dg = to_nx(g)
    cond = nx.condensation(dg)
    order = {name: i for i, name in enumerate(topo_order(g))}
    members = {c: sorted(cond.nodes[c]["members"], key=order.__getitem__) for c in cond}
    ranked = nx.lexicographical_topological_sort(cond, key=lambda c: order[members[c][0]])
    return [members[c] for c in ranked]


def _check_shapes(g: Graph) -> None:
    missing = [n for n in g if n.shape is None]
    if missing:
        raise RuntimeSimError(f"{missing[0].describe()}: no shape; run shape-infer before "
                              "simulating")


def _kernels(g: Graph) -> dict[str, Kernel]:
    """The kernel of every node (weights prepared once per graph)."""
    ctx = {"joint": joint_dense_weights(g)}
    kernels: dict[str, Kernel] = {}
    for node in g:
        if node.OP == "io.input":
            continue
        try:
            kernels[node.name] = make_kernel(g, node, ctx)
        except Exception as e:
            raise _fail(node, e) from e
    return kernels


def _target(target: str | Target | None) -> Target | None:
    if target is None or isinstance(target, Target):
        return target
    return get_target(target, RuntimeSimError)


def _messengers(kernels: dict[str, Kernel]) -> frozenset[str]:
    """Nodes whose output is graded messages (2^-12 units): graded neurons, (sigma-)delta."""
    return frozenset(name for name, k in kernels.items()
                     if isinstance(k, Neuron) and k.k.out_exp == MESSAGE_EXP)


def check_messages(node: Op, arr: np.ndarray, target: Target, first: int = 0) -> None:
    """Raise :class:`RuntimeSimError` at the first entry of ``arr`` (``[T, N, *shape]``
    message integers) that does not fit the target's signed ``message_bits``; ``arr``'s
    samples are numbered from ``first``."""
    lo, hi = target.message_range
    if not arr.size or (float(arr.max()) <= hi and float(arr.min()) >= lo):
        return
    t, n, *idx = (int(i) for i in np.argwhere((arr > hi) | (arr < lo))[0])
    v = int(arr[(t, n, *idx)])
    n += first
    raise RuntimeSimError(
        f"{node.describe()}: step {t}: graded message {v} (= {v / (1 << MESSAGE_EXP):g} in "
        f"slayer units; sample {n}, neuron {tuple(idx)}) does not fit the {target.message_bits}"
        f"-bit messages of target {target.name} ([{lo}, {hi}] in units of 2^-{MESSAGE_EXP}); "
        "the chip's synapses would misread it (Lava's Python simulation does not check): "
        "make this layer's messages smaller (scale the weights into it down and those out of "
        "it up), or simulate for a target with more message bits")


class _Run:
    """One simulation: kernels, values, the step loop of recurrent components.

    A value is dropped as soon as its last consumer has run, unless it is in ``keep``, so
    only the signals in flight stay in memory (and in cache).
    """

    def __init__(self, g: Graph, data: dict[str, np.ndarray], kernels: dict[str, Kernel],
                 units: list[list[str]], checks: tuple[Target | None, frozenset[str]],
                 keep: Iterable[str] | None = None, first: int = 0):
        self.g, self.data, self.kernels, self.units = g, data, kernels, units
        self.target, self.messengers = checks
        self.steps, self.n = next(iter(data.values())).shape[:2]
        self.values: dict[str, Sig] = {k: Sig(v, None, None) for k, v in data.items()}
        self.keep = None if keep is None else frozenset(keep)
        self.first = first
        self.readers = {name: 0 for name in g.nodes}
        for node in g:
            for i in node.inputs:
                self.readers[i] += 1

    def run(self) -> dict[str, Sig]:
        """Evaluate every node; returns the whole-sequence signal of each (of ``keep``)."""
        for unit in self.units:
            if unit[0] in self.values:
                continue
            node = self.g[unit[0]]
            if len(unit) == 1 and node.name not in node.inputs:
                self.values[node.name] = self._sequence(node)
            else:
                self._stepped(unit)
            for m in self.messengers.intersection(unit) if self.target else ():
                check_messages(self.g[m], self.values[m].re, self.target, self.first)
            self._release(unit)
        return self.values

    def _release(self, unit: list[str]) -> None:
        """Drop the values whose every reader has now run."""
        if self.keep is None:
            return
        for m in unit:
            for i in self.g[m].inputs:
                self.readers[i] -= 1
                if not self.readers[i] and i not in self.keep:
                    self.values.pop(i, None)

    def _sequence(self, node: Op) -> Sig:
        try:
            ins = [self.values[i] for i in node.inputs]
            return self.kernels[node.name].sequence(ins, self.steps, self.n)
        except Exception as e:
            raise _fail(node, e) from e

    def _stepped(self, unit: list[str]) -> None:
        kernels = {m: self.kernels[m] for m in unit}
        delays = [m for m in unit if isinstance(kernels[m], Delayed) and self.g[m].is_delay()]
        rest = [m for m in unit if m not in delays]
        for k in kernels.values():
            k.start(self.n)
        trace: dict[str, list[Sig]] = {m: [] for m in unit}
        for t in range(self.steps):
            now: dict[str, Sig] = {}
            for m in delays:
                now[m] = kernels[m].emit()  # type: ignore[attr-defined]
            for m in rest:
                now[m] = self._step_node(self.g[m], now, t)
            for m in delays:
                kernels[m].push(self._arg(self.g[m].inputs[0], now, t))  # type: ignore
            for m in unit:
                trace[m].append(now[m])
        for m in unit:
            self.values[m] = _stack(trace[m])

    def _arg(self, name: str, now: dict[str, Sig], t: int) -> Sig:
        return now[name] if name in now else self.values[name].at(t)

    def _step_node(self, node: Op, now: dict[str, Sig], t: int) -> Sig:
        try:
            return self.kernels[node.name].step([self._arg(i, now, t) for i in node.inputs])
        except Exception as e:
            raise _fail(node, e) from e


def _stack(steps: list[Sig]) -> Sig:
    """Per-step signals as one sequence at the finest exponent that occurred."""
    exps = [s.e for s in steps if s.e is not None]
    e = max(exps) if exps else None

    def lift(s: Sig, arr: np.ndarray) -> np.ndarray:
        return arr if s.e == e or e is None else arr * float(1 << (e - (s.e or 0)))
    re = np.stack([lift(s, s.re) for s in steps])
    has_im = any(s.im is not None for s in steps)
    im = np.stack([lift(s, s.im if s.im is not None else np.zeros_like(s.re))
                   for s in steps]) if has_im else None
    return Sig(re, im, e)


def _export(sig: Sig, batched: bool) -> np.ndarray:
    """Time-last int32 (float32 for the raw input), batch axis dropped if the input had none."""
    arr = np.moveaxis(sig.re, 0, -1)
    arr = arr.astype(np.float32) if sig.e is None else arr.astype(np.int64).astype(np.int32)
    return arr if batched else arr[0]


CHUNK_BYTES = 1 << 23
"""Samples run together while the widest node's sequence for all of them fits in this many
bytes: large batches run in groups whose signals stay in the caches (and bounded memory);
samples are independent, so the grouping changes no result."""


def chunk_size(g: Graph, steps: int, n: int) -> int:
    """How many of ``n`` samples of ``steps`` steps to simulate at once."""
    widest = max((int(np.prod(node.shape or (), dtype=np.int64)) for node in g), default=1)
    return max(1, min(n, CHUNK_BYTES // max(1, steps * widest * 8)))


def _record_names(g: Graph, record: str | Iterable[str] | None) -> list[str]:
    if record is None:
        return []
    if record == "layers":
        return layer_nodes(g)
    if record == "all":
        return list(g.nodes)
    names = [record] if isinstance(record, str) else list(record)
    unknown = [n for n in names if n not in g.nodes]
    if unknown:
        raise RuntimeSimError(f"cannot record {', '.join('%' + n for n in unknown)}: no such "
                              "node (use a node name, 'layers' or 'all')")
    return names


class Simulator:
    """A graph prepared once for many fixed-point runs (weights, kernels, schedule).

    ``Simulator(g, target).run(x, ...)`` equals ``simulate(g, x, ..., target=target)``;
    preparing once saves the per-call weight preparation when the same network runs on many
    inputs.
    """

    def __init__(self, g: Graph, target: str | Target | None = "loihi2"):
        _check_shapes(g)
        self.g = g
        self.target = _target(target)
        self.kernels = _kernels(g)
        self.units = list(_units(g))
        self.messengers = _messengers(self.kernels)

    def run(self, x: Any, steps: int | None = None,
            record: str | Iterable[str] | None = None) -> dict[str, np.ndarray]:
        """Run on ``x``; see :func:`simulate`."""
        data, batched = _inputs(self.g, x, steps)
        names = list(dict.fromkeys([n.name for n in self.g.outputs]
                                   + _record_names(self.g, record)))
        checks = (self.target, self.messengers)
        steps_, n = next(iter(data.values())).shape[:2]
        size = chunk_size(self.g, steps_, n)
        parts: dict[str, list[np.ndarray]] = {name: [] for name in names}
        for lo in range(0, n, size):
            chunk = {k: v[:, lo:lo + size] for k, v in data.items()}
            values = _Run(self.g, chunk, self.kernels, self.units, checks, names, lo).run()
            for name in names:
                parts[name].append(_export(values[name], True))
        out = {name: arrs[0] if len(arrs) == 1 else np.concatenate(arrs)
               for name, arrs in parts.items()}
        return out if batched else {name: arr[0] for name, arr in out.items()}


def simulate(g: Graph, x: Any, steps: int | None = None,
             record: str | Iterable[str] | None = None,
             target: str | Target | None = "loihi2") -> dict[str, np.ndarray]:
    """Run ``g`` bit-accurately in fixed point on ``x``; return int32 arrays by node name.

    ``x``: slayer layout, ``[C(,H,W), T]`` or batched ``[N, C(,H,W), T]`` (numpy or torch), in
    slayer units, or a dict by input node name.  It is zero-padded or cut to ``steps``.
    The result maps each ``io.output`` node, and each node named by ``record`` (a node name, a
    list of them, ``"layers"`` for the netlist layers of :func:`layer_nodes`, or ``"all"``), to
    its output, time last, batch axis only if ``x`` had one.  Spikes are 0/1, graded payloads and
    sigma-delta messages are integers in units of 2**-12, sigma outputs 2**-18, synaptic
    currents 2**-6 (spikes in) or 2**-18 (messages in); see ``docs/fixed-point.md``.
    Every graded message must fit ``target``'s ``message_bits`` (a name or a
    :class:`~slayerc.ir.target.Target`; None skips the check), else :class:`RuntimeSimError`.
    """
    return Simulator(g, target).run(x, steps, record)
