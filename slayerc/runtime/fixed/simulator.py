"""Bit-accurate fixed-point simulation of an IR graph, batched over inputs.

Scheduling: the graph's strongly connected components are run in topological order.  A node
outside any cycle is evaluated for the whole sequence at once (synapses become one matmul or one
convolution over all ``T·N`` frames, delays are array shifts, neurons loop over ``T`` vectorised
over ``N`` and the neurons), so Python runs one loop per neuron layer and nothing per synapse.
With numba, a netx layer ``shift → conv|dense → cuba`` whose inner nodes nobody else reads
or records runs as one compiled loop (:mod:`.fused`: the spikes' weights scattered into an
exact integer accumulator, then the neuron step), reading the caller's input array in place.
A recurrent component (``dense_rec``) is stepped: per step its delaying nodes first emit what
they hold, then the other members run in dataflow order, then the delaying nodes take their new
input.  Every failure is re-raised naming the node being run.  Inputs are validated and read by
:mod:`.inputs`.

Graded messages (graded CUBA/ALIF/RF payloads, sigma-delta and delta messages: the outputs in
units of 2^-12, Lava's ``s_out`` integers) must fit the target's signed ``message_bits`` (16 for
``loihi2``: netx's SDNN setting; 24 for ``slayerc``).  They depend on the data, so this is
checked as the simulation runs: the first message that does not fit raises
:class:`RuntimeSimError` naming the node, the step, the value and the limit.  Lava's Python
simulation does not truncate messages, so without the check the output would still match
Lava's, but not the chip's.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

import networkx as nx
import numpy as np

from slayerc.errors import RuntimeSimError, SlayerError
from slayerc.ir.analysis import to_nx, topo_order
from slayerc.ir.core import Graph, Op
from slayerc.ir.fileio import memory_limit
from slayerc.ir.target import Target
from slayerc.ir.target import get as get_target
from slayerc.runtime.fixed import fast, fused
from slayerc.runtime.fixed.inputs import NEURONS, Source, read_sources, steps_of
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


def check_messages(node: Op, arr: np.ndarray, target: Target, first: int = 0,
                   t0: int = 0) -> None:
    """Raise :class:`RuntimeSimError` at the first entry of ``arr`` (``[T, N, *shape]``
    message integers) that does not fit the target's signed ``message_bits``; ``arr``'s
    samples are numbered from ``first``, its steps from ``t0``."""
    lo, hi = target.message_range
    if not arr.size or (float(arr.max()) <= hi and float(arr.min()) >= lo):
        return
    t, n, *idx = (int(i) for i in np.argwhere((arr > hi) | (arr < lo))[0])
    v = int(arr[(t, n, *idx)])
    n, t = n + first, t + t0
    raise RuntimeSimError(
        f"{node.describe()}: step {t}: graded message {v} (= {v / (1 << MESSAGE_EXP):g} in "
        f"slayer units; sample {n}, neuron {tuple(idx)}) does not fit the {target.message_bits}"
        f"-bit messages of target {target.name} ([{lo}, {hi}] in units of 2^-{MESSAGE_EXP}); "
        "the chip's synapses would misread it (Lava's Python simulation does not check): "
        "make this layer's messages smaller (scale the weights into it down and those out of "
        "it up), or simulate for a target with more message bits")


def _active(fusions: Mapping[str, fused.Fusion], keep: Iterable[str]) -> dict[str, fused.Fusion]:
    """The fused chains that run when the values ``keep`` are kept: none of their inner nodes
    kept, and the compiled path on."""
    kept = set(keep)
    return {k: f for k, f in fusions.items() if not kept.intersection(f.members)} \
        if fast.enabled() else {}


class _Run:
    """One simulation: kernels, values, the step loop of recurrent components.

    A value is dropped as soon as its last consumer has run, unless it is in ``keep``, so
    only the signals in flight stay in memory (and in cache).  With ``carry`` the run is a
    later chunk of steps (starting at step ``t0``): every kernel continues from the state the
    previous chunk left instead of starting at rest.
    """

    def __init__(self, g: Graph, data: dict[str, np.ndarray], kernels: dict[str, Kernel],
                 units: list[list[str]], checks: tuple[Target | None, frozenset[str]],
                 keep: Iterable[str] | None = None, first: int = 0, carry: bool = False,
                 t0: int = 0, fusions: Mapping[str, fused.Fusion] | None = None,
                 allowed: Mapping[str, tuple[float, float]] | None = None,
                 recheck: Callable[[str], None] | None = None, workers: int | None = None):
        self.g, self.data, self.kernels, self.units = g, data, kernels, units
        self.target, self.messengers = checks
        self.steps, self.n = next(iter(data.values())).shape[:2]
        self.values: dict[str, Sig] = {k: Sig(v, None, None) for k, v in data.items()}
        self.keep = None if keep is None else frozenset(keep)
        self.first, self.carry, self.t0 = first, carry, t0
        self.readers = {name: 0 for name in g.nodes}
        for node in g:
            for i in node.inputs:
                self.readers[i] += 1
        # fused chains whose inner values nobody asked for (all values kept: none)
        self.fusions = {} if self.keep is None else _active(fusions or {}, self.keep)
        self.absorbed = {m for f in self.fusions.values() for m in f.members}
        self.last = {k for k, f in self.fusions.items()
                     if f.feeds in self.fusions and k not in (self.keep or ())}
        """Fused layers whose spikes pass channel-last to the one fused layer that reads them
        (:attr:`fused.Fusion.feeds`)."""
        self.allowed = dict(allowed or {})
        """Inputs not checked before the run: their allowed range, checked by the fused scan."""
        self.recheck = recheck or (lambda name: None)
        """Check an input of :attr:`allowed` in full (raises on a bad value)."""
        self.workers = workers
        """Threads the fused layers split the samples over (None: :func:`fused.threads`)."""

    def run(self) -> dict[str, Sig]:
        """Evaluate every node; returns the whole-sequence signal of each (of ``keep``)."""
        for unit in self.units:
            if unit[0] in self.values or unit[0] in self.absorbed:
                continue  # an absorbed node runs inside its neuron's fused chain
            node = self.g[unit[0]]
            if len(unit) == 1 and node.name not in node.inputs:
                self.values[node.name] = self._sequence(node)
            else:
                self._stepped(unit)
            for m in self.messengers.intersection(unit) if self.target else ():
                check_messages(self.g[m], self.values[m].re, self.target, self.first, self.t0)
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
        fusion = self.fusions.get(node.name)
        return self._plain(node) if fusion is None else self._fused(node, fusion)

    def _fused(self, node: Op, fusion: fused.Fusion) -> Sig:
        """The chain ending in ``node`` as one compiled loop (:mod:`.fused`), or, when its
        input needs the ordinary path, node by node."""
        x, kernel = self.values[fusion.source], self.kernels[node.name]
        assert isinstance(kernel, Neuron)
        delayed = self.kernels[fusion.shift] if fusion.shift else None
        tail = getattr(delayed, "tail", None) if self.carry else None
        last_in, last_out = fusion.source in self.last, node.name in self.last
        if x.im is None and x.e in (None, 0) and (tail is None or tail.e == x.e):
            head = tail.re if tail is not None else \
                np.zeros((fusion.delay, self.n, *(self.g[fusion.source].shape or ())))
            if not self.carry:
                kernel.k.start(self.n)
            # binary spikes as uint8: an eighth of float64's memory traffic into the next
            # fused layer, whose scan reads 64 inputs per cache line
            dtype = np.float64 if kernel.k.graded else np.uint8
            shape = tuple(node.shape or ())
            out = np.empty((self.steps, self.n, *(shape[1:] + shape[:1] if last_out else shape)),
                           dtype)
            allowed = self.allowed.get(fusion.source, (-np.inf, np.inf))
            try:
                done = fused.run(fusion, kernel.k, head, x.re, out, allowed,  # type: ignore[arg-type]
                                 last_in, last_out, self.workers)
            except Exception as e:
                raise _fail(node, e) from e
            if not done and fusion.source in self.allowed:
                self.recheck(fusion.source)  # names a bad input value, if that was the cause
            if done:
                if self.carry and isinstance(delayed, Delayed) and fusion.delay:
                    xc = np.moveaxis(x.re, -1, 2) if last_in else x.re  # channel-first
                    both = xc if self.steps >= fusion.delay else np.concatenate([head, xc])
                    delayed.tail = Sig(both[-fusion.delay:].copy(), None, x.e)
                self._release(list(fusion.members))
                return Sig(out, None, kernel.k.out_exp)
        self.last.discard(node.name)  # computed below, channel-first
        if last_in:  # the ordinary kernels read channel-first
            x = self.values[fusion.source] = Sig(np.ascontiguousarray(np.moveaxis(x.re, -1, 2)),
                                                 x.im, x.e)
        for m in fusion.members:
            self.values[m] = self._plain(self.g[m])
        self._release(list(fusion.members))
        return self._plain(node)

    def _value(self, name: str) -> Sig:
        """A value for an ordinary kernel: an input still read in place (``Source.view``)
        or a fused layer's uint8 spikes become the float64 contiguous array the kernels
        expect, once."""
        sig = self.values[name]
        if sig.re.dtype != np.float64 or (name in self.data and not sig.re.flags.c_contiguous):
            sig = self.values[name] = Sig(np.ascontiguousarray(sig.re, np.float64), None, sig.e)
        return sig

    def _plain(self, node: Op) -> Sig:
        try:
            kernel = self.kernels[node.name]
            ins = [self.values[i] if kernel.ANY_DTYPE else self._value(i) for i in node.inputs]
            return kernel.sequence(ins, self.steps, self.n, self.carry)
        except Exception as e:
            raise _fail(node, e) from e

    def _stepped(self, unit: list[str]) -> None:
        kernels = {m: self.kernels[m] for m in unit}
        delays = [m for m in unit if isinstance(kernels[m], Delayed) and self.g[m].is_delay()]
        rest = [m for m in unit if m not in delays]
        for k in kernels.values() if not self.carry else ():
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
        return now[name] if name in now else self._value(name).at(t)

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


def chunk_size(g: Graph, steps: int, n: int, least: int = 1) -> int:
    """How many of ``n`` samples of ``steps`` steps to simulate at once (at least ``least``:
    fused layers split a group's samples over that many threads)."""
    widest = max((int(np.prod(node.shape or (), dtype=np.int64)) for node in g), default=1)
    return max(1, min(n, max(least, CHUNK_BYTES // max(1, steps * widest * 8))))


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
        self.fusions = fused.plan(g, self.kernels)

    def run(self, x: Any, steps: int | None = None,
            record: str | Iterable[str] | None = None) -> dict[str, np.ndarray]:
        """Run on ``x``; see :func:`simulate`."""
        sources = read_sources(self.g, x, self.target)
        steps_ = steps_of(sources, steps)
        names = list(dict.fromkeys([n.name for n in self.g.outputs]
                                   + _record_names(self.g, record)))
        n = next(iter(sources.values())).n
        self._check_memory(steps_, n, names)
        # Every sample is checked before any runs (the error names the first bad entry),
        # except an input that only fused layers read: their scan of its non-zero entries
        # checks the range on the way, and on a bad value the whole input is checked then
        # (the same error; one pass less over a large input).
        scanned = self._scanned_inputs(names)
        for name, src in sources.items():
            if name not in scanned:
                src.check_all(steps_)
        allowed = {name: sources[name].limit for name in scanned}
        batched = any(src.batched for src in sources.values())
        checks = (self.target, self.messengers)
        # read once per run (it looks at the load); one sample has nothing to split
        workers = fused.threads() if self.fusions and n > 1 else 1
        size = chunk_size(self.g, steps_, n, workers)
        parts: dict[str, list[np.ndarray]] = {name: [] for name in names}
        for lo in range(0, n, size):
            chunk = {k: src.view(0, steps_, lo, lo + size, checked=True)
                     for k, src in sources.items()}
            values = _Run(self.g, chunk, self.kernels, self.units, checks, names, lo,
                          fusions=self.fusions, allowed=allowed,
                          recheck=lambda name: sources[name].check_all(steps_),
                          workers=workers).run()
            for name in names:
                parts[name].append(_export(values[name], True))
        out = {name: arrs[0] if len(arrs) == 1 else np.concatenate(arrs)
               for name, arrs in parts.items()}
        return out if batched else {name: arr[0] for name, arr in out.items()}

    def _scanned_inputs(self, keep: list[str]) -> set[str]:
        """The inputs read only by fused layers that run when ``keep`` is kept (see
        :class:`_Run`): their range check can ride on the layers' scan."""
        firsts = {f.members[0]: f.source for f in _active(self.fusions, keep).values()}
        return {node.name for node in self.g.inputs
                if node.name not in keep and self.g.users(node.name)
                and all(firsts.get(u.name) == node.name for u in self.g.users(node.name))}

    def _check_memory(self, steps: int, n: int, names: list[str]) -> None:
        """Refuse a whole-sequence run whose arrays cannot fit in memory, before allocating."""
        need = steps * _memory_per_step(self.g, n, names)
        if need <= memory_limit():
            return
        raise RuntimeSimError(
            f"{steps} steps of {n} sample(s) would need about {_size(need)} of memory (inputs, "
            f"the widest signal and the recorded outputs {', '.join('%' + m for m in names)} "
            f"over all steps), more than the {_size(memory_limit())} allowed; run fewer steps, "
            "record fewer layers, or stream the run (Simulator.stream, `slayerc run`), whose "
            "memory does not grow with the steps")

    def stream(self, x: Any, steps: int | None = None,
               record: str | Iterable[str] | None = None,
               chunk_steps: int | None = None) -> Stream:
        """Run on ``x`` in chunks of steps, the neuron and delay state carried from one chunk
        to the next: memory does not grow with ``steps``.  The result equals :meth:`run`'s bit
        for bit; see :class:`Stream`.  ``chunk_steps`` (default: what fits
        :data:`STREAM_BYTES`) is for tests."""
        sources = read_sources(self.g, x, self.target)
        steps_ = steps_of(sources, steps)
        names = list(dict.fromkeys([n.name for n in self.g.outputs]
                                   + _record_names(self.g, record)))
        n = next(iter(sources.values())).n
        per_step = _memory_per_step(self.g, n, names)
        if per_step > memory_limit():
            raise RuntimeSimError(f"one step of {n} sample(s) would need about "
                                  f"{_size(per_step)} of memory, more than the "
                                  f"{_size(memory_limit())} allowed; give fewer samples at once")
        size = chunk_steps or max(1, min(steps_, STREAM_BYTES // per_step))
        return Stream(self, sources, steps_, n, names, size)


STREAM_BYTES = 1 << 24
"""Bytes of signals one chunk of a streamed run may hold (input, widest node, recordings)."""


def _memory_per_step(g: Graph, n: int, names: list[str]) -> int:
    """Bytes a whole-sequence run holds per step: the float64 inputs, a few copies of the
    widest signal, the recorded outputs (float64 while running, int32 when exported)."""
    def size(node: Op) -> int:
        return int(np.prod(node.shape or (), dtype=np.int64))
    widest = max((size(node) for node in g), default=1)
    inputs = sum(size(node) for node in g.inputs)
    return n * (8 * inputs + 12 * sum(size(g[m]) for m in names)) + 4 * 8 * widest * min(n, 64)


def _size(nbytes: float) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if nbytes < 1024 or unit == "PiB":
            return f"{nbytes:.0f} {unit}" if unit == "bytes" else f"{nbytes:.1f} {unit}"
        nbytes /= 1024
    return ""


class Stream:
    """A streamed run (:meth:`Simulator.stream`): iterate it for the chunks.

    Each chunk is a dict from recorded node name to its int32 output (float32 for the raw
    input) for the chunk's steps, **time-major**: ``[t, N, *shape]`` (batch axis always
    present).  ``steps``, ``n``, ``batched``, ``names`` and ``shapes`` (per-sample shape by
    name) describe the whole output, known before the first chunk runs.  A stream runs once.
    """

    def __init__(self, sim: Simulator, sources: dict[str, Source], steps: int, n: int,
                 names: list[str], chunk_steps: int):
        self.sim, self.sources = sim, sources
        self.steps, self.n, self.names, self.chunk_steps = steps, n, names, chunk_steps
        self.batched = any(src.batched for src in sources.values())
        self.shapes = {m: tuple(sim.g[m].shape or ()) for m in names}

    def __iter__(self) -> Iterator[dict[str, np.ndarray]]:
        sim = self.sim
        for kernel in sim.kernels.values():
            kernel.start(self.n)
        checks = (sim.target, sim.messengers)
        # read once per stream, as once per run: a look takes up to 1.5 ms on a busy machine
        workers = fused.threads() if sim.fusions and self.n > 1 else 1
        for t0 in range(0, self.steps, self.chunk_steps):
            t1 = min(self.steps, t0 + self.chunk_steps)
            data = {k: src.view(t0, t1) for k, src in self.sources.items()}
            values = _Run(sim.g, data, sim.kernels, sim.units, checks, self.names, 0, True,
                          t0, sim.fusions, workers=workers).run()
            yield {m: _export_time_major(values[m]) for m in self.names}


def _export_time_major(sig: Sig) -> np.ndarray:
    """A chunk's signal as int32 (float32 for the raw input), time-major."""
    return sig.re.astype(np.float32) if sig.e is None else \
        sig.re.astype(np.int64).astype(np.int32)


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
