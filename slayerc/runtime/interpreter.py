"""Floating-point interpreter of IR graphs, with the same kernels as the eager model.

``interpret(graph, x)`` runs a graph on ``x`` (``[N, *S, T]``, slayer layout, time last) and
returns what the eager ``slayerc.slayer`` model computes, number for number: neurons are the
modelling API's own neuron modules (configured from the node's attributes), synapses the same
torch calls its synapses make, axons the same runtime functions.

Acyclic parts run a whole sequence per node.  A recurrent loop (a strongly connected component,
closed by ``axon.shift``/``axon.delay``) runs one time step at a time, its neurons holding their
state from step to step, as lava-dl's ``Recurrent`` block does.

An :class:`Interpreter` keeps state between calls where the graph says so (the ``persistent``
attribute of neurons, shifts, delta and sigma units, as slayer's ``persistent_state``);
``persistent_state=True`` makes every node keep its state (also delay lines), ``False`` none.
States reset when the batch size changes or on ``reset()``.

Dispatch is a table keyed by op name (``KERNELS``); each entry builds a :class:`Kernel` for a node.
Every stateful family op (:data:`slayerc.runtime.neurons.FAMILIES`) runs through its family's
registered kernel, so a new family needs no entry here.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from slayerc.errors import RuntimeSimError, SlayerError
from slayerc.ir.analysis import cycles, topo_order
from slayerc.ir.core import Graph, Op, ParamRef
from slayerc.runtime import interp_kernels as K
from slayerc.runtime import neurons as families

Value = Any  # a tensor, or a (re, im) pair of tensors for complex values


@dataclass
class Kernel:
    """How one node runs: ``fn(inputs)`` on whole sequences; ``step`` keeps per-step state."""

    fn: Callable[[list[Value]], Value]
    modules: list[torch.nn.Module] = field(default_factory=list)
    reset: Callable[[], None] = lambda: None


KERNELS: dict[str, Callable[[Op, Graph, K.Context], Kernel]] = {
    "io.input": K.identity,
    "io.output": K.identity,
    "synapse.dense": K.dense,
    "synapse.conv": K.conv,
    "synapse.pool": K.pool,
    "synapse.conv_transpose": K.conv_transpose,
    "synapse.unpool": K.unpool,
    "synapse.kwta": K.kwta,
    "neuron.dropout": K.identity,
    "axon.shift": K.shift,
    "axon.delay": K.delay,
    "tensor.flatten": K.reshape,
    "tensor.reshape": K.reshape,
    "tensor.add": K.add,
    "tensor.concat": K.concat,
    "tensor.affine": K.affine,
    "tensor.quantize": K.quantize,
    "tensor.average": K.average,
    "norm.batch": K.batch_norm,
    "norm.mean_only": K.mean_only_norm,
    "norm.weight_scale": K.weight_scale_norm,
}


BUFFER_ATTRS = frozenset({"mean", "var", "mask"})
"""Attributes whose parameters are statistics or structure: module buffers, never trained."""


class GraphModule(torch.nn.Module):
    """A verified IR graph as a ``torch.nn.Module`` (see :func:`slayerc.to_module`).

    Its parameters are the graph's parameters, registered under their own names (``fc1.weight``
    is ``module.fc1.weight``; a name that cannot be a module path is flattened with ``_``), so
    ``state_dict`` keys are the graph's parameter names.  Norm statistics and masks are buffers.
    ``kind`` picks the neuron kernels registered in :mod:`slayerc.runtime.neurons` (``"torch"``,
    or ``"triton"`` once the Triton backend is imported; a family without one runs its torch
    dynamics).  Learnable decays are clamped to their IR range on every forward, as slayer does.
    :meth:`to_graph` gives the graph back with the current parameter values.
    """

    def __init__(self, graph: Graph, kind: str = "torch", persistent_state: bool | None = None,
                 dtype: torch.dtype = torch.float32, requires_grad: bool = True):
        super().__init__()
        if "shapes" not in graph.facts:
            raise RuntimeSimError("the interpreter needs shapes: run the 'shape-infer' pass first")
        self._graph, self.persistent_state, self.dtype = graph, persistent_state, dtype
        self._paths: dict[str, str] = {}
        live = self._register(graph, dtype, requires_grad)
        loops = cycles(graph)
        self.loop_of = {name: i for i, loop in enumerate(loops) for name in loop}
        self.loops = loops
        self.order = topo_order(graph)
        ctx = K.Context(dtype=dtype, params=live, kind=kind)
        self.kernels: dict[str, Kernel] = {}
        self.keeps: dict[str, bool] = {}
        for node in graph:
            build = KERNELS.get(node.OP) or (K.neuron if node.OP in families.FAMILIES else None)
            if build is None:
                raise RuntimeSimError(f"{node.describe()}: the interpreter cannot run {node.OP}")
            try:
                node_ctx = ctx.for_node(node, node.name in self.loop_of, persistent_state)
                self.keeps[node.name] = node_ctx.persistent
                self.kernels[node.name] = build(node, graph, node_ctx)
            except SlayerError as e:
                raise RuntimeSimError(f"{node.describe()}: {e}") from e
        self._clamps = _clamps(graph)
        self._batch: int | None = None
        self._loop_prev: dict[str, list[Value]] = {}

    # -- parameters ------------------------------------------------------------------------
    def _register(self, graph: Graph, dtype: torch.dtype,
                  requires_grad: bool) -> dict[str, torch.Tensor]:
        """Register every graph parameter on this module; returns name -> live tensor."""
        use = {ref.name: attr for node in graph for attr, ref in node.param_refs()}
        for name, arr in graph.params.items():
            t = torch.tensor(np.asarray(arr), dtype=dtype)  # a copy: graphs are values
            owner, leaf = self._owner(name)
            if requires_grad and use.get(name) not in BUFFER_ATTRS:
                owner.register_parameter(leaf, torch.nn.Parameter(t))
            else:
                owner.register_buffer(leaf, t)
        return _Live(self)

    def _owner(self, name: str) -> tuple[torch.nn.Module, str]:
        """The submodule and attribute that hold parameter ``name`` (created on demand)."""
        *path, leaf = name.split(".")
        owner: torch.nn.Module = self
        try:
            for part in path:
                child = owner._modules.get(part)
                if child is None:
                    if not part or hasattr(owner, part):
                        raise KeyError(part)
                    child = torch.nn.Module()
                    owner.add_module(part, child)
                owner = child
            if not leaf or hasattr(owner, leaf):
                raise KeyError(leaf)
        except KeyError:
            owner, leaf = self, "p_" + name.replace(".", "_")
        self._paths[name] = leaf if owner is self else name
        return owner, leaf

    def tensors(self) -> dict[str, torch.Tensor]:
        """Graph parameter name -> this module's live tensor (parameter or buffer)."""
        live = _Live(self)
        return {name: live[name] for name in self._paths}

    def to_graph(self) -> Graph:
        """The graph with this module's current parameter values (ready to save as ``.sir`` or
        ``.net``): each array keeps its dtype and shape; integer arrays (delays) are truncated
        to whole steps and held at ``>= 0``; decays are held in their IR range.  The facts
        ``quant-legal`` and ``delays-legal`` are dropped (run the target's legalization before
        writing a netlist)."""
        params = {}
        for name, t in self.tensors().items():
            old = np.asarray(self._graph.params[name])
            arr = t.detach().cpu().to(torch.float64).numpy().reshape(old.shape)
            if np.issubdtype(old.dtype, np.integer):
                arr = np.maximum(np.trunc(arr), 0)
            lo_hi = self._clamps.get(name)
            if lo_hi is not None:
                arr = np.clip(arr, *lo_hi)
            params[name] = arr.astype(old.dtype)
        # trained values are off the target's grid and may exceed its delay limit
        facts = self._graph.facts - {"quant-legal", "delays-legal"}
        return self._graph.replace(params=params, facts=facts)

    @property
    def graph(self) -> Graph:
        """The graph this module was built from (its parameters as they were then)."""
        return self._graph

    def reset(self) -> None:
        """Forget every carried state (neurons, shift buffers, delay lines)."""
        for k in self.kernels.values():
            k.reset()
        self._loop_prev = {}

    def forward(self, x: torch.Tensor | np.ndarray | Mapping[str, Any]) -> Any:
        """Run on ``x``; returns the output (or a dict by output name if there are several)."""
        feeds = self._feeds(x)
        batch = next(iter(feeds.values())).shape[0]
        if batch != self._batch:
            self.reset()
        for name, kernel in self.kernels.items():
            if not self.keeps[name]:
                kernel.reset()
        self._batch = batch
        self._clamp()
        values: dict[str, Value] = {}
        done_loops: set[int] = set()
        for name in self.order:
            if name in values:
                continue
            loop = self.loop_of.get(name)
            if loop is None:
                values[name] = self._run(name, values, feeds)
            elif loop not in done_loops:
                done_loops.add(loop)
                values.update(self._run_loop(self.loops[loop], values, feeds))
        outs = {n.name: values[n.name] for n in self._graph.outputs}
        return next(iter(outs.values())) if len(outs) == 1 else outs

    def _clamp(self) -> None:
        """Hold learnable decays and delays in their IR range (slayer clamps them the same
        way)."""
        if not self._clamps or not torch.is_grad_enabled():
            return
        live = self.tensors()
        with torch.no_grad():
            for name, (lo, hi) in self._clamps.items():
                if live[name].requires_grad:
                    live[name].clamp_(lo, hi)


    # -- internals -------------------------------------------------------------------------
    def _feeds(self, x: Any) -> dict[str, torch.Tensor]:
        inputs = self._graph.inputs
        if not isinstance(x, Mapping):
            if len(inputs) != 1:
                names = ", ".join(f"%{n.name}" for n in inputs)
                raise RuntimeSimError(f"the graph has {len(inputs)} inputs ({names}); "
                                      "pass a dict from input name to tensor")
            x = {inputs[0].name: x}
        feeds = {}
        for node in inputs:
            if node.name not in x:
                raise RuntimeSimError(f"{node.describe()}: no value given for this input")
            t = torch.as_tensor(x[node.name]).to(self.dtype)
            if t.dim() == len(node.shape) + 1:  # type: ignore[arg-type]
                t = t.unsqueeze(0)
            if tuple(t.shape[1:-1]) != tuple(node.shape):  # type: ignore[arg-type]
                raise RuntimeSimError(
                    f"{node.describe()}: expected input [N, {', '.join(map(str, node.shape))}, T]"
                    f" (slayer layout, time last), got {list(t.shape)}")
            feeds[node.name] = t
        return feeds

    def _args(self, node: Op, values: dict[str, Value], feeds: dict[str, torch.Tensor]) -> list:
        if node.OP == "io.input":
            return [feeds[node.name]]
        return [values[i] for i in node.inputs]

    def _run(self, name: str, values: dict[str, Value], feeds: dict[str, torch.Tensor]) -> Value:
        node = self._graph[name]
        try:
            return self.kernels[name].fn(self._args(node, values, feeds))
        except SlayerError as e:
            raise RuntimeSimError(f"{node.describe()}: {e}") from e
        except (RuntimeError, ValueError) as e:
            raise RuntimeSimError(f"{node.describe()}: {e}") from e

    def _run_loop(self, loop: list[str], values: dict[str, Value],
                  feeds: dict[str, torch.Tensor]) -> dict[str, Value]:
        """Run a recurrent component one step at a time."""
        members = [n for n in self.order if n in set(loop)]
        first = next(iter(feeds.values()))
        steps, batch = int(first.shape[-1]), int(first.shape[0])
        trace: dict[str, list[Value]] = {n: [] for n in members}
        for t in range(steps):
            now: dict[str, Value] = {}
            for name in members:
                node = self._graph[name]
                args = [now[i] if i in now else (_at(values[i], t) if i in values else None)
                        for i in node.inputs]
                if node.is_delay():
                    src = node.inputs[0]
                    hist = _History(trace[src], t, batch, self._loop_prev.get(src), first)
                    now[name] = self.kernels[name].fn([hist])
                    trace[name].append(now[name])
                    continue
                now[name] = self.kernels[name].fn(args)
                trace[name].append(now[name])
        self._loop_prev.update({n: [_detach(v) for v in vs] for n, vs in trace.items()})
        return {n: _cat(trace[n]) for n in members}


class _Live(Mapping):
    """Graph parameter name -> the module's tensor now (buffers are new objects after
    ``module.to(...)``, so kernels look them up at each call)."""

    def __init__(self, module: GraphModule):
        self.module = module

    def __getitem__(self, name: str) -> torch.Tensor:
        obj: Any = self.module
        for part in self.module._paths[name].split("."):
            obj = getattr(obj, part)
        return obj

    def __iter__(self):
        return iter(self.module._paths)

    def __len__(self) -> int:
        return len(self.module._paths)


class Interpreter(GraphModule):
    """Runs one graph repeatedly, in inference (no gradients); see the module docstring."""

    def __init__(self, graph: Graph, persistent_state: bool | None = None,
                 dtype: torch.dtype = torch.float32, kind: str = "torch"):
        super().__init__(graph, kind=kind, persistent_state=persistent_state, dtype=dtype,
                         requires_grad=False)

    def __call__(self, x: torch.Tensor | np.ndarray | Mapping[str, Any]) -> Any:
        """Run on ``x``; returns the output (or a dict by output name if there are several)."""
        with torch.no_grad():
            return self.forward(x)

class _History:
    """The values a delay node's input had at the steps before ``t`` (for recurrent loops)."""

    def __init__(self, past: list[Value], t: int, batch: int, prev: list[Value] | None,
                 like: torch.Tensor):
        self.past, self.t, self.batch, self.prev = past, t, batch, prev
        self.like = like  #: a tensor of the run's dtype and device (for zero frames)


def _detach(v: Value) -> Value:
    """A value without autograd history (frames carried to the next call)."""
    return tuple(x.detach() for x in v) if isinstance(v, tuple) else v.detach()


def _at(v: Value, t: int) -> Value:
    if isinstance(v, tuple):
        return tuple(x[..., t:t + 1] for x in v)
    return v[..., t:t + 1]


def _cat(vs: list[Value]) -> Value:
    if vs and isinstance(vs[0], tuple):
        return tuple(torch.cat([v[i] for v in vs], dim=-1) for i in range(len(vs[0])))
    return torch.cat(vs, dim=-1)


def interpret(graph: Graph, x: Any, dtype: torch.dtype = torch.float32) -> Any:
    """Run ``graph`` once on ``x`` (see :class:`Interpreter`)."""
    return Interpreter(graph, dtype=dtype)(x)


def _clamps(graph: Graph) -> dict[str, tuple[float, float]]:
    """Parameter name -> IR range, for every bounded neuron parameter held as a parameter, and
    for delays (``[0, max_delay]``, as slayer clamps its learnable delays)."""
    out: dict[str, tuple[float, float]] = {}
    for node in graph:
        if node.OP == "axon.delay" and isinstance(node.delay, ParamRef):  # type: ignore
            top = node.max_delay  # type: ignore[attr-defined]
            out[node.delay.name] = (0.0, float(top) if top is not None else float("inf"))
        for attr, lo, hi, _ in getattr(node, "PARAMS", ()):
            ref = getattr(node, attr, None)
            if isinstance(ref, ParamRef) and lo is not None and hi is not None:
                out[ref.name] = (float(lo), float(hi))
    return out


def param_tensor(g: Graph, ref: ParamRef, dtype: torch.dtype) -> torch.Tensor:
    """A graph parameter as a torch tensor."""
    return torch.as_tensor(np.asarray(g.params[ref.name])).to(dtype)
