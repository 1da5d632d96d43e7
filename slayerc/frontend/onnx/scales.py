"""Choosing the activation scales of a converted network.

A loihi2 netlist has no weight exponent for sigma-delta layers: every weight is an 8-bit
mantissa on a fixed grid (``1/64`` for a dense layer whose integers fit [-128, 127], else
``2/64``; conv layers always ``2/64``), the input is an integer ``x·64·s₀`` and every message
must fit 16 bits (an activation below 8).  A ReLU network is positively homogeneous, so the
importer picks each layer's activation scale ``s_l`` freely and the next layer undoes it.  The
resolution of layer ``l`` (its largest weight in grid steps) is ``s_l/s_{l-1}·max|W_l|/step``
and the input's is ``64·s₀·max x``, so the product of all of them is fixed by the last hidden
layer's scale (at most ``activation_max`` over its largest activation): scaling only moves the
error between the input and the layers.  Two ways to spread it:

* ``ramp`` r: the scales grow by ``r`` per hidden weighted layer (``activation_max / r^k`` for a
  tensor ``k`` hidden layers before the output);
* ``"balanced"`` (chains without Add/Concat): :meth:`ScalePlan.balanced_plan` gives the input
  and every hidden weighted layer the same resolution, as far as each layer's activation limit
  and the 127-step mantissa allow (water filling under prefix bounds).

The output layer is free (its decoder undoes a power of two) and sits at the top of the
mantissa.  Which choice is best depends on the model (how much its output cancels), so
:func:`best_ramp` converts with each of :data:`RAMPS` and keeps the one whose grid-rounded float
model (weights and biases on the netlist grids, input on ``1/(64·s₀)``) is closest to the exact
one on the calibration batch.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from slayerc.ir.core import Graph, GraphBuilder, ParamRef
from slayerc.runtime.interpreter import interpret

#: Largest weight of the netlist's 8-bit mantissa on the 2/64 grid (127·2/64).
WEIGHT_TOP = 254 / 64
#: Pool weights sit exactly on this grid (legalize-quant's 2/64 weight step).
WEIGHT_STEP = 2 / 64
#: The ramps tried by :func:`best_ramp` ("balanced": :meth:`ScalePlan.balanced_plan`).
RAMPS: tuple[float | str, ...] = ("balanced", 1.0, 1.25, 1.5, 2.0, 2.5, 3.0)
#: Most steps of a weight mantissa (127 on the 1/64 grid of a dense layer or the 2/64 of a conv).
MANT_TOP = 127
WEIGHTED = ("synapse.dense", "synapse.conv", "synapse.pool")


def weight_step(op: str, w: np.ndarray) -> float:
    """The netlist grid of a converted synapse's weights (as ``legalize-quant`` chooses it):
    ``1/64`` for a dense layer whose integers fit [-128, 127], else ``2/64``."""
    if op == "synapse.dense" and w.size and np.rint(w * 64).max() <= 127 and \
            np.rint(w * 64).min() >= -128:
        return 1 / 64
    return WEIGHT_STEP


def _rounded(g: Graph) -> Graph:
    """``g`` with synapse weights on their netlist grid and neuron biases on ``1/64``."""
    params = dict(g.params)
    for n in g:
        for attr in ("weight", "bias"):
            ref = getattr(n, attr, None)
            if isinstance(ref, ParamRef) and (attr == "bias" or n.OP in WEIGHTED):
                arr = np.asarray(params[ref.name], np.float64)
                step = 1 / 64 if attr == "bias" else weight_step(n.OP, arr)
                params[ref.name] = (np.rint(arr / step) * step).astype(np.float32)
    return g.replace(params=params)


def _input_scale(g: Graph) -> float:
    """``s₀``: the scale of the (first) input's ``tensor.affine``, else 1."""
    inp = g.inputs[0]
    return next((float(u.scale) for u in g.users(inp.name)  # type: ignore[attr-defined]
                 if u.OP == "tensor.affine"), 1.0)


def _input_rounded(g: Graph, x: torch.Tensor) -> torch.Tensor:
    """``x`` on the netlist's input grid ``1/(64·s₀)``."""
    scale = _input_scale(g)
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


def sensitivities(g: Graph, calib: torch.Tensor, steps: int) -> list[float]:
    """Per quantizer of a converted chain (the input, then each hidden weighted synapse, in
    order; pools, whose constant weights are exact, and the output synapse left out): the RMS
    output error with only it on its grid, times its resolution (steps of its largest value),
    i.e. about the error it makes per unit of ``1/R``."""
    x = calib[..., None].repeat(*([1] * calib.dim()), steps)
    with torch.no_grad():
        exact = _last(interpret(g, x))
    top = max(float(a.abs().max()) for a in exact) or 1.0

    def rms(h: Graph, xx: torch.Tensor) -> float:
        with torch.no_grad():
            got = _last(interpret(h, xx))
        return math.sqrt(sum(float(((a - b) ** 2).mean()) for a, b in zip(exact, got))) / top

    out = [rms(g, _input_rounded(g, x)) * float(x.abs().max()) * 64 * _input_scale(g)]
    syns = [n for n in g if n.OP in ("synapse.dense", "synapse.conv")
            and np.ptp(np.asarray(g.param(n.weight))) > 0]  # type: ignore[attr-defined]
    for n in syns[:-1]:
        w = np.asarray(g.param(n.weight), np.float64)  # type: ignore[attr-defined]
        step = weight_step(n.OP, w)
        params = {**g.params, n.weight.name: (np.rint(w / step) * step).astype(np.float32)}
        out.append(rms(g.replace(params=params), x) * float(np.abs(w).max()) / step)
    return out


def best_ramp(convert: Callable[..., Graph], calib: torch.Tensor,
              steps: int) -> tuple[Graph, float | str, float]:
    """Convert with every ramp of :data:`RAMPS` (and "balanced" once more, weighted by the
    :func:`sensitivities` of its first try); the graph, ramp and grid error of the best (on
    at most 16 calibration samples; the exact outputs are the same for every ramp)."""
    calib = calib[:16]
    best: tuple[Graph, float | str, float] | None = None
    exact: list[torch.Tensor] | None = None
    for ramp in RAMPS:
        graphs = [convert(ramp)]
        if ramp == "balanced":
            graphs.append(convert(ramp, tuple(sensitivities(graphs[0], calib, steps))))
        for g in graphs:
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
    vals: dict[str, Any]
    b: GraphBuilder
    layers: list[Any]
    node: Any
    input: Callable[..., None]
    _after: dict[str, int]

    plan: dict[str, float] | None = None
    #: what the calibration dry run saw of each weighted op: (output tensor, op_type, largest
    #: weight at unit scales), in order
    seen: list[tuple[str, str, float]]

    def replan(self, dims: dict[str, tuple[int, ...]], calib: dict[str, torch.Tensor]) -> None:
        """With ``ramp="balanced"`` (one input): compute :meth:`balanced_plan` from the dry
        run and add the input again at its planned scale (nothing else is built yet)."""
        if not (self.opts.normalize and self.opts.ramp == "balanced" and len(dims) == 1):
            return
        name = next(iter(dims))
        self.plan = self.balanced_plan(name, float(calib[name].abs().max()) or 1.0,
                                       self.vals[name].kappa)
        if self.plan is not None:
            self.b, self.layers = GraphBuilder(name=self.b.name), []
            self.input(name, dims[name], calib[name])

    def balanced_plan(self, x_name: str, x_max: float,
                      x_kappa: float) -> dict[str, float] | None:
        """Activation targets that give the input and every hidden weighted layer the same
        resolution (mantissa steps of its largest value), for a chain (:meth:`_chain`).

        With ``R_0`` the input's integer maximum and ``R_l`` layer ``l``'s largest weight in
        steps, ``Σ_{j≤l} log R_j`` is at most ``B_l`` (layer ``l``'s activation at most
        ``activation_max``); the least sum of ``R^-2`` under these prefix bounds and the caps
        (127 steps; the input ``64·activation_max``) is found by water filling.  The last
        hidden layer's limit is lowered (by less than 2) so that the output synapse's largest
        weight lands on the mantissa's top step: its scale ``2^k`` moves by octaves only."""
        if not self._chain():
            return None
        top, stages, bound = self.opts.activation_max, [], math.log2(64 * x_max)
        ratio = 1 / x_kappa  # the dry run's weights are per unit of the input stream's scale
        out_w = 0.0
        for tensor, op, w in self.seen:
            if tensor in self.final or w <= 0:
                out_w = w if tensor in self.final and op in ("Conv", "Gemm", "MatMul") else 0.0
                break
            if op in ("AveragePool", "GlobalAveragePool"):
                taps = 1.0 / w
                steps = min(max(round(1.0 / (taps * WEIGHT_STEP)), 1), MANT_TOP)
                ratio *= steps * WEIGHT_STEP * taps
                continue
            step = 1 / 64 if op in ("Gemm", "MatMul") else WEIGHT_STEP
            bound += math.log2(w / (step * ratio))
            act = self.relu_max.get(self._relu_of(tensor), 0.0)
            if act <= 0:
                return None
            stages.append((tensor, math.log2(top / act) + bound, w / (step * ratio), act))
            ratio = 1.0
        if not stages:
            return None
        if out_w > 0:  # s_L = 2^k·out_w / (ratio·WEIGHT_TOP): the largest such under the limit
            tensor, b, gain, act = stages[-1]
            k = math.floor(math.log2(top / act * ratio * WEIGHT_TOP / out_w))
            s_l = 2.0 ** k * out_w / (ratio * WEIGHT_TOP * (1 + 1e-6))
            stages[-1] = (tensor, b + math.log2(s_l * act / top), gain, act)
        caps = [math.log2(64 * top)] + [math.log2(MANT_TOP)] * len(stages)
        bounds = [math.log2(64 * top)] + [b for _, b, _, _ in stages]
        # sensitivities c_l: the least Σ (c_l/R_l)^2 has equal c_l/R_l (log R - log c even)
        logc = [0.0] * len(bounds)
        if self.opts.weights is not None and len(self.opts.weights) == len(bounds) and \
                all(c > 0 for c in self.opts.weights):
            logc = [math.log2(c) for c in self.opts.weights]
        acc = np.cumsum(logc)
        v = _water_fill([b - a for b, a in zip(bounds, acc)],
                        [c - lc for c, lc in zip(caps, logc)])
        u = [vl + lc for vl, lc in zip(v, logc)]
        s = 2.0 ** u[0] / (64 * x_max)
        plan = {x_name: s * x_max}
        for (tensor, _, gain, act), ul in zip(stages, u[1:]):
            s *= 2.0 ** ul / gain
            plan[tensor] = s * act
        return plan

    def _chain(self) -> bool:
        """Whether no node joins two data paths (Concat, or an Add/Sum of two non-constants;
        an Add of a constant is a bias)."""
        consts = {i.name for i in self.model.graph.initializer} | {
            o for n in self.model.graph.node if n.op_type == "Constant" for o in n.output}
        return not any(n.op_type == "Concat" or (n.op_type in ("Add", "Sum") and sum(
            i not in consts for i in n.input) > 1) for n in self.model.graph.node)

    def _relu_of(self, tensor: str) -> str:
        """The ReLU output reached from ``tensor`` through linear ops (BatchNorm, ...)."""
        todo = [tensor]
        while todo:
            for n in self.consumers.get(todo.pop(), []):
                if n.op_type in ("Relu", "Clip"):
                    return n.output[0]
                if n.op_type in ("BatchNormalization", "Identity", "Dropout", "Add", "Sum"):
                    todo.extend(n.output)
        return ""

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
        if self.plan is not None:
            return self.plan.get(tensor, self.opts.activation_max)
        hidden = max(self.stages_after(tensor) - 1, 0)
        ramp = 1.0 if self.opts.ramp == "balanced" else float(self.opts.ramp)
        return self.opts.activation_max / ramp ** hidden

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
            self.seen.append((tensor, self.node.op_type, w_unit))
            return 1.0
        top = WEIGHT_TOP / w_unit if w_unit > 0 else math.inf
        if tensor in self.final:
            if self.opts.output_exp is not None:
                return 2.0 ** self.opts.output_exp
            return 2.0 ** math.floor(math.log2(top)) if math.isfinite(top) else 1.0
        return min(self.target_max(tensor) / self.segment_max(tensor, calib), top)


def _water_fill(bounds: list[float], caps: list[float]) -> list[float]:
    """``u`` maximizing the smallest values first under ``Σ_{j≤l} u_j ≤ bounds[l]`` and
    ``u_l ≤ caps[l]``: each block up to the tightest prefix bound shares it evenly."""
    n, fixed = len(bounds), [None] * len(bounds)
    while True:
        u, start, used = [0.0] * n, 0, 0.0
        while start < n:
            best, end = math.inf, start
            for l in range(start, n):
                free = sum(fixed[j] is None for j in range(start, l + 1))
                spare = bounds[l] - used - sum(f for f in fixed[start:l + 1] if f is not None)
                if free and spare / free < best:
                    best, end = spare / free, l
            if not math.isfinite(best):
                best, end = 0.0, n - 1
            for j in range(start, end + 1):
                u[j] = fixed[j] if fixed[j] is not None else best
            used += sum(u[start:end + 1])
            start = end + 1
        over = [j for j in range(n) if fixed[j] is None and u[j] > caps[j] + 1e-12]
        if not over:
            return u
        for j in over:
            fixed[j] = caps[j]
