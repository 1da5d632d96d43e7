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

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from slayerc.ir.core import Graph, ParamRef
from slayerc.runtime.interpreter import interpret

#: Largest weight of the netlist's 8-bit mantissa on the 2/64 grid (127·2/64).
WEIGHT_TOP = 254 / 64
#: Pool weights sit exactly on this grid (legalize-quant's 2/64 weight step).
WEIGHT_STEP = 2 / 64
#: The largest value of the constant neuron that computes an output bias (outbias.py).
CONST_MAX = 4.0
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


def _last(y: Any) -> list[torch.Tensor]:
    """The outputs' last step, in output order."""
    return [v[..., -1] for v in y.values()] if isinstance(y, dict) else [y[..., -1]]


def grid_error(g: Graph, calib: torch.Tensor, steps: int,
               exact: list[torch.Tensor] | None = None) -> float:
    """Largest output error of the grid-rounded ``g`` on ``calib`` held ``steps`` steps,
    relative to the largest output of ``g`` itself (or of ``exact``, its outputs there)."""
    x = calib[..., None].repeat(*([1] * calib.dim()), steps)
    with torch.no_grad():
        ref = exact if exact is not None else _last(interpret(g, x))
        rough = _last(interpret(_rounded(g), _input_rounded(g, x)))
    top = max(float(a.abs().max()) for a in ref) or 1.0
    return max(float((a - b).abs().max()) for a, b in zip(ref, rough)) / top


def best_ramp(convert: Callable[[float], Graph], calib: torch.Tensor,
              steps: int) -> tuple[Graph, float, float]:
    """Convert with every ramp of :data:`RAMPS`; the graph, ramp and grid error of the best
    (on at most 8 calibration samples; the exact outputs are the same for every ramp)."""
    calib = calib[:8]
    best: tuple[Graph, float, float] | None = None
    exact: list[torch.Tensor] | None = None
    for ramp in RAMPS:
        g = convert(ramp)
        if exact is None:
            with torch.no_grad():
                exact = _last(interpret(g, calib[..., None].repeat(
                    *([1] * calib.dim()), steps)))
        err = grid_error(g, calib, steps, exact)
        if best is None or err < best[2] - 1e-9:
            best = (g, ramp, err)
    assert best is not None
    return best


class ScalePlan:
    """The converter's choice of scales (mixed into
    :class:`~slayerc.frontend.onnx.convert.Converter`, whose ``model``, ``outputs``,
    ``consumers``, ``opts``, ``relu_max`` and ``_after`` it reads)."""

    model: Any
    outputs: list[str]
    consumers: dict[str, list[Any]]
    opts: Any
    relu_max: dict[str, float]
    final: set[str]
    _after: dict[str, int]

    def _final_segment(self) -> set[str]:
        """Tensors from which an output is reached through linear ops only (scale 1 there)."""
        producer = {o: n for n in self.model.graph.node for o in n.output}
        seen: set[str] = set()
        todo = list(self.outputs)
        while todo:
            t = todo.pop()
            if t in seen:
                continue
            seen.add(t)
            n = producer.get(t)
            if n is not None and n.op_type not in ("Relu", "Clip"):
                todo.extend(n.input)
        return seen

    def stages_after(self, tensor: str) -> int:
        """Most weighted ops (Conv, Gemm, MatMul) on a path from ``tensor`` to an output."""
        if tensor not in self._after:
            self._after[tensor] = 0
            best = 0
            for n in self.consumers.get(tensor, []):
                own = n.op_type in ("Conv", "Gemm", "MatMul")
                best = max(best, own + max((self.stages_after(o) for o in n.output), default=0))
            self._after[tensor] = best
        return self._after[tensor]

    def target_max(self, tensor: str) -> float:
        """The largest activation the stream of ``tensor`` should carry (``activation_max``,
        divided by ``ramp`` per hidden weighted layer between it and the output)."""
        hidden = max(self.stages_after(tensor) - 1, 0)
        return self.opts.activation_max / self.opts.ramp ** hidden

    def segment_max(self, tensor: str, calib: torch.Tensor) -> float:
        """Largest calibration activation of the ReLUs reached from ``tensor`` through linear
        ops (the layer the scale is chosen for), else the tensor's own largest magnitude."""
        best, seen, todo = 0.0, set(), [tensor]
        while todo:
            t = todo.pop()
            if t in seen:
                continue
            seen.add(t)
            for n in self.consumers.get(t, []):
                if n.op_type in ("Relu", "Clip"):
                    best = max(best, float(self.relu_max.get(n.output[0], 0.0)))
                else:
                    todo.extend(n.output)
        if best <= 0:
            best = float(calib.abs().max()) if calib.numel() else 0.0
        return best if best > 0 else 1.0

    def kappa_for(self, tensor: str, calib: torch.Tensor, w_unit: float = 0.0) -> float:
        """The scale of a new synapse's output; ``w_unit`` is its largest IR weight at scale 1
        (scale ``k`` makes it ``k·w_unit``, which must stay on the 8-bit mantissa).

        Hidden layers: ``target_max / largest activation``, capped so the weights fit.  The
        synapses of the final (linear) segment: the power of two ``2^output_exp`` that puts the
        largest weight in the mantissa's top octave (the output decoder undoes it)."""
        if not self.opts.normalize:
            return 1.0
        top = WEIGHT_TOP / w_unit if w_unit > 0 else math.inf
        if tensor in self.final:
            if self.opts.output_exp is not None:
                return 2.0 ** self.opts.output_exp
            return 2.0 ** math.floor(math.log2(top)) if math.isfinite(top) else 1.0
        return min(self.target_max(tensor) / self.segment_max(tensor, calib), top)
