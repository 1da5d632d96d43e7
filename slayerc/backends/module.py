"""``to_module``: any verified IR graph as a trainable ``torch.nn.Module``, and back.

::

    g = slayerc.load("net.net")                     # or .sir, or slayerc.trace(model, x)
    m = slayerc.to_module(g, backend="triton")      # parameters named after the graph's
    opt = torch.optim.Adam(m.parameters(), 1e-3)
    ...                                             # train: m(x) is [N, *S, T] like slayer
    slayerc.save(slayerc.from_module(m), "tuned.net")   # legalize for the target first

The module is :class:`slayerc.runtime.interpreter.GraphModule`: it runs every node with the
interpreter's kernels and every neuron through its family's registered kernel of the chosen
backend (:mod:`slayerc.runtime.neurons`): ``"torch"`` (the integer-exact float dynamics with
autograd) or ``"triton"`` (the fused kernels; on CPU only under ``TRITON_INTERPRET=1``,
otherwise the torch dynamics run, with one warning).  Trainable: synapse weights and biases,
delays held as parameters (``trunc(d)`` forward, slayer's delay gradient), neuron parameters held
as graph parameters (per-channel decays, sigma-delta thresholds and biases); ``learn_neuron=True``
turns scalar neuron parameters into parameters too.  Persistent state follows the graph's
``persistent`` attributes (or ``persistent_state=``).
"""

from __future__ import annotations

import importlib
from typing import Any

import numpy as np
import torch

from slayerc.errors import BackendError, SlayerError
from slayerc.ir.core import Graph, ParamRef
from slayerc.runtime import neurons as families
from slayerc.runtime.interpreter import GraphModule

BACKENDS = {"torch": None, "triton": "slayerc.backends.triton"}
"""Backend name -> module that registers its kernels (imported on first use)."""

_PROMOTED = "slayerc.promoted"


def to_module(graph: Graph, backend: str = "torch", *, learn_neuron: bool = False,
              persistent_state: bool | None = None,
              dtype: torch.dtype = torch.float32) -> GraphModule:
    """A trainable module of ``graph`` (see the module docstring).

    Args:
        graph: a graph with shapes (run ``shape-infer`` first; ``load`` and ``trace`` do).
        backend: ``"torch"`` or ``"triton"``: which registered neuron kernels run.
        learn_neuron: also train the scalar neuron parameters (decays, thresholds of
            sigma-delta units): each becomes a one-element parameter ``<node>.<attr>``, folded
            back into a scalar by :func:`from_module`.
        persistent_state: override the graph's persistent attributes (True: every state).
        dtype: parameter and computation dtype.
    """
    if backend not in BACKENDS:
        raise BackendError(f"unknown backend {backend!r}; available: {', '.join(BACKENDS)}")
    if BACKENDS[backend]:
        importlib.import_module(BACKENDS[backend])
    if "shapes" not in graph.facts:
        raise BackendError("to_module needs a graph with shapes: run the 'shape-infer' pass")
    promoted: dict[str, tuple[str, str]] = {}
    if learn_neuron:
        graph, promoted = _promote(graph)
    try:
        module = GraphModule(graph, kind=backend, persistent_state=persistent_state, dtype=dtype)
    except SlayerError as e:
        raise BackendError(f"to_module: {e}") from e
    setattr(module, _PROMOTED.replace(".", "_"), promoted)
    return module


def from_module(module: torch.nn.Module) -> Graph:
    """The IR graph of a module made by :func:`to_module`, with its current parameters.

    Integer parameters (delays) are truncated to whole steps, decays held in range, and scalar
    parameters promoted by ``learn_neuron`` folded back into their attributes.  Save the result
    with :func:`slayerc.save` (``.sir``; for a ``.net`` run the target's legalization passes,
    as ``slayerc opt -p ... -o net.net`` does).
    """
    if not isinstance(module, GraphModule):
        raise BackendError(f"from_module takes a module made by slayerc.to_module, got "
                           f"{type(module).__name__}")
    g = module.to_graph()
    promoted = getattr(module, _PROMOTED.replace(".", "_"), {})
    return _fold(g, promoted) if promoted else g


def _promote(graph: Graph) -> tuple[Graph, dict[str, tuple[str, str]]]:
    """Scalar family parameters as one-element graph parameters ``<node>.<attr>``."""
    params = dict(graph.params)
    nodes, promoted = [], {}
    for node in graph:
        if node.OP not in families.FAMILIES:
            nodes.append(node)
            continue
        changes: dict[str, Any] = {}
        for attr in families.family(node.OP).PARAMS:
            value = getattr(node, attr, None)
            if not isinstance(value, float):  # a parameter already, or whole steps (delays)
                continue
            name = f"{node.name}.{attr}"
            if name in params:
                raise BackendError(f"{node.describe()}: cannot make '{attr}' learnable: a "
                                   f"parameter @{name} exists already")
            params[name] = np.array([float(value)], dtype=np.float32)
            changes[attr] = ParamRef(name)
            promoted[name] = (node.name, attr)
        nodes.append(node.replace(**changes) if changes else node)
    return graph.replace(nodes=nodes, params=params), promoted


def _fold(graph: Graph, promoted: dict[str, tuple[str, str]]) -> Graph:
    """Undo :func:`_promote`: promoted parameters back into scalar attributes."""
    params = dict(graph.params)
    changes: dict[str, dict[str, float]] = {}
    for name, (node, attr) in promoted.items():
        changes.setdefault(node, {})[attr] = float(params.pop(name).reshape(-1)[0])
    nodes = [n.replace(**changes[n.name]) if n.name in changes else n for n in graph]
    return graph.replace(nodes=nodes, params=params)
