"""NIR importer: a NIR graph (the ``nir`` package, ``.nir`` files) to an IR :class:`Graph`.

NIR's neurons are continuous-time ODEs; the IR's are discrete-time.  :func:`from_nir` discretises
them with a time step ``dt`` (seconds, default :data:`DEFAULT_DT` = 1e-4, snnTorch's export step;
a graph written by :mod:`slayerc.backends.nir_export` carries its own ``dt`` in its metadata, which
wins over the default but not over an explicit ``dt``).  Every primitive, its equation, its
discretisation, the reset rule, the threshold comparison and the step at which its input reaches
its output are listed in ``docs/nir.md``; in short, per step ``t`` (forward Euler, the current
updated before the voltage, as snnTorch's ``Synaptic`` and the IR's ``neuron.cuba``):

* ``CubaLIF``: ``I[t] = (1 − dt/τs) I[t−1] + g_u x[t]``, ``v[t] = (1 − dt/τm) v[t−1] + (dt/τm)
  (v_leak + r I[t])``; ``z[t] = v[t] > θ``, then ``v[t] = v_reset``.  ``g_u = dt·w_in/τs``
  (``convention="norse"``: ``g_u = w_in``, Norse's ``LIFCell`` adds its input to the current
  undecayed).  ``LIF`` is the same without the current (``I[t] = x[t]``), ``IF`` without the leak,
  ``Threshold`` without memory.  They all become ``neuron.cuba`` with ``current_decay = dt/τs``
  (1 without a current), ``voltage_decay = dt/τm`` (0 for IF), and the IR's voltage measured in
  units of the input gain ``G = g_u·g_v`` (``g_v = dt·r/τm``), relative to ``v_reset``:
  ``threshold = (θ − v_reset)/G``, ``bias = (dt/τm)(v_leak − v_reset)/G``.  Exact, except that a
  ``v_reset ≠ 0`` shifts the initial voltage (the IR starts at 0, i.e. at ``v_reset``): an
  approximation that is warned about, or refused with ``approximate=False``.  Decays off the
  12-bit grid (snnTorch's β = 0.9) set the neuron's ``exact_decays``, so the float dynamics run
  them as given instead of slayer's rounding (``legalize-quant`` rounds them for the chip).
  ``convention="norse-export"`` reads Norse 1.1's ``to_nir`` files (see :class:`Options`).
* ``LI`` / ``CubaLI`` (non-spiking; the output is the voltage) → ``neuron.li`` with the same
  decays, bias and gain ``G`` (``current_decay = 1`` for ``LI``), followed by a ``tensor.affine``
  by ``G`` when ``G ≠ 1`` (the IR integrates ``v/G``; NIR's voltage is ``G·v_IR``).
* ``Affine``/``Linear`` → ``synapse.dense``, ``Conv2d`` → ``synapse.conv``, ``Conv1d`` →
  ``tensor.reshape`` + ``synapse.conv`` (kernel ``1×k``) + ``tensor.reshape``, ``SumPool2d`` /
  ``AvgPool2d`` → ``synapse.pool`` (ones, or ``1/(kH·kW)``), ``Flatten`` → ``tensor.flatten`` (or
  ``tensor.reshape`` for a partial flatten), ``Scale`` → ``tensor.affine`` (uniform) or a diagonal
  ``synapse.dense`` (1-d), ``Delay`` → ``axon.shift`` (uniform) or ``axon.delay`` (``delay/dt``
  steps), ``I`` (integrator) → ``dendrite.sigma`` + ``tensor.affine`` (``dt·r``).
* Several edges into one node are summed (``tensor.add``).  A cycle is cut at its back edge (found
  by a depth-first walk from the inputs, edges in file order) with an ``axon.shift`` of one step:
  a recurrent connection delivers the spikes of step ``t−1`` at step ``t``.  Nested ``NIRGraph``
  nodes are inlined (``sub.node`` → ``sub_node``); an edge may name a subgraph (its only
  ``Input``/``Output``) or one of its nodes (``sub.input``).

Every problem is a :class:`~slayerc.errors.FrontendError` of one line naming the file, the NIR
node and its type, the offending value, and what to do.
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from slayerc.errors import FrontendError, SlayerError
from slayerc.frontend.nir_nodes import _CONVERTERS, _RANK, _STATELESS, _numpy
from slayerc.ir import ops
from slayerc.ir.core import Graph, GraphBuilder, Loc, ShapeProblem, sanitize

DEFAULT_DT = 1e-4
"""Default time step (seconds): snnTorch's NIR export step (Norse uses 1e-3: pass ``dt=1e-3``)."""
CONVENTIONS = ("euler", "snntorch", "norse", "norse-export")
"""``snntorch`` is another name of ``euler`` (snnTorch's ``Synaptic`` is NIR's Euler step);
``norse-export`` reads files written by Norse 1.1's ``to_nir`` (see :class:`Options`)."""
NORSE_DT = 1e-3
"""Norse's default time step: the default ``dt`` of ``convention="norse-export"``."""


class NirApproximationWarning(UserWarning):
    """An imported NIR node is only approximated by the IR (e.g. ``v_reset ≠ 0``)."""


@dataclass(frozen=True)
class Options:
    """Importer options.

    Attributes:
        dt: time step in seconds (None: the file's ``metadata['dt']`` or :data:`DEFAULT_DT`).
        convention: ``"euler"`` (NIR's equations, forward Euler: snnTorch; also accepted as
            ``"snntorch"``), ``"norse"`` (the synaptic current takes its input undecayed, as
            Norse's ``LIFCell``) or ``"norse-export"`` (a file from Norse 1.1's ``to_nir``:
            ``"norse"``, and every ``tau`` written as ``dt/tau_inv = dt·τ``, so ``τ =
            tau/dt``; ``IF`` adds its input undecayed, ``v += r·x``, as Norse's ``IAFCell``;
            the ``Input`` type's leading batch axis is dropped; ``dt`` defaults to
            :data:`NORSE_DT`).
        approximate: accept approximations with a warning (False: refuse them with an error).
    """

    dt: float | None = None
    convention: str = "euler"
    approximate: bool = True


def load_nir(path: str | os.PathLike, *, dt: float | None = None, convention: str = "euler",
             approximate: bool = True) -> Graph:
    """Read a ``.nir`` file into an IR graph (see the module docstring for the options)."""
    nir = _nir()
    where = os.fspath(path)
    if not os.path.isfile(where):
        raise FrontendError(f"{where}: no such NIR file")
    try:
        graph = _read(nir, where, convention)
    except Exception as e:  # noqa: BLE001  (h5py/nir raise anything on a bad file)
        hint = (" (Norse's to_nir types the Input with a batch axis: import its files with "
                "convention='norse-export')" if "type mismatch" in str(e) else "")
        raise FrontendError(f"{where}: not a readable NIR file ({type(e).__name__}: "
                            f"{_one_line(e)}); write it with nir.write{hint}") from None
    return from_nir(graph, dt=dt, convention=convention, approximate=approximate, source=where)


def _read(nir: Any, where: str, convention: str) -> Any:
    """``nir.read``; a Norse export without NIR's type check, which refuses the batch axis
    Norse's ``to_nir`` puts on the Input type (the importer checks every shape itself)."""
    if convention == "norse-export":
        try:
            return nir.read(where, type_check=False)
        except TypeError:  # a nir without the keyword: it does not check types either
            pass
    return nir.read(where)


def from_nir(graph: Any, *, dt: float | None = None, convention: str = "euler",
             approximate: bool = True, source: str = "<nir>") -> Graph:
    """Convert a ``nir.NIRGraph`` (or a single node) to a verified IR graph with shapes."""
    nir = _nir()
    if not isinstance(graph, nir.NIRGraph):
        if not isinstance(graph, nir.NIRNode):
            raise FrontendError(f"{source}: expected a nir.NIRGraph, got {type(graph).__name__}")
        graph = nir.NIRGraph.from_list(graph)
    if dt is None:
        dt = _metadata_dt(graph, NORSE_DT if convention == "norse-export" else DEFAULT_DT)
    if not (isinstance(dt, (int, float)) and math.isfinite(dt) and dt > 0):
        raise FrontendError(f"{source}: dt must be a positive number of seconds, got {dt!r}")
    if convention not in CONVENTIONS:
        raise FrontendError(f"{source}: unknown convention {convention!r}; use one of "
                            f"{', '.join(CONVENTIONS)}")
    opts = Options(float(dt), "euler" if convention == "snntorch" else convention, approximate)
    nodes, edges = _inline(graph, source)
    try:
        return _Importer(nodes, edges, opts, source).run()
    except SlayerError:
        raise
    except (ValueError, TypeError, AttributeError, KeyError, IndexError) as e:
        raise FrontendError(f"{source}: malformed NIR graph ({type(e).__name__}: "
                            f"{_one_line(e)})") from None


def _nir() -> Any:
    try:
        import nir
    except ImportError:
        raise FrontendError("reading NIR needs the 'nir' package: pip install "
                            "'slayerc[nir]'") from None
    return nir


def _one_line(e: BaseException | str) -> str:
    return " ".join(str(e).split())[:300]


def _metadata_dt(graph: Any, default: float = DEFAULT_DT) -> float:
    meta = getattr(graph, "metadata", None) or {}
    value = meta.get("dt") if isinstance(meta, dict) else None
    try:
        return float(np.asarray(value).reshape(())) if value is not None else default
    except (TypeError, ValueError):
        return default


# ------------------------------------------------------------------------------- inlining


def _inline(graph: Any, source: str, prefix: str = "") -> tuple[dict[str, Any], list]:
    """Flatten nested graphs: ``{full name: node}`` and edges between full names.

    A subgraph's own Input/Output nodes stay as ``wire`` nodes (dissolved later); an edge
    naming a subgraph goes to its only Input (from its only Output).
    """
    nir = _nir()
    nodes: dict[str, Any] = {}
    edges: list[tuple[str, str]] = []
    if not isinstance(graph.nodes, dict):
        raise FrontendError(f"{source}: graph {prefix or '<top>'} has no node table")
    subs: dict[str, Any] = {}
    for key, node in graph.nodes.items():
        full = f"{prefix}{key}"
        if isinstance(node, nir.NIRGraph):
            inner, inner_edges = _inline(node, source, full + ".")
            nodes.update(inner)
            edges += inner_edges
            subs[key] = node
        else:
            nodes[full] = node
    for edge in graph.edges or ():
        if not (isinstance(edge, (tuple, list)) and len(edge) == 2):
            raise FrontendError(f"{source}: edge {edge!r} is not a (source, target) pair")
        src = _port(str(edge[0]), subs, nir.Output, prefix, nodes, source)
        dst = _port(str(edge[1]), subs, nir.Input, prefix, nodes, source)
        edges.append((src, dst))
    return nodes, edges


def _port(name: str, subs: dict, kind: type, prefix: str, nodes: dict, source: str) -> str:
    full = f"{prefix}{name}"
    if full in nodes:
        return full
    if name in subs:
        ports = [k for k, v in subs[name].nodes.items() if isinstance(v, kind)]
        if len(ports) != 1:
            raise FrontendError(f"{source}: edge names subgraph '{full}', which has "
                                f"{len(ports)} {kind.__name__} nodes; name one ('{full}.x')")
        return f"{full}.{ports[0]}"
    raise FrontendError(f"{source}: an edge names node '{full}', which does not exist; "
                        "fix the edge list")


# ------------------------------------------------------------------------------- the walk


class _Importer:
    """One conversion: order the nodes, cut cycles, emit IR nodes with shapes."""

    def __init__(self, nodes: dict[str, Any], edges: list, opts: Options, source: str):
        self.nir = _nir()
        self.opts = opts
        self.source = source
        self.nodes = nodes
        self.edges = _dissolve_wires(nodes, edges, self.nir, prefixed=True)
        self.b = GraphBuilder("main")
        self.shapes: dict[str, tuple[int, ...]] = {}
        self.starts: dict[str, tuple[str, str, np.ndarray]] = {}  # IR neuron -> NIR start
        self.names = self._final_names()

    # -- naming --------------------------------------------------------------------------
    def _final_names(self) -> dict[str, str]:
        names: dict[str, str] = {}
        used: set[str] = set()
        for key in self.nodes:
            base = sanitize(key.replace(".", "_"))
            name, i = base, 1
            while name in used:
                name, i = f"{base}_{i}", i + 1
            names[key] = name
            used.add(name)
        self.reserved = used
        return names

    def helper(self, base: str) -> str:
        """A fresh name for a node the conversion adds (never a reserved final name)."""
        name, i = sanitize(base), 1
        while name in self.reserved or name in self.b.nodes:
            name, i = f"{sanitize(base)}_{i}", i + 1
        return name

    def describe(self, key: str) -> str:
        return f"{self.source}: node '{key}' ({type(self.nodes[key]).__name__})"

    def fail(self, key: str, msg: str) -> FrontendError:
        return FrontendError(f"{self.describe(key)}: {_one_line(msg)}")

    # -- graph order -----------------------------------------------------------------------
    def run(self) -> Graph:
        order, back = self._order()
        preds: dict[str, list[str]] = {k: [] for k in self.nodes}
        for src, dst in self.edges:
            preds[dst].append(src)
        for key in order:
            self._emit(key, preds[key], back)
        g = self.b.build()
        from slayerc.ir.shapes import infer_shapes  # the IR's own check of what was built
        try:
            g = infer_shapes(g)
        except SlayerError as e:
            raise FrontendError(f"{self.source}: the imported graph does not verify: "
                                f"{_one_line(e)}") from None
        self.warn_starts(g)
        return g

    def _order(self) -> tuple[list[str], set[tuple[str, str]]]:
        succ: dict[str, list[str]] = {k: [] for k in self.nodes}
        has_in = set()
        for src, dst in self.edges:
            succ[src].append(dst)
            has_in.add(dst)
        roots = [k for k, v in self.nodes.items() if isinstance(v, self.nir.Input)]
        if not roots:
            raise FrontendError(f"{self.source}: the graph has no Input node")
        for k, v in self.nodes.items():
            if k not in has_in and not isinstance(v, self.nir.Input):
                raise self.fail(k, "has no incoming edge; connect it or remove it")
        post, back = _dfs(roots, succ)
        missing = [k for k in self.nodes if k not in post]
        if missing:
            raise self.fail(missing[0], "is not reachable from any Input; add the missing edge")
        if not any(isinstance(self.nodes[k], self.nir.Output) for k in post):
            raise FrontendError(f"{self.source}: the graph has no Output node")
        cut = {self._move_cut(u, v, succ) for u, v in back}
        forward = {k: [d for d in succ[k] if (k, d) not in cut] for k in succ}
        fed = {d for k in forward for d in forward[k]}
        post, again = _dfs([k for k in self.nodes if k not in fed], forward)
        assert not again, again  # every cycle is cut
        return post[::-1], cut

    def _move_cut(self, u: str, v: str, succ: dict[str, list[str]]) -> tuple[str, str]:
        """Move a cycle's cut upstream past stateless synapses (``lif → w_rec → lif`` is cut
        at ``lif → w_rec``): the one-step shift then carries the spikes, and a recurrent bias
        acts from step 0 (as in snnTorch)."""
        while type(self.nodes[u]).__name__ in _STATELESS and len(succ[u]) == 1:
            preds = [s for s, d in self.edges if d == u]
            if len(preds) != 1:
                break
            u, v = preds[0], u
        return u, v

    # -- emission --------------------------------------------------------------------------
    def _emit(self, key: str, srcs: list[str], back: set[tuple[str, str]]) -> None:
        node = self.nodes[key]
        final = self.names[key]
        loc = Loc(module=key, file=self.source)
        if isinstance(node, self.nir.Input):
            shape = self._input_shape(key, node)
            self.add(key, ops.Input, final, [], shape=shape, loc=loc)
            return
        ins, shape = self._gather(key, srcs, back, loc)
        x = ins[0]
        if len(ins) > 1:
            x = self.add(key, ops.Add, self.helper(f"{final}_sum"), ins, loc=loc)
        if isinstance(node, self.nir.Output):
            self._check_declared(key, node, "input", shape)
            self.add(key, ops.Output, final, [x], loc=loc)
            return
        conv = _CONVERTERS.get(type(node).__name__)
        if conv is None:
            raise self.fail(key, "is not supported by slayerc's NIR importer; supported: "
                                 f"{', '.join(sorted(_CONVERTERS))}, Input, Output, NIRGraph")
        self._check_declared(key, node, "input", shape)
        conv(self, key, node, x, shape, final, loc)

    def _gather(self, key: str, srcs: list[str], back: set[tuple[str, str]],
            loc: Loc) -> tuple[list[str], tuple[int, ...]]:
        """The IR names feeding ``key`` (a one-step shift on a cut edge) and their shape."""
        ins: list[str] = []
        shape: tuple[int, ...] | None = None
        for src in srcs:
            if (src, key) in back:
                sh = self.helper(f"{self.names[src]}_shift")
                ins.append(self.add(key, ops.Shift, sh, [self.names[src]], steps=1, loc=loc,
                                    shape_of=None))
                declared = self._declared_out(src)
                if declared is not None:
                    self.shapes[sh] = declared
                    shape = shape if shape is not None else declared
            else:
                ins.append(self.names[src])
                shape = shape if shape is not None else self.shapes[self.names[src]]
        if shape is None:
            raise self.fail(key, "is fed only by a recurrent edge; it needs a forward input")
        for i, name in enumerate(ins):
            if name not in self.shapes:
                self.shapes[name] = shape  # a shift closing a cycle: checked by infer_shapes
            elif self.shapes[name] != shape:
                raise self.fail(key, f"input {i} has shape {list(self.shapes[name])} but input "
                                     f"0 has {list(shape)}; the summed edges must agree")
        return ins, shape

    def add(self, key: str, cls: type, name: str, inputs: list[str], *,
            shape_of: Any = True, **attrs: Any) -> str:
        """Add one IR node and infer its shape (a shape problem names the NIR node)."""
        name = self.b.add(cls, name, inputs, **attrs)
        op = self.b.nodes[name]
        if shape_of is None:
            return name
        if cls is ops.Input:
            self.shapes[name] = tuple(attrs["shape"])
            return name
        g = Graph(nodes={}, params=self.b.params)
        try:
            shape, _ = op.infer([(self.shapes[i], "f32") for i in inputs], g)
        except ShapeProblem as e:
            raise self.fail(key, f"{e}") from None
        self.shapes[name] = tuple(int(s) for s in shape)
        return name

    def _declared_out(self, key: str) -> tuple[int, ...] | None:
        """The output shape a node declares (for a recurrent edge read before it is built)."""
        node = self.nodes[key]
        shape = _type_shape(getattr(node, "output_type", None), "output")
        if not shape:
            for attr in ("v_threshold", "threshold", "tau", "tau_mem", "delay", "r"):
                value = getattr(node, attr, None)
                if value is not None and np.ndim(_numpy(value)) > 0:
                    return tuple(np.shape(_numpy(value)))
            return None
        return shape

    def _input_shape(self, key: str, node: Any) -> tuple[int, ...]:
        shape = _type_shape(node.input_type, "input")
        if shape is None:
            shape = _type_shape(node.output_type, "output")
        if shape is None or not shape or any(s < 1 for s in shape):
            raise self.fail(key, f"needs a positive input shape, got {shape!r}")
        if self.opts.convention == "norse-export" and self._batched(key, shape):
            return shape[1:]  # Norse's to_nir types the Input with its sample's batch axis
        return shape

    def _batched(self, key: str, shape: tuple[int, ...]) -> bool:
        """Whether the nodes an Input feeds take one axis less than it declares."""
        for src, dst in self.edges:
            node = self.nodes[dst] if src == key else None
            declared = _type_shape(getattr(node, "input_type", None), "input")
            rank = len(declared) if declared else _RANK.get(type(node).__name__)
            if rank is not None and len(shape) == rank + 1:
                return True
        return False

    def _check_declared(self, key: str, node: Any, port: str, shape: tuple[int, ...]) -> None:
        declared = _type_shape(getattr(node, "input_type", None), port)
        if declared is None or not declared or declared == shape:
            return
        if int(np.prod(declared)) == int(np.prod(shape)) and isinstance(node, self.nir.Output):
            return
        batch = "; Norse's to_nir writes the sample's batch axis into the Input type: import " \
            "its files with convention='norse-export'" if declared == shape[1:] else ""
        raise self.fail(key, f"declares input shape {list(declared)} but receives "
                             f"{list(shape)}; the shapes of connected nodes must match{batch}")

    # -- values ------------------------------------------------------------------------------
    def array(self, key: str, node: Any, attr: str) -> np.ndarray:
        """A parameter as a finite float64 array (a clear error for NaN/inf/non-numbers)."""
        value = getattr(node, attr, None)
        if value is None:
            raise self.fail(key, f"has no '{attr}'")
        try:
            arr = np.asarray(_numpy(value), dtype=np.float64)
        except (TypeError, ValueError):
            raise self.fail(key, f"'{attr}' is not numeric: {value!r}") from None
        bad = ~np.isfinite(arr)
        if attr.startswith("tau"):
            bad = np.isnan(arr) | (arr == -np.inf)
        if bad.any():
            bad_value = float(arr[bad].flat[0])
            raise self.fail(key, f"'{attr}' holds {bad_value}; give finite values")
        return arr

    def warn(self, key: str, msg: str, start: tuple[str, np.ndarray] | None = None) -> None:
        """Warn about an approximation (refuse it with ``approximate=False``); ``start``: the
        IR neuron and the voltage NIR starts it at, measured when the graph is built."""
        if not self.opts.approximate:
            raise self.fail(key, f"{msg} (refused: approximate=False)")
        if start is not None:
            self.starts[start[0]] = (key, msg, start[1])
            return
        warnings.warn(f"{self.describe(key)}: {msg}", NirApproximationWarning, stacklevel=4)

    def warn_starts(self, g: Graph) -> None:
        """The deferred ``v_reset`` warnings, each with the error it makes on seeded spikes."""
        if not self.starts:
            return
        from slayerc.frontend.nir_measure import start_error

        try:
            measured = f"; {start_error(g, {k: v for k, (_, _, v) in self.starts.items()})}"
        except Exception as e:  # noqa: BLE001  (a measurement never blocks the import)
            measured = f"; not measured ({type(e).__name__}: {_one_line(e)})"
        for key, msg, _ in self.starts.values():
            warnings.warn(f"{self.describe(key)}: {msg}{measured}", NirApproximationWarning,
                          stacklevel=4)


def _type_shape(types: Any, port: str) -> tuple[int, ...] | None:
    if not isinstance(types, dict):
        return None
    value = types.get(port)
    if value is None:
        return None
    try:
        arr = np.asarray(_numpy(value)).reshape(-1)
        if arr.size == 0 or arr.dtype.kind not in "iuf" or not np.all(np.isfinite(arr)):
            return None
        return tuple(int(v) for v in arr)
    except (TypeError, ValueError):
        return None


def _dfs(roots: list[str], succ: dict[str, list[str]]) -> tuple[list[str], set]:
    """Iterative DFS: (postorder, back edges)."""
    post: list[str] = []
    state: dict[str, int] = {}  # 1 on the stack, 2 done
    back: set[tuple[str, str]] = set()
    for root in roots:
        if root in state:
            continue
        state[root] = 1
        stack: list[tuple[str, Iterator[str]]] = [(root, iter(succ[root]))]
        while stack:
            u, it = stack[-1]
            v = next(it, None)
            if v is None:
                stack.pop()
                state[u] = 2
                post.append(u)
            elif state.get(v) == 1:
                back.add((u, v))
            elif v not in state:
                state[v] = 1
                stack.append((v, iter(succ[v])))
    return post, back


def _dissolve_wires(nodes: dict[str, Any], edges: list, nir: Any, prefixed: bool) -> list:
    """Remove the Input/Output nodes of inlined subgraphs, connecting through them."""
    wires = [k for k, v in nodes.items() if "." in k and isinstance(v, (nir.Input, nir.Output))]
    for w in wires:
        ins = [s for s, d in edges if d == w]
        outs = [d for s, d in edges if s == w]
        edges = [(s, d) for s, d in edges if w not in (s, d)]
        edges += [(s, d) for s in ins for d in outs]
        del nodes[w]
    return edges


# ------------------------------------------------------------------------------- converters
# Each converter: (importer, key, nir node, input IR name, input shape, final name, loc).
