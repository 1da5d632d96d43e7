"""Choosing the activation ramp: how fast the converted layers' activation scales grow.

A loihi2 netlist has no weight exponent for sigma-delta layers: every weight is an 8-bit
mantissa on the fixed ``2/64`` grid, the input is an integer ``x·64·s₀`` and every message must
fit 16 bits (below 8).  A ReLU network is positively homogeneous, so the importer picks each
layer's activation scale ``s_l`` freely and the next layer undoes it.  The weight step of layer
``l`` in the model's units is ``(2/64)·s_{l-1}/s_l`` and the input step ``1/(64·s₀)``, so their
product over the hidden layers is fixed by the last hidden layer's scale (at most
``activation_max`` over its largest activation): scaling only moves the error between the
input and the layers.  Spread evenly, the scales grow by a factor ``ramp`` per hidden weighted
layer (``activation_max / ramp^k`` for a tensor ``k`` hidden layers before the output); the
output layer is free (its decoder undoes a power of two) and sits at the top of the mantissa.

Which ramp is best depends on the model (how much its output cancels), so :func:`best_ramp`
converts with a few and keeps the one whose grid-rounded float model (weights to ``2/64``,
biases to ``1/64``, input to ``1/(64·s₀)``) is closest to the exact one on the calibration
batch.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from slayerc.ir.core import Graph, ParamRef
from slayerc.runtime.interpreter import interpret

#: The ramps tried by :func:`best_ramp`.
RAMPS = (1.0, 1.25, 1.5, 2.0, 2.5, 3.0)
WEIGHTED = ("synapse.dense", "synapse.conv", "synapse.pool")


def _rounded(g: Graph) -> Graph:
    """``g`` with synapse weights on the ``2/64`` grid and neuron biases on ``1/64``."""
    params = dict(g.params)
    for n in g:
        for attr, step in (("weight", 2 / 64), ("bias", 1 / 64)):
            ref = getattr(n, attr, None)
            if isinstance(ref, ParamRef) and (attr == "bias" or n.OP in WEIGHTED):
                params[ref.name] = (np.rint(np.asarray(params[ref.name], np.float64) / step)
                                    * step).astype(np.float32)
    return g.replace(params=params)


def _input_rounded(g: Graph, x: torch.Tensor) -> torch.Tensor:
    """``x`` on the netlist's input grid ``1/(64·s₀)`` (``s₀``: the input's affine scale)."""
    inp = g.inputs[0]
    scale = next((float(u.scale) for u in g.users(inp.name) if u.OP == "tensor.affine"), 1.0)
    return torch.round(x * (64 * scale)) / (64 * scale)


def grid_error(g: Graph, calib: torch.Tensor, steps: int) -> float:
    """Largest output error of the grid-rounded ``g`` on ``calib`` held ``steps`` steps,
    relative to the largest output of ``g`` itself."""
    x = calib[..., None].repeat(*([1] * calib.dim()), steps)
    with torch.no_grad():
        exact = interpret(g, x)
        rough = interpret(_rounded(g), _input_rounded(g, x))
    if isinstance(exact, dict):
        pairs = [(exact[k][..., -1], rough[k][..., -1]) for k in exact]  # type: ignore[index]
    else:
        pairs = [(exact[..., -1], rough[..., -1])]  # type: ignore[index]
    top = max(float(a.abs().max()) for a, _ in pairs) or 1.0
    return max(float((a - b).abs().max()) for a, b in pairs) / top


def best_ramp(convert: Callable[[float], Graph], calib: torch.Tensor,
              steps: int) -> tuple[Graph, float, float]:
    """Convert with every ramp of :data:`RAMPS`; the graph, ramp and grid error of the best."""
    best: tuple[Graph, float, float] | None = None
    for ramp in RAMPS:
        g = convert(ramp)
        err = grid_error(g, calib, steps)
        if best is None or err < best[2] - 1e-9:
            best = (g, ramp, err)
    assert best is not None
    return best
