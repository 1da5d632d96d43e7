"""IR ops: tensor reshaping and arithmetic, batch norms (:mod:`slayerc.ir.ops` re-exports them)."""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from slayerc.ir.core import Graph, Op, ParamRef, ShapeProblem, is_scalar, register
from slayerc.ir.op_rules import (
    InSpec,
    Shape,
    _array_problems,
    _ints_ok,
)

# ---------------------------------------------------------------------------------------- tensor


@register
@dataclass(frozen=True, slots=True, kw_only=True)
class Flatten(Op):
    """``tensor.flatten``: ``y[t] = reshape(x[t], [C·H·W])`` in C order (torch order)."""

    OP: ClassVar[str] = "tensor.flatten"
    SHAPE: ClassVar[str] = (
        "``(C·H·W,)``: one axis of the input's element count; the input's dtype"
    )

    def infer(self, ins: InSpec, g: Graph) -> tuple[Shape, str]:
        (x, dtype), = ins
        return (int(np.prod(x)),), dtype


@register
@dataclass(frozen=True, slots=True, kw_only=True)
class Reshape(Op):
    """``tensor.reshape``: ``y[t] = reshape(x[t], to)`` in C order (``to``: the per-step shape)."""

    OP: ClassVar[str] = "tensor.reshape"
    SHAPE: ClassVar[str] = (
        "``to``, which must hold as many elements as the input; the input's dtype"
    )
    to: tuple[int, ...] = ()

    def infer(self, ins: InSpec, g: Graph) -> tuple[Shape, str]:
        (x, dtype), = ins
        if int(np.prod(x)) != int(np.prod(self.to)):
            raise ShapeProblem(f"cannot reshape {list(x)} ({int(np.prod(x))} elements) to "
                               f"{list(self.to)} ({int(np.prod(self.to))} elements)")
        return tuple(self.to), dtype

    def check(self, g: Graph) -> Iterator[str]:
        if not self.to:
            yield f"{self.describe()}: reshape target 'to' must not be empty"
            return
        yield from _ints_ok(self, "to", 1)


@register
@dataclass(frozen=True, slots=True, kw_only=True)
class Add(Op):
    """``tensor.add``: ``y[t] = Σ_i x_i[t]`` over two or more inputs of one shape."""

    OP: ClassVar[str] = "tensor.add"
    SHAPE: ClassVar[str] = (
        "the inputs' shape and dtype, which must all be equal"
    )
    ARITY: ClassVar[int | None] = None

    def infer(self, ins: InSpec, g: Graph) -> tuple[Shape, str]:
        if len(ins) < 2:
            raise ShapeProblem("tensor.add needs at least two inputs")
        shapes = {s for s, _ in ins}
        dtypes = {d for _, d in ins}
        if len(shapes) > 1 or len(dtypes) > 1:
            got = ", ".join(f"{d}{list(s)}" for s, d in ins)
            raise ShapeProblem(f"tensor.add needs equal shapes and dtypes, got {got}")
        return ins[0]


@register
@dataclass(frozen=True, slots=True, kw_only=True)
class Concat(Op):
    """``tensor.concat``: ``y[t] = concat(x_1[t], …, x_n[t], axis)`` (axis 0 is channels)."""

    OP: ClassVar[str] = "tensor.concat"
    SHAPE: ClassVar[str] = (
        "the inputs' shape with the ``axis`` extents summed; the other axes, the rank and the "
        "dtype must agree"
    )
    ARITY: ClassVar[int | None] = None
    axis: int = 0

    def infer(self, ins: InSpec, g: Graph) -> tuple[Shape, str]:
        if len(ins) < 2:
            raise ShapeProblem("tensor.concat needs at least two inputs")
        first = ins[0][0]
        if not 0 <= self.axis < len(first):
            raise ShapeProblem(f"axis {self.axis} is out of range for shape {list(first)}")
        for s, _ in ins:
            if len(s) != len(first) or any(a != b for i, (a, b) in enumerate(zip(s, first))
                                           if i != self.axis):
                got = ", ".join(str(list(s)) for s, _ in ins)
                raise ShapeProblem(f"tensor.concat on axis {self.axis} got mismatched shapes {got}")
        if len({d for _, d in ins}) > 1:
            raise ShapeProblem("tensor.concat needs inputs of one dtype")
        out = list(first)
        out[self.axis] = sum(s[self.axis] for s, _ in ins)
        return tuple(out), ins[0][1]


@register
@dataclass(frozen=True, slots=True, kw_only=True)
class Affine(Op):
    """``tensor.affine``: ``y[t] = scale · x[t] + bias`` with scalar constants.

    Multiplication by a constant, and the netx input layer's ``x·weight + bias`` transform.
    """

    OP: ClassVar[str] = "tensor.affine"
    scale: float = 1.0
    bias: float = 0.0

    def check(self, g: Graph) -> Iterator[str]:
        for attr in ("scale", "bias"):
            v = getattr(self, attr)
            if not is_scalar(v) or not math.isfinite(v):
                yield f"{self.describe()}: '{attr}' must be a finite number, got {v!r}"


@register
@dataclass(frozen=True, slots=True, kw_only=True)
class Quantize(Op):
    """``tensor.quantize``: ``y[t] = clamp(round(x[t] / step) · step, low, high)``.

    slayer's Input blocks quantize their input this way (``quantize_8bit``: step 2/64, range
    [−4, 3.96875] at the default scale).  ``round`` is round-half-to-even, as torch's.
    """

    OP: ClassVar[str] = "tensor.quantize"
    step: float = 1.0
    low: float = -math.inf
    high: float = math.inf

    def check(self, g: Graph) -> Iterator[str]:
        if not (is_scalar(self.step) and math.isfinite(self.step) and self.step > 0):
            yield f"{self.describe()}: step must be a positive finite number, got {self.step!r}"
        if not self.low <= self.high:
            yield f"{self.describe()}: low {self.low!r} must not exceed high {self.high!r}"


# ----------------------------------------------------------------------------------------- norm


@register
@dataclass(frozen=True, slots=True, kw_only=True)
class BatchNorm(Op):
    """``norm.batch``: inference batch norm per channel.

    ``y[t] = (x[t] − mean) / sqrt(var + eps) · weight + bias``.
    """

    OP: ClassVar[str] = "norm.batch"
    mean: ParamRef | None = None
    var: ParamRef | None = None
    weight: ParamRef | None = None
    bias: ParamRef | None = None
    eps: float = 1e-5

    def check(self, g: Graph) -> Iterator[str]:
        shapes = ((self.shape[0],),) if self.shape else ()
        for attr in ("mean", "var"):
            yield from _array_problems(g, self, attr, getattr(self, attr), shapes)
        for attr in ("weight", "bias"):
            if getattr(self, attr) is not None:
                yield from _array_problems(g, self, attr, getattr(self, attr), shapes)
        if not self.eps >= 0:
            yield f"{self.describe()}: eps {self.eps!r} must be >= 0"
        var = g.params.get(self.var.name) if isinstance(self.var, ParamRef) else None
        if var is not None and var.size and float(np.min(var)) < 0:
            yield f"{self.describe()}: variance @{self.var.name} has negative entries"


@register
@dataclass(frozen=True, slots=True, kw_only=True)
class MeanOnlyNorm(Op):
    """``norm.mean_only``: slayer's ``MeanOnlyBatchNorm`` at inference, ``y[t] = x[t] − q(mean)``.

    ``q`` quantizes to the 8-bit weight grid at ``scale`` (as lava-dl does when it is used).
    """

    OP: ClassVar[str] = "norm.mean_only"
    mean: ParamRef | None = None
    scale: int = 64

    def check(self, g: Graph) -> Iterator[str]:
        shapes = ((self.shape[0],),) if self.shape else ()
        yield from _array_problems(g, self, "mean", self.mean, shapes)


@register
@dataclass(frozen=True, slots=True, kw_only=True)
class WeightScaleNorm(Op):
    """``norm.weight_scale``: slayer's ``WgtScaleBatchNorm`` at inference.

    ``y[t] = (x[t] − q(mean)) / 2^weight_exp`` with ``weight_exp = ceil(log2 std)``; ``q``
    quantizes to the 8-bit weight grid at ``scale``, as in ``norm.mean_only``.
    """

    OP: ClassVar[str] = "norm.weight_scale"
    mean: ParamRef | None = None
    weight_exp: int = 0
    scale: int = 64

    def check(self, g: Graph) -> Iterator[str]:
        shapes = ((self.shape[0],),) if self.shape else ()
        yield from _array_problems(g, self, "mean", self.mean, shapes)
        if not isinstance(self.weight_exp, int) or isinstance(self.weight_exp, bool):
            yield f"{self.describe()}: weight_exp must be an int, got {self.weight_exp!r}"



@register
@dataclass(frozen=True, slots=True, kw_only=True)
class Average(Op):
    """``tensor.average``: slayer's ``Average`` block (hdf5 type ``average``).

    The flattened input is split into ``groups`` equal consecutive parts and each part is
    averaged: ``y_i[t] = mean(flat(x[t])[i·k : (i+1)·k])`` with ``k = size(x) / groups``.
    The output shape is ``(groups,)``.
    """

    OP: ClassVar[str] = "tensor.average"
    SHAPE: ClassVar[str] = (
        "``(groups,)``; the input's element count must divide into ``groups``"
    )
    groups: int = 1

    def infer(self, ins: InSpec, g: Graph) -> tuple[Shape, str]:
        (x, dtype), = ins
        size = int(np.prod(x))
        if self.groups < 1 or size % self.groups:
            raise ShapeProblem(f"{size} inputs cannot be split into {self.groups} equal groups")
        return (self.groups,), dtype

    def check(self, g: Graph) -> Iterator[str]:
        yield from _ints_ok(self, "groups", 1)
