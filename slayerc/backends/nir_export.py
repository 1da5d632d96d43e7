"""NIR exporter: an IR :class:`Graph` to a ``nir.NIRGraph`` / ``.nir`` file.

The inverse of :mod:`slayerc.frontend.nir_import` at the same ``dt`` (seconds, default 1e-4,
stored in the graph's ``metadata['dt']`` so that slayerc reads it back at the same step).  Each
discrete ``neuron.cuba`` becomes the most specific NIR neuron whose forward-Euler discretisation
at ``dt`` is that neuron exactly (``docs/nir.md``), with unit input gain:

* ``current_decay = 1, voltage_decay = 1`` → ``Threshold(θ − bias)``;
* ``current_decay = 1, voltage_decay = 0`` (no bias) → ``IF(r = 1/dt, θ)``;
* ``current_decay = 1`` → ``LIF(tau = dt/αv, r = tau/dt, v_leak = bias/αv, θ)``;
* otherwise → ``CubaLIF(tau_syn = dt/αu, tau_mem = dt/αv, w_in = tau_syn/dt, r = tau_mem/dt,
  v_leak = bias/αv, θ)``.

A ``neuron.li`` (non-spiking) becomes ``LI(tau = dt/αv, r = tau/dt, v_leak = bias/αv)`` with
``current_decay = 1``, otherwise ``CubaLI`` (``tau_syn = dt/αu``, ``w_in = tau_syn/dt``).

``synapse.dense`` → ``Affine``/``Linear`` (mask applied), ``synapse.conv`` → ``Conv2d`` (and
the importer's ``Conv1d`` form, ``tensor.reshape`` → ``1×k`` conv → ``tensor.reshape``, →
``Conv1d``),
``synapse.pool`` with a uniform kernel → ``SumPool2d``/``AvgPool2d``, ``tensor.flatten`` →
``Flatten``, ``tensor.affine`` without bias → ``Scale``, ``dendrite.sigma`` → ``I(r = 1/dt)``,
``axon.shift``/``axon.delay`` → ``Delay(steps·dt)``; ``tensor.add`` dissolves into edges (NIR sums
a node's inputs) and a one-step ``axon.shift`` that closes a cycle dissolves into the cycle's
back edge.  Anything else is a :class:`~slayerc.errors.BackendError` naming the node.
"""

from __future__ import annotations

import math
import os
from typing import Any

import numpy as np

from slayerc.errors import BackendError
from slayerc.ir.core import Graph, Op, ParamRef
from slayerc.ir.fileio import atomic_write
from slayerc.ir.shapes import infer_shapes

DEFAULT_DT = 1e-4
"""Time step (seconds) the continuous parameters are computed for (the importer's default)."""


def save_nir(g: Graph, path: str | os.PathLike, *, dt: float = DEFAULT_DT, **_: Any) -> None:
    """Write ``g`` as a ``.nir`` file (all or nothing)."""
    nir = _nir()
    graph = to_nir(g, dt=dt)
    atomic_write(path, lambda tmp: nir.write(tmp, graph))


def to_nir(g: Graph, *, dt: float = DEFAULT_DT) -> Any:
    """Convert an IR graph to a ``nir.NIRGraph`` (shapes inferred first)."""
    nir = _nir()
    if not (isinstance(dt, (int, float)) and math.isfinite(dt) and dt > 0):
        raise BackendError(f"dt must be a positive number of seconds, got {dt!r}")
    if "shapes" not in g.facts or any(n.shape is None for n in g):
        g = infer_shapes(g)
    return _Exporter(g, float(dt), nir).run()


def _nir() -> Any:
    try:
        import nir
    except ImportError:
        raise BackendError("writing NIR needs the 'nir' package: pip install "
                           "'slayerc[nir]'") from None
    return nir


class _Exporter:
    def __init__(self, g: Graph, dt: float, nir: Any):
        self.g, self.dt, self.nir = g, dt, nir
        self.order = {name: i for i, name in enumerate(g.nodes)}
        self.conv1d = {r.name: c for r in g if (c := _conv1d_of(g, r)) is not None}
        self.inner = {n for c in self.conv1d.values() for n in (c.name, c.inputs[0])}

    def run(self) -> Any:
        nodes: dict[str, Any] = {}
        for node in self.g:
            if self._dissolves(node):
                continue
            conv = _CONVERTERS.get(node.OP)
            if conv is None:
                raise BackendError(f"{node.describe()}: NIR has no primitive for {node.OP}; "
                                   f"slayerc exports {', '.join(sorted(_CONVERTERS))}")
            nodes[node.name] = conv(self, node)
        edges = [(src, node.name) for node in self.g if node.name in nodes
                 for src in self._sources(node)]
        return self.nir.NIRGraph(nodes=nodes, edges=edges,
                                 metadata={"dt": self.dt, "producer": "slayerc"})

    def _dissolves(self, node: Op) -> bool:
        if node.OP == "tensor.add" or node.name in self.inner:  # inner: a Conv1d's halves
            return True
        return node.OP == "axon.shift" and self._closes_cycle(node)

    def _closes_cycle(self, node: Op) -> bool:
        if not node.inputs or self.order[node.inputs[0]] < self.order[node.name]:
            return False
        if node.steps != 1:  # type: ignore[attr-defined]
            raise BackendError(f"{node.describe()}: a cycle closed by {node.steps} steps; a "  # type: ignore[attr-defined]
                               "NIR cycle carries one step (add a forward axon.shift for the "
                               "rest)")
        return True

    def _sources(self, node: Op) -> list[str]:
        out: list[str] = []
        for src in node.inputs:
            s = self.g[src]
            if self._dissolves(s):
                out += self._sources(s)
            else:
                out.append(src)
        return out

    # -- values ------------------------------------------------------------------------------
    def value(self, node: Op, attr: str) -> np.ndarray:
        v = getattr(node, attr)
        if isinstance(v, ParamRef):
            arr = np.asarray(self.g.params[v.name], np.float64)
        else:
            arr = np.asarray(0.0 if v is None else float(v), np.float64)
        shape = tuple(node.shape or ())
        if arr.shape == shape:
            return arr
        if arr.ndim == 1 and len(shape) > 1 and arr.shape[0] == shape[0]:
            return np.broadcast_to(arr.reshape(-1, *([1] * (len(shape) - 1))), shape).copy()
        return np.broadcast_to(arr, shape).copy()

    def shape(self, name: str) -> np.ndarray:
        return np.array(self.g[name].shape, dtype=np.int64)


def _f32(a: Any) -> np.ndarray:
    return np.asarray(a, dtype=np.float32)


def _io_input(ex: _Exporter, node: Op) -> Any:
    return ex.nir.Input(input_type={"input": ex.shape(node.name)})


def _io_output(ex: _Exporter, node: Op) -> Any:
    return ex.nir.Output(output_type={"output": ex.shape(node.inputs[0])})


def _masked_weight(ex: _Exporter, node: Op) -> np.ndarray:
    """A real synapse's weight with its mask applied (NIR has no complex synapse)."""
    if node.weight_imag is not None:  # type: ignore[attr-defined]
        raise BackendError(f"{node.describe()}: NIR has no complex synapse")
    w = np.asarray(ex.g.param(node.weight))  # type: ignore[attr-defined]
    if node.mask is not None:  # type: ignore[attr-defined]
        w = w * ex.g.param(node.mask)  # type: ignore[attr-defined]
    return w


def _dense(ex: _Exporter, node: Op) -> Any:
    w = _masked_weight(ex, node)
    if node.bias is None:  # type: ignore[attr-defined]
        return ex.nir.Linear(weight=np.array(w))
    return ex.nir.Affine(weight=np.array(w), bias=np.array(ex.g.param(node.bias)))  # type: ignore[attr-defined]


def _conv(ex: _Exporter, node: Op) -> Any:
    w = _masked_weight(ex, node)
    bias = ex.g.param(node.bias) if node.bias is not None else np.zeros(w.shape[0], w.dtype)  # type: ignore[attr-defined]
    # NIR types a conv's input as weight.shape[1] channels: wrong for groups > 1, so no shape
    size = tuple(ex.g[node.inputs[0]].shape[1:]) if node.groups == 1 else None  # type: ignore[attr-defined]
    return ex.nir.Conv2d(input_shape=size, weight=np.array(w),
                         stride=tuple(node.stride), padding=tuple(node.padding),  # type: ignore[attr-defined]
                         dilation=tuple(node.dilation), groups=node.groups,  # type: ignore[attr-defined]
                         bias=np.array(bias))


def _conv1d_of(g: Graph, node: Op) -> Op | None:
    """The ``synapse.conv`` of a ``Conv1d`` the importer wrote as ``tensor.reshape`` to
    ``(C, 1, L)`` → conv with a ``1×k`` kernel → ``tensor.reshape`` to ``(C', L')`` (``node``:
    the last reshape), or None."""
    if node.OP != "tensor.reshape" or len(node.shape or ()) != 2:
        return None
    conv = g[node.inputs[0]]
    if conv.OP != "synapse.conv" or len(g.users(conv.name)) != 1:
        return None
    first = g[conv.inputs[0]]
    ok = (first.OP == "tensor.reshape" and len(g.users(first.name)) == 1
          and len(g[first.inputs[0]].shape or ()) == 2 and (first.shape or ())[1:2] == (1,)
          and np.shape(g.param(conv.weight))[2] == 1  # type: ignore[attr-defined]
          and conv.stride[0] == 1 and conv.padding[0] == 0)  # type: ignore[attr-defined]
    return conv if ok else None


def _reshape(ex: _Exporter, node: Op) -> Any:
    conv = ex.conv1d.get(node.name)
    if conv is None:
        raise BackendError(f"{node.describe()}: NIR has no primitive for a general "
                           "tensor.reshape (slayerc exports the reshapes around a Conv1d)")
    w = _masked_weight(ex, conv)[:, :, 0, :]
    bias = ex.g.param(conv.bias) if conv.bias is not None else np.zeros(w.shape[0], w.dtype)  # type: ignore[attr-defined]
    length = int(ex.g[ex.g[conv.inputs[0]].inputs[0]].shape[1])
    return ex.nir.Conv1d(input_shape=length if conv.groups == 1 else None,  # type: ignore[attr-defined]
                         weight=np.array(w), stride=int(conv.stride[1]),  # type: ignore[attr-defined]
                         padding=int(conv.padding[1]), dilation=int(conv.dilation[1]),  # type: ignore[attr-defined]
                         groups=int(conv.groups), bias=np.array(bias))  # type: ignore[attr-defined]


def _pool(ex: _Exporter, node: Op) -> Any:
    k = tuple(node.kernel)  # type: ignore[attr-defined]
    w = np.asarray(ex.g.param(node.weight))  # type: ignore[attr-defined]
    x = ex.g[node.inputs[0]].shape
    if any(x[i + 1] % k[i] for i in range(2)) or node.dilation != (1, 1):  # type: ignore[attr-defined]
        raise BackendError(f"{node.describe()}: slayer's pool pads H mod kH (input "
                           f"{list(x)}, kernel {list(k)}) or dilates; NIR's pools do neither")
    cls = None
    if np.all(w == 1):
        cls = ex.nir.SumPool2d
    elif np.allclose(w, 1.0 / (k[0] * k[1]), rtol=1e-6, atol=0):
        cls = ex.nir.AvgPool2d
    if cls is None:
        raise BackendError(f"{node.describe()}: a pool kernel that is not uniform (ones or "
                           "1/(kH·kW)) has no NIR primitive; use synapse.conv")
    return cls(kernel_size=np.array(k), stride=np.array(node.stride),  # type: ignore[attr-defined]
               padding=np.array(node.padding))  # type: ignore[attr-defined]


def _flatten(ex: _Exporter, node: Op) -> Any:
    return ex.nir.Flatten(input_type={"input": ex.shape(node.inputs[0])}, start_dim=0,
                          end_dim=-1)


def _affine(ex: _Exporter, node: Op) -> Any:
    if node.bias != 0:  # type: ignore[attr-defined]
        raise BackendError(f"{node.describe()}: tensor.affine with bias {node.bias!r} has no "  # type: ignore[attr-defined]
                           "NIR primitive (Scale has none)")
    return ex.nir.Scale(scale=np.full(ex.g[node.name].shape, node.scale, np.float32))  # type: ignore[attr-defined]


def _sigma(ex: _Exporter, node: Op) -> Any:
    return ex.nir.I(r=np.full(node.shape, 1.0 / ex.dt, np.float32))  # type: ignore[arg-type]


def _delay(ex: _Exporter, node: Op) -> Any:
    if node.persistent:  # type: ignore[attr-defined]
        raise BackendError(f"{node.describe()}: a persistent delay carries state across runs; "
                           "NIR has no such delay")
    steps = node.steps if node.OP == "axon.shift" else ex.value(node, "delay")  # type: ignore[attr-defined]
    return ex.nir.Delay(delay=np.broadcast_to(np.asarray(steps, np.float64) * ex.dt,
                                              node.shape).copy())  # type: ignore[arg-type]


def _cuba(ex: _Exporter, node: Op) -> Any:
    if node.graded or node.persistent:  # type: ignore[attr-defined]
        what = "graded spikes" if node.graded else "a persistent state"  # type: ignore[attr-defined]
        raise BackendError(f"{node.describe()}: NIR's neurons have no {what}")
    th = ex.value(node, "threshold")
    a_u, a_v = ex.value(node, "current_decay"), ex.value(node, "voltage_decay")
    bias = ex.value(node, "bias")
    dt, nir = ex.dt, ex.nir
    if np.all(a_u == 1) and np.all(a_v == 1):
        return nir.Threshold(threshold=_f32(th - bias))
    zero = np.zeros_like(th)
    if np.all(a_u == 1) and np.all(a_v == 0) and np.all(bias == 0):
        return nir.IF(r=_f32(zero + 1 / dt), v_threshold=_f32(th), v_reset=_f32(zero))
    if np.any(a_v == 0) or np.any(a_u == 0):
        which = "voltage_decay" if np.any(a_v == 0) else "current_decay"
        raise BackendError(f"{node.describe()}: {which} 0 (a perfect integrator) with a leaky "
                           "partner has no finite NIR time constant")
    tau_mem = dt / a_v
    common = {"r": _f32(tau_mem / dt), "v_leak": _f32(bias / a_v), "v_threshold": _f32(th),
              "v_reset": _f32(zero)}
    if np.all(a_u == 1):
        return nir.LIF(tau=_f32(tau_mem), **common)
    tau_syn = dt / a_u
    return nir.CubaLIF(tau_syn=_f32(tau_syn), tau_mem=_f32(tau_mem), w_in=_f32(tau_syn / dt),
                       **common)


def _li(ex: _Exporter, node: Op) -> Any:
    if node.persistent:  # type: ignore[attr-defined]
        raise BackendError(f"{node.describe()}: NIR's neurons have no persistent state")
    a_u, a_v = ex.value(node, "current_decay"), ex.value(node, "voltage_decay")
    bias, dt = ex.value(node, "bias"), ex.dt
    if np.any(a_v == 0) or np.any(a_u == 0):
        which = "voltage_decay" if np.any(a_v == 0) else "current_decay"
        raise BackendError(f"{node.describe()}: {which} 0 (a perfect integrator) has no finite "
                           "NIR time constant")
    tau_mem = dt / a_v
    common = {"r": _f32(tau_mem / dt), "v_leak": _f32(bias / a_v)}
    if np.all(a_u == 1):
        return ex.nir.LI(tau=_f32(tau_mem), **common)
    tau_syn = dt / a_u
    return ex.nir.CubaLI(tau_syn=_f32(tau_syn), tau_mem=_f32(tau_mem), w_in=_f32(tau_syn / dt),
                         **common)


_CONVERTERS = {
    "io.input": _io_input,
    "io.output": _io_output,
    "synapse.dense": _dense,
    "synapse.conv": _conv,
    "synapse.pool": _pool,
    "tensor.flatten": _flatten,
    "tensor.reshape": _reshape,
    "tensor.affine": _affine,
    "dendrite.sigma": _sigma,
    "axon.shift": _delay,
    "axon.delay": _delay,
    "neuron.cuba": _cuba,
    "neuron.li": _li,
}
