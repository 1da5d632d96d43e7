"""ONNX ANN → sigma-delta IR, operator by operator (see :mod:`slayerc.frontend.onnx`).

Every ONNX tensor becomes a :class:`Val`: the IR node whose *decoded* stream (the sigma of its
messages) carries it, the ANN value on the calibration batch (computed with torch as the
conversion goes, so shapes and activation ranges are known), the scale ``kappa`` (the stream
carries ``kappa ·`` the ANN value) and the pending ``offset``: constant terms (biases, batch
norm shifts) cannot travel as messages, since a sigma decoder would add them every step, so
they are carried along the linear ops (``offset' = W·offset + kappa·b``) to the next
``neuron.sigma_delta``, whose ``bias`` they become (``a = relu(σ + bias)``), or to the output.
So the ANN value is ``(decoded stream + offset) / kappa``.
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from slayerc.frontend.onnx.batchnorm import (
    _batchnorm,
    _bn_after,
    _fold_scale,
    pending_bn,
    pooled_scale,
)
from slayerc.frontend.onnx.model import attributes, fail, unsupported
from slayerc.frontend.onnx.outbias import CONST_MAX
from slayerc.frontend.onnx.scales import WEIGHT_STEP, WEIGHT_TOP, ScalePlan
from slayerc.ir import ops
from slayerc.ir.core import GraphBuilder, Loc, ParamRef, sanitize

#: Store conv-layer biases per channel (see :func:`_compact`).
COMPACT_CONV = True
#: Threshold and bias grid of the netlist (``vThMant`` and ``bias`` count 1/64).
GRID = 64.0


@dataclass
class Val:
    """One ONNX tensor during conversion (see the module docstring)."""

    node: str | None
    calib: torch.Tensor
    kappa: float = 1.0
    offset: np.ndarray | None = None
    const: np.ndarray | None = None
    nonneg: bool = False
    #: a pending batch-norm factor (:mod:`.batchnorm`): the ANN value is then
    #: ``(stream·scale + offset) / kappa``; ``scale_from`` names that BatchNormalization
    scale: np.ndarray | None = None
    scale_from: str = ""

    @property
    def shape(self) -> tuple[int, ...]:
        """Per-sample shape (no batch axis)."""
        return tuple(self.calib.shape[1:])


@dataclass
class Options:
    """Importer options (see :func:`slayerc.frontend.onnx.load_onnx`)."""

    threshold: float | dict[str, float] = 1.0 / 256
    normalize: bool = True
    activation_max: float = 4.0
    output_exp: int | None = None
    ramp: float | str = 1.0
    #: per quantizer of a "balanced" plan (input, hidden layers): its sensitivity
    weights: tuple[float, ...] | None = None


@dataclass
class Layer:
    """What the report says about one converted neuron layer."""

    node: str
    onnx: str
    threshold: float
    scale: float
    max_activation: float


def grid(v: float) -> float:
    """``v`` rounded to the 1/64 netlist grid (at least one step unless ``v`` is 0)."""
    if v <= 0:
        return 0.0
    return max(round(v * GRID), 1) / GRID


class Converter(ScalePlan):
    """Walks the ONNX graph in order, building the IR (one handler per ``op_type``)."""

    def __init__(self, path: str | os.PathLike, model: Any, inits: dict[str, np.ndarray],
                 opts: Options):
        self.path = os.fspath(path)
        self.model = model
        self.opts = opts
        self.b = GraphBuilder(name=sanitize(model.graph.name or "onnx"))
        self.vals: dict[str, Val] = {n: Val(None, torch.as_tensor(np.array(a)), const=a)
                                     for n, a in inits.items()}
        self.layers: list[Layer] = []
        self.outputs = [o.name for o in model.graph.output]
        self.consumers: dict[str, list[Any]] = {}
        for node in model.graph.node:
            for i in node.input:
                self.consumers.setdefault(i, []).append(node)
        self.final = self._final_segment()
        self._after: dict[str, int] = {}
        self.node: Any = None

    # -- helpers ---------------------------------------------------------------------------
    def err(self, msg: str) -> Exception:
        """A one-line error naming the ONNX node being converted."""
        return fail(self.path, self.node, msg)

    def loc(self) -> Loc:
        n = self.node
        return Loc(module=(n.name or n.output[0]) if n is not None else None, file=self.path)

    def add(self, cls: type, base: str, inputs: list[str], **attrs: Any) -> str:
        return self.b.add(cls, base, inputs, loc=self.loc(), **attrs)

    def hold(self, src: str) -> str:
        """A one-step ``axon.shift`` before a synapse: Lava's synapses hold their input one
        step, so with it the graph has the netlist's timing (and the bias head-start)."""
        return self.add(ops.Shift, f"{self.base()}_hold", [src], steps=1)

    def param(self, name: str, arr: np.ndarray) -> ParamRef:
        return self.b.param(name, np.ascontiguousarray(arr, dtype=np.float32))

    def base(self) -> str:
        n = self.node
        return sanitize((n.name or n.output[0]).strip("/").replace("/", "_"))

    def get(self, name: str) -> Val:
        if name not in self.vals:
            raise self.err(f"input '{name}' is neither a graph input, an initializer nor the "
                           "output of an earlier node; the model is malformed, re-export it")
        return self.vals[name]

    def const(self, name: str, what: str) -> np.ndarray:
        v = self.get(name)
        if v.const is None:
            raise self.err(f"its {what} ('{name}') must be a constant (an initializer or "
                           "Constant); slayerc maps only fixed weights onto synapses")
        return v.const

    def stream(self, name: str, scaled: bool = False) -> Val:
        """The data-path value ``name`` (``scaled``: the handler folds a pending ``scale``)."""
        v = self.get(name)
        if v.node is None:
            raise self.err(f"input '{name}' is a constant where slayerc needs the data path")
        if v.scale is not None and not scaled:
            raise self.err(pending_bn(v))
        return v

    def aligned(self, vals: list[Val]) -> tuple[list[str], float]:
        """Stream nodes of ``vals`` brought to one scale (``tensor.affine`` where needed)."""
        kappa = max(v.kappa for v in vals)
        names = []
        for v in vals:
            name = v.node
            if not math.isclose(v.kappa, kappa, rel_tol=1e-12):
                name = self.add(ops.Affine, f"{self.base()}_rescale", [name],
                                scale=float(kappa / v.kappa))
            names.append(name)  # type: ignore[arg-type]
        return names, kappa

    def offset_of(self, v: Val, kappa: float) -> np.ndarray:
        """``v``'s offset at scale ``kappa`` (zeros when it has none)."""
        if v.offset is None:
            return np.zeros(v.shape, np.float64)
        return v.offset * (kappa / v.kappa)

    # -- driver ----------------------------------------------------------------------------
    def run(self, dims: dict[str, tuple[int, ...]], calib: dict[str, torch.Tensor]) -> None:
        for name, shape in dims.items():
            self.input(name, shape, calib[name])
        self.relu_max = self._relu_maxima()
        self.replan(dims, calib)
        self.node = None
        for node in self.model.graph.node:
            self._handle(node)
        self.node = None
        for out in self.outputs:
            self.output(out)

    def _handle(self, node) -> None:
        """Convert one ONNX node with its operator's handler (a clear error if there is none)."""
        self.node = node
        handler = HANDLERS.get(node.op_type)
        if handler is None:
            raise self.err(unsupported(node.op_type, HANDLERS))
        handler(self, node, attributes(node))

    def _relu_maxima(self) -> dict[str, float]:
        """Dry run on the calibration batch: the largest activation of every ReLU output."""
        saved, self.b_saved = self.vals, self.b
        self.vals = dict(self.vals)
        self.b = GraphBuilder()
        self.relu_max: dict[str, float] = {}
        self.seen = []
        opts, self.opts = self.opts, Options(self.opts.threshold, False, 1.0, None, 1.0)
        try:
            for node in self.model.graph.node:
                self._handle(node)
                if node.op_type in ("Relu", "Clip"):
                    self.relu_max[node.output[0]] = float(self.vals[node.output[0]].calib.max())
        finally:
            maxima = self.relu_max
            self.vals, self.b, self.opts = saved, self.b_saved, opts
            self.layers = []
        return maxima

    def input(self, name: str, shape: tuple[int, ...], calib: torch.Tensor) -> None:
        x = self.b.add(ops.Input, name, [], shape=shape, dtype="f32",
                       loc=Loc(module=name, file=self.path))
        top = float(calib.abs().max()) or 1.0
        kappa = 1.0
        if self.opts.normalize:
            kappa = max(round(self.target_max(name) / top * GRID), 1) / GRID
        if kappa != 1.0:
            x = self.b.add(ops.Affine, f"{name}_scale", [x], scale=kappa,
                           loc=Loc(module=name, file=self.path))
        th = self.threshold_for(name, kappa * top)
        d = self.b.add(ops.Delta, f"{name}_delta", [x], threshold=th,
                       loc=Loc(module=name, file=self.path))
        self.layers.append(Layer(d, name, th, kappa, kappa * top))
        self.vals[name] = Val(d, calib, kappa, None)

    def threshold_for(self, onnx_name: str, top: float) -> float:
        th = self.opts.threshold
        if isinstance(th, dict):
            if onnx_name in th:
                return float(th[onnx_name])
            th = th.get("*", Options.threshold)
        return grid(float(th) * top)

    def output(self, name: str) -> None:
        if name not in self.vals:
            raise fail(self.path, None, f"output '{name}' is produced by no node")
        v = self.vals[name]
        if v.node is None:
            raise fail(self.path, None, f"output '{name}' is a constant; nothing to compute")
        if v.scale is not None:
            raise fail(self.path, None, f"output '{name}': {pending_bn(v)}")
        sig = self.b.add(ops.Sigma, f"{sanitize(name)}_sigma", [v.node],
                         loc=Loc(module=name, file=self.path))
        self.pending_out = getattr(self, "pending_out", {})
        if v.offset is not None and np.any(v.offset != 0):
            self.pending_out[sig] = v.offset
        src = sig
        if not math.isclose(v.kappa, 1.0, rel_tol=1e-12):
            src = self.b.add(ops.Affine, f"{sanitize(name)}_decode", [src], scale=1.0 / v.kappa,
                             loc=Loc(module=name, file=self.path))
        self.b.add(ops.Output, name, [src], loc=Loc(module=name, file=self.path))


# ------------------------------------------------------------------------------ handlers


def _same_val(c: Converter, node: Any, attrs: dict) -> None:
    """Identity, Dropout (inference): the value itself."""
    c.vals[node.output[0]] = c.get(node.input[0])
    for extra in node.output[1:]:  # Dropout's mask output
        if extra:
            c.vals[extra] = Val(None, torch.ones(()), const=np.ones(()))


def _constant(c: Converter, node: Any, attrs: dict) -> None:
    from onnx import numpy_helper

    if "value" in attrs:
        arr = numpy_helper.to_array(attrs["value"])
    else:
        key = next((k for k in ("value_float", "value_floats", "value_int", "value_ints")
                    if k in attrs), None)
        if key is None:
            raise c.err("only tensor, float and int Constants are supported")
        arr = np.asarray(attrs[key])
    c.vals[node.output[0]] = Val(None, torch.as_tensor(np.array(arr)), const=np.array(arr))


def _pads(c: Converter, attrs: dict, nd: int = 2) -> tuple[int, ...]:
    pads = list(attrs.get("pads", [0] * 2 * nd))
    if attrs.get("auto_pad", "NOTSET") not in ("NOTSET", "VALID"):
        raise c.err(f"auto_pad={attrs['auto_pad']} is not supported; export with explicit pads")
    if pads[:nd] != pads[nd:]:
        raise c.err(f"asymmetric pads {pads} have no synapse equivalent (the IR pads both "
                    "sides alike); pad symmetrically")
    return tuple(int(p) for p in pads[:nd])


def _conv(c: Converter, node: Any, attrs: dict) -> None:
    x = c.stream(node.input[0], scaled=True)
    w = c.const(node.input[1], "weight").astype(np.float64)
    b = c.const(node.input[2], "bias") if len(node.input) > 2 and node.input[2] else None
    if w.ndim != 4 or len(x.shape) != 3:
        raise c.err(f"only 2-D convolutions are supported (weight {list(w.shape)}, input "
                    f"{list(x.shape)})")
    pads = _pads(c, attrs)
    stride = tuple(int(s) for s in attrs.get("strides", (1, 1)))
    dil = tuple(int(d) for d in attrs.get("dilations", (1, 1)))
    groups = int(attrs.get("group", 1))
    kw = dict(stride=stride, padding=pads, dilation=dil, groups=groups)
    wt = torch.as_tensor(w, dtype=torch.float32)
    bt = None if b is None else torch.tensor(np.asarray(b), dtype=torch.float32)
    try:
        y = F.conv2d(x.calib.float(), wt, bt, **kw)
    except RuntimeError as e:
        raise c.err(f"the weight {list(w.shape)} does not fit the input {list(x.shape)}: "
                    f"{str(e).splitlines()[0]}") from e
    off = None  # the constant part of the output at scale 1
    if x.offset is not None:
        o = torch.as_tensor(x.offset[None] / x.kappa, dtype=torch.float64)
        off = F.conv2d(o, torch.as_tensor(w), None, **kw)[0].numpy()
    if b is not None:
        off = b.astype(np.float64)[:, None, None] + (0 if off is None else off)
        off = np.broadcast_to(off, y.shape[1:]).copy()
    w = _fold_scale(c, x, w, groups)
    ko = c.kappa_for(node.output[0], y, _w_unit(c, node, w * _bn_after(c, node, w) / x.kappa, off))
    ref = c.param(f"{c.base()}.weight", w * (ko / x.kappa))
    syn = c.add(ops.Conv, c.base(), [c.hold(x.node)], weight=ref, stride=stride, padding=pads,
                dilation=dil, groups=groups)
    c.vals[node.output[0]] = Val(syn, y, ko, None if off is None else ko * off)


def _dense(c: Converter, node: Any, x: Val, w: np.ndarray, b: np.ndarray | None) -> None:
    """A dense synapse ``y = x·Wᵀ + b`` (``w`` is ``[out, in]``)."""
    if len(x.shape) != 1 or x.shape[0] != w.shape[1]:
        raise c.err(f"weight [out={w.shape[0]}, in={w.shape[1]}] does not fit the input "
                    f"{list(x.shape)}; flatten the input to [N, {w.shape[1]}] first")
    y = x.calib.double() @ torch.as_tensor(w).T
    if b is not None:
        y = y + torch.as_tensor(np.broadcast_to(b, (w.shape[0],)).astype(np.float64))
    off = None if x.offset is None else w @ (x.offset / x.kappa)  # constant part, scale 1
    if b is not None:
        off = np.broadcast_to(b, (w.shape[0],)).astype(np.float64) + (0 if off is None else off)
    w = w if x.scale is None else w * x.scale.reshape(1, -1)  # a BN after a ReLU
    ko = c.kappa_for(node.output[0], y, _w_unit(c, node, w * _bn_after(c, node, w) / x.kappa, off))
    ref = c.param(f"{c.base()}.weight", w * (ko / x.kappa))
    syn = c.add(ops.Dense, c.base(), [c.hold(x.node)], weight=ref)
    c.vals[node.output[0]] = Val(syn, y.float(), ko, None if off is None else ko * off)


def _w_unit(c: Converter, node: Any, w: np.ndarray, off: np.ndarray | None) -> float:
    """The largest weight of a synapse at output scale 1; in the final segment also its
    output bias over the largest constant neuron (:mod:`~slayerc.frontend.onnx.outbias`),
    since that bias becomes a weight too."""
    top = float(np.abs(w).max()) if w.size else 0.0
    if off is not None and node.output[0] in c.final:
        top = max(top, float(np.abs(off).max()) / CONST_MAX)
    return top


def _gemm(c: Converter, node: Any, attrs: dict) -> None:
    if int(attrs.get("transA", 0)):
        raise c.err("transA=1 is not supported (the data must be the [N, K] left operand)")
    x = c.stream(node.input[0], scaled=True)
    bmat = c.const(node.input[1], "weight").astype(np.float64)
    if bmat.ndim != 2:
        raise c.err(f"the weight must be 2-d, got {list(bmat.shape)}")
    w = bmat if int(attrs.get("transB", 0)) else bmat.T
    w = float(attrs.get("alpha", 1.0)) * w
    b = None
    if len(node.input) > 2 and node.input[2]:
        b = float(attrs.get("beta", 1.0)) * c.const(node.input[2], "bias").astype(np.float64)
        b = b.reshape(-1) if b.size > 1 else b.reshape(())
    _dense(c, node, x, w, b)


def _matmul(c: Converter, node: Any, attrs: dict) -> None:
    x = c.stream(node.input[0], scaled=True)
    bmat = c.const(node.input[1], "right operand").astype(np.float64)
    if bmat.ndim != 2:
        raise c.err(f"the right operand must be a 2-d constant, got {list(bmat.shape)}")
    _dense(c, node, x, bmat.T, None)


def _relu(c: Converter, node: Any, attrs: dict) -> None:
    if node.op_type == "Clip":
        _check_clip(c, node, attrs)
    x = c.stream(node.input[0])
    out = node.output[0]
    top = float(torch.relu(x.calib).max()) * x.kappa
    th = c.threshold_for(node.name or out, top)
    bias = None
    if x.offset is not None and np.any(x.offset != 0):
        bias = c.param(f"{c.base()}.bias", _compact(x.offset))
    n = c.add(ops.SigmaDelta, c.base(), [x.node], threshold=th, bias=bias)
    c.layers.append(Layer(n, node.name or out, th, x.kappa, top))
    c.vals[out] = Val(n, torch.relu(x.calib), x.kappa, None, nonneg=True)


def _compact(off: np.ndarray) -> np.ndarray:
    """A per-neuron offset as one value per channel when it is constant over (H, W) (netx's
    conv layers take either; per channel is what lava-dl writes)."""
    if off.ndim == 3 and COMPACT_CONV:
        flat = off.reshape(off.shape[0], -1)
        if np.all(flat == flat[:, :1]):
            return flat[:, 0]
    return off


def _check_clip(c: Converter, node: Any, attrs: dict) -> None:
    lo = attrs.get("min")
    hi = attrs.get("max")
    if len(node.input) > 1 and node.input[1]:
        lo = float(c.const(node.input[1], "min"))
    if len(node.input) > 2 and node.input[2]:
        hi = float(c.const(node.input[2], "max"))
    if lo is None or float(lo) != 0.0 or (hi is not None and math.isfinite(float(hi))):
        raise c.err(f"Clip({lo}, {hi}) is a saturating ReLU, which Loihi 2's sigma-delta "
                    "neuron cannot compute (Lava's SigmaDelta has only the relu and identity "
                    "activations and netx always loads relu); only Clip(0, inf) converts: "
                    "use Relu (retrain without the upper bound)")


def _add(c: Converter, node: Any, attrs: dict) -> None:
    a, b = c.get(node.input[0]), c.get(node.input[1])
    if (a.node is None) == (b.node is None) and (a.scale is not None or b.scale is not None):
        raise c.err(pending_bn(a if a.scale is not None else b))
    if a.node is None and b.node is None:
        raise c.err("adds two constants; fold them in the exporter")
    if a.node is None or b.node is None:
        x, k = (b, a) if a.node is None else (a, b)
        const = np.asarray(k.const, np.float64)
        y = x.calib.double() + torch.as_tensor(const)
        if tuple(y.shape) != tuple(x.calib.shape):
            raise c.err(f"the constant {list(const.shape)} would broadcast the data "
                        f"{list(x.shape)} to {list(y.shape[1:])}")
        cs = np.broadcast_to(const, y.shape)[0]
        off = c.offset_of(x, x.kappa) + x.kappa * cs
        c.vals[node.output[0]] = Val(x.node, y.float(), x.kappa, off, scale=x.scale,
                                     scale_from=x.scale_from)
        return
    if a.shape != b.shape:
        raise c.err(f"adds shapes {list(a.shape)} and {list(b.shape)}; only equal shapes "
                    "(a residual connection) are supported")
    names, kappa = c.aligned([a, b])
    n = c.add(ops.Add, c.base(), names)
    off = None
    if a.offset is not None or b.offset is not None:
        off = c.offset_of(a, kappa) + c.offset_of(b, kappa)
    c.vals[node.output[0]] = Val(n, a.calib + b.calib, kappa, off)


def _concat(c: Converter, node: Any, attrs: dict) -> None:
    vals = [c.stream(i) for i in node.input]
    axis = int(attrs.get("axis", 1))
    rank = len(vals[0].calib.shape)
    axis = axis + rank if axis < 0 else axis
    if axis == 0:
        raise c.err("concatenates along the batch axis; only feature axes are supported")
    names, kappa = c.aligned(vals)
    n = c.add(ops.Concat, c.base(), names, axis=axis - 1)
    off = None
    if any(v.offset is not None for v in vals):
        off = np.concatenate([c.offset_of(v, kappa) for v in vals], axis=axis - 1)
    calib = torch.cat([v.calib for v in vals], dim=axis)
    c.vals[node.output[0]] = Val(n, calib, kappa, off, nonneg=all(v.nonneg for v in vals))


def _reshaped(c: Converter, node: Any, x: Val, shape: tuple[int, ...]) -> None:
    y = x.calib.reshape(x.calib.shape[0], *shape)
    if len(shape) == 1:
        n = c.add(ops.Flatten, c.base(), [x.node])
    else:
        n = c.add(ops.Reshape, c.base(), [x.node], to=tuple(int(s) for s in shape))
    off = None if x.offset is None else x.offset.reshape(shape)
    sc = None if x.scale is None else x.scale.reshape(shape)
    c.vals[node.output[0]] = Val(n, y, x.kappa, off, nonneg=x.nonneg, scale=sc,
                                 scale_from=x.scale_from)


def _flatten(c: Converter, node: Any, attrs: dict) -> None:
    x = c.stream(node.input[0], scaled=True)
    if int(attrs.get("axis", 1)) != 1:
        raise c.err(f"Flatten axis={attrs.get('axis')} mixes the batch axis; only axis=1")
    _reshaped(c, node, x, (int(np.prod(x.shape)),))


def _reshape(c: Converter, node: Any, attrs: dict) -> None:
    x = c.stream(node.input[0], scaled=True)
    target = [int(d) for d in c.const(node.input[1], "shape")]
    full = [x.calib.shape[0], *x.shape]
    target = [full[i] if d == 0 and not attrs.get("allowzero", 0) else d
              for i, d in enumerate(target)]
    try:
        y = x.calib.reshape(target)
    except RuntimeError as e:
        raise c.err(f"cannot reshape {list(x.shape)} to {target}: "
                    f"{str(e).splitlines()[0]}") from e
    if y.shape[0] != x.calib.shape[0]:
        raise c.err(f"reshape to {target} mixes the batch axis; keep the batch first "
                    "(e.g. [-1, features] or [0, -1])")
    _reshaped(c, node, x, tuple(y.shape[1:]))


def _pool(c: Converter, node: Any, attrs: dict) -> None:
    x = c.stream(node.input[0], scaled=True)
    if len(x.shape) != 3:
        raise c.err(f"only 2-D pools are supported (input {list(x.shape)})")
    if node.op_type == "GlobalAveragePool":
        kernel, stride, pads = x.shape[1:], x.shape[1:], (0, 0)
    else:
        kernel = tuple(int(k) for k in attrs["kernel_shape"])
        stride = tuple(int(s) for s in attrs.get("strides", (1, 1)))
        pads = _pads(c, attrs)
        if any(pads) and not int(attrs.get("count_include_pad", 0)):
            raise c.err("a padded AveragePool with count_include_pad=0 divides border windows "
                        "by fewer taps (no fixed weight); use count_include_pad=1 or no pads")
        if int(attrs.get("ceil_mode", 0)):
            raise c.err("ceil_mode=1 is not supported; use ceil_mode=0")
    y = F.avg_pool2d(x.calib.float(), kernel, stride, pads, count_include_pad=True)
    ch = x.shape[0]
    taps = float(np.prod(kernel))
    ko = c.kappa_for(node.output[0], y, 1.0 / (taps * x.kappa))
    if node.output[0] not in c.final and c.opts.normalize:
        # A pool of ReLU outputs is at most their maximum: keep the scale (ratio ~1) with
        # the weight 1/taps exactly on the netlist grid, so the pool adds no error.
        steps = min(max(round(1.0 / (taps * WEIGHT_STEP)), 1), round(WEIGHT_TOP / WEIGHT_STEP))
        ko = x.kappa * steps * WEIGHT_STEP * taps
    scale = ko / x.kappa / taps
    exact_pool = stride == kernel and not any(pads) and \
        all(x.shape[i + 1] % kernel[i] == 0 for i in range(2))
    if exact_pool:  # slayer's sum pool (lower-pool makes it a depthwise conv for loihi2)
        ref = c.param(f"{c.base()}.weight", np.full((1, 1, *kernel), scale))
        syn = c.add(ops.Pool, c.base(), [c.hold(x.node)], weight=ref, kernel=tuple(kernel),
                    stride=tuple(stride))
    else:
        ref = c.param(f"{c.base()}.weight", np.full((ch, 1, *kernel), scale))
        syn = c.add(ops.Conv, c.base(), [c.hold(x.node)], weight=ref, stride=tuple(stride),
                    padding=tuple(pads), groups=ch)
    off = None
    if x.offset is not None:
        o = torch.as_tensor(x.offset[None], dtype=torch.float64)
        off = F.avg_pool2d(o, kernel, stride, pads, count_include_pad=True)[0].numpy() \
            * (ko / x.kappa)
    val = Val(syn, y, ko, off)
    if x.scale is not None:
        val = pooled_scale(x, val)
    elif x.nonneg and off is None:
        # A pool of ReLU outputs is >= 0: a ReLU neuron after it is exact and gives the pool
        # the neuron a netlist layer needs (as lava-dl's SDNN pool blocks).
        top = float(y.max()) * ko
        th = c.threshold_for(f"{node.name or node.output[0]}", top)
        n = c.add(ops.SigmaDelta, f"{c.base()}_neuron", [syn], threshold=th)
        c.layers.append(Layer(n, node.name or node.output[0], th, ko, top))
        val = Val(n, y, ko, None, nonneg=True)
    c.vals[node.output[0]] = val


def _softmax(c: Converter, node: Any, attrs: dict) -> None:
    if node.output[0] in c.outputs and not c.consumers.get(node.output[0]):
        warnings.warn(f"{c.path}: {node.op_type} node '{node.name or node.output[0]}' at the "
                      "output dropped: the network outputs its input (the logits; the argmax "
                      "is the same)", stacklevel=2)
        c.vals[node.output[0]] = c.get(node.input[0])
        return
    raise c.err(f"{node.op_type} in the middle of the network has no sigma-delta equivalent; "
                "only a final Softmax can be dropped (move it out of the model)")


HANDLERS: dict[str, Callable[[Converter, Any, dict], None]] = {
    "Conv": _conv, "Gemm": _gemm, "MatMul": _matmul, "Relu": _relu, "Clip": _relu,
    "BatchNormalization": _batchnorm, "Add": _add, "Sum": _add, "Concat": _concat,
    "Flatten": _flatten, "Reshape": _reshape, "AveragePool": _pool,
    "GlobalAveragePool": _pool, "Identity": _same_val, "Dropout": _same_val,
    "Constant": _constant, "Softmax": _softmax, "LogSoftmax": _softmax,
}

__all__ = ["Converter", "HANDLERS", "Layer", "Options", "Val", "field"]
