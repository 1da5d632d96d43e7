"""The op vocabulary of the slayerc IR.

One frozen dataclass per SNN primitive; the docstring of each gives its equations in slayer units
over time steps ``t`` (the exact integer arithmetic is in ``spec/slayer-dynamics.md`` and is
implemented once in ``slayerc.runtime``).  ``x`` is the input sequence, ``y`` the output.
Shapes are per step, without batch and time.  Neuron parameters are a scalar (shared) or a
``ParamRef`` to an array of shape ``(C,)`` (per channel) or the node's shape (per neuron).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from slayerc.ir.core import Graph, Op, ParamRef, ScalarOrParam, ShapeProblem, is_scalar, register

Shape = tuple[int, ...]
InSpec = list[tuple[Shape, str]]

# --------------------------------------------------------------------------------------- helpers


def _want_rank(x: Shape, ranks: tuple[int, ...], what: str) -> None:
    if len(x) not in ranks:
        want = " or ".join(f"{r}-d" for r in ranks)
        raise ShapeProblem(f"{what} needs a {want} input, got shape {list(x)}")


def _want_dtype(dtype: str, want: str, what: str) -> None:
    if dtype != want:
        kind = {"c32": "complex (from a complex synapse)", "f32": "real"}[want]
        raise ShapeProblem(f"{what} needs a {kind} input, got {dtype}")


def _pair(v: Any) -> tuple[int, int]:
    return (v, v) if isinstance(v, int) else tuple(v)  # type: ignore[return-value]


def _conv_out(n: int, k: int, s: int, p: int, d: int) -> int:
    return (n + 2 * p - d * (k - 1) - 1) // s + 1


def pool_is_per_channel(c: int, h: int, k: int, s: int, p: int, d: int) -> bool:
    """Whether slayer's pool over ``c`` channels reads only rows of one channel per window.

    lava-dl (and so slayerc's runtimes) pools the channels stacked as one image of
    ``c·(h + h mod k)`` rows.  That is the per-channel pool :class:`Pool` means only when, for
    every output row and kernel tap, the stacked image's row is the same row of the same channel
    (or a zero: padding, remainder); checked row by row.  True for one channel, or without
    vertical padding when the stride is at least the window extent and divides ``h + h mod k``.
    """
    hp = h + h % k
    n = _conv_out(hp, k, s, p, d)
    if _conv_out(c * hp, k, s, p, d) != c * n:
        return False
    r, t = np.arange(c * n)[:, None], np.arange(k)[None, :]
    q = r * s - p + t * d  # row of the stacked image
    i = (r % n) * s - p + t * d  # row of channel r // n
    data_q = (q >= 0) & (q < c * hp) & (q % hp < h)  # a data row, not padding or remainder
    data_i = (i >= 0) & (i < h)
    same = (q // hp == r // n) & (q % hp == i)
    return bool(np.all((data_q == data_i) & (~data_q | same)))


def _convt_out(n: int, k: int, s: int, p: int, d: int) -> int:
    return (n - 1) * s - 2 * p + d * (k - 1) + 1


def _array_problems(g: Graph, node: Op, attr: str, ref: Any,
                    shapes: tuple[Shape, ...]) -> list[str]:
    """Check that ``ref`` points at an existing finite array with one of ``shapes``."""
    if not isinstance(ref, ParamRef):
        return [f"{node.describe()}: attribute '{attr}' must be a parameter reference, got {ref!r}"]
    if ref.name not in g.params:
        return [f"{node.describe()}: attribute '{attr}' refers to missing parameter @{ref.name}"]
    arr = g.params[ref.name]
    out = []
    if shapes and arr.shape not in shapes:
        want = " or ".join(str(list(s)) for s in shapes)
        out.append(f"{node.describe()}: parameter @{ref.name} ('{attr}') has shape "
                   f"{list(arr.shape)}, expected {want}")
    if arr.dtype.kind in "fc" and not np.all(np.isfinite(arr)):
        out.append(f"{node.describe()}: parameter @{ref.name} ('{attr}') holds inf or nan")
    return out


def _scalar_or_param(g: Graph, node: Op, attr: str, lo: float | None = None,
                     hi: float | None = None, optional: bool = False) -> list[str]:
    """Check a neuron parameter: a finite scalar or a per-channel / per-neuron array in range."""
    value = getattr(node, attr)
    if value is None:
        return [] if optional else [f"{node.describe()}: attribute '{attr}' is required"]
    if isinstance(value, ParamRef):
        shapes: tuple[Shape, ...] = ()
        if node.shape is not None:
            shapes = ((), (node.shape[0],), tuple(node.shape))
        probs = _array_problems(g, node, attr, value, shapes)
        if probs:
            return probs
        arr = g.params[value.name].astype(np.float64)
    elif is_scalar(value):
        arr = np.asarray(float(value))
        if not math.isfinite(arr):
            return [f"{node.describe()}: attribute '{attr}' must be finite, got {value!r}"]
    else:
        return [f"{node.describe()}: attribute '{attr}' must be a number or @param, got {value!r}"]
    if lo is not None and arr.size and float(arr.min()) < lo:
        return [f"{node.describe()}: '{attr}' = {float(arr.min())!r} is below {lo!r}"]
    if hi is not None and arr.size and float(arr.max()) > hi:
        return [f"{node.describe()}: '{attr}' = {float(arr.max())!r} is above {hi!r}"]
    return []


def _ints_ok(node: Op, attr: str, lo: int) -> list[str]:
    value = getattr(node, attr)
    vals = (value,) if isinstance(value, int) else value
    if (not isinstance(vals, tuple) or not all(isinstance(v, int) and not isinstance(v, bool)
                                               for v in vals)):
        return [f"{node.describe()}: attribute '{attr}' must be an int or a tuple of ints"]
    if any(v < lo for v in vals):
        return [f"{node.describe()}: attribute '{attr}' = {value!r} must be >= {lo}"]
    return []


# ------------------------------------------------------------------------------------------- io


@register
@dataclass(frozen=True, slots=True, kw_only=True)
class Input(Op):
    """``io.input``: a graph input.  ``y[t] = x[t]``; its ``shape`` is given, never inferred."""

    OP: ClassVar[str] = "io.input"
    ARITY: ClassVar[int | None] = 0

    def infer(self, ins: InSpec, g: Graph) -> tuple[Shape, str]:
        if self.shape is None:
            raise ShapeProblem("io.input needs its shape (e.g. f32[2, 32, 32])")
        return self.shape, self.dtype or "f32"


@register
@dataclass(frozen=True, slots=True, kw_only=True)
class Output(Op):
    """``io.output``: a graph output.  ``y[t] = x[t]``."""

    OP: ClassVar[str] = "io.output"


# ------------------------------------------------------------------------------------- synapses


@dataclass(frozen=True, slots=True, kw_only=True)
class _Synapse(Op):
    """Shared fields of weighted synapses: optional imaginary weight (complex), mask and bias.

    ``sparse`` is a storage hint only (set by ``sparsify-masks`` for low-density weights):
    backends may store such a weight in a compressed form; the semantics are unchanged.
    """

    weight: ParamRef | None = None
    weight_imag: ParamRef | None = None
    mask: ParamRef | None = None
    bias: ParamRef | None = None
    sparse: bool = False

    def _out_dtype(self, dtype: str) -> str:
        _want_dtype(dtype, "f32", self.OP)
        return "c32" if self.weight_imag is not None else "f32"

    def _weight_problems(self, g: Graph, shapes: tuple[Shape, ...]) -> list[str]:
        out = _array_problems(g, self, "weight", self.weight, shapes)
        if out:
            return out
        wshape = (g.params[self.weight.name].shape,)  # type: ignore[union-attr]
        for attr in ("weight_imag", "mask"):
            if getattr(self, attr) is not None:
                out += _array_problems(g, self, attr, getattr(self, attr), wshape)
        if self.bias is not None:
            out += _array_problems(g, self, "bias", self.bias, ((wshape[0][0],),))
        return out


@register
@dataclass(frozen=True, slots=True, kw_only=True)
class Dense(_Synapse):
    """``synapse.dense``: ``y[t] = (W ⊙ M) x[t] + b``; complex: ``(W_re x, W_im x)``.

    ``weight`` is ``[out, in]``; ``mask`` (same shape) multiplies it; ``bias`` is ``[out]``.
    """

    OP: ClassVar[str] = "synapse.dense"

    def infer(self, ins: InSpec, g: Graph) -> tuple[Shape, str]:
        (x, dtype), = ins
        w = g.params[self.weight.name].shape  # type: ignore[union-attr]
        if len(x) != 1:
            raise ShapeProblem(f"synapse.dense needs a 1-d input, got shape {list(x)}; "
                               "insert a tensor.flatten first")
        if x[0] != w[1]:
            raise ShapeProblem(f"weight {list(w)} expects {w[1]} input features, "
                               f"but the input has shape {list(x)}")
        return (w[0],), self._out_dtype(dtype)

    def check(self, g: Graph) -> Iterator[str]:
        w = g.params.get(self.weight.name) if isinstance(self.weight, ParamRef) else None
        if w is not None and w.ndim != 2:
            yield f"{self.describe()}: weight @{self.weight.name} must be 2-d [out, in], " \
                  f"got shape {list(w.shape)}"  # type: ignore[union-attr]
            return
        yield from self._weight_problems(g, ())


@dataclass(frozen=True, slots=True, kw_only=True)
class _Windowed(_Synapse):
    """Shared fields of 2-D windowed synapses (all in (H, W) order)."""

    stride: tuple[int, int] = (1, 1)
    padding: tuple[int, int] = (0, 0)
    dilation: tuple[int, int] = (1, 1)

    def _geometry_problems(self) -> list[str]:
        out = []
        for attr, lo in (("stride", 1), ("padding", 0), ("dilation", 1)):
            out += _ints_ok(self, attr, lo)
        return out


@register
@dataclass(frozen=True, slots=True, kw_only=True)
class Conv(_Windowed):
    """``synapse.conv``: 2-D cross-correlation per step, ``y[t] = conv2d(x[t], W ⊙ M) + b``.

    ``weight`` is ``[out, in/groups, kH, kW]``; complex with ``weight_imag``.
    """

    OP: ClassVar[str] = "synapse.conv"
    groups: int = 1

    def infer(self, ins: InSpec, g: Graph) -> tuple[Shape, str]:
        (x, dtype), = ins
        _want_rank(x, (3,), "synapse.conv")
        w = g.params[self.weight.name].shape  # type: ignore[union-attr]
        if x[0] != w[1] * self.groups:
            raise ShapeProblem(f"weight {list(w)} with groups={self.groups} expects "
                               f"{w[1] * self.groups} input channels, but the input has shape "
                               f"{list(x)}")
        hw = [_conv_out(x[i + 1], w[i + 2], _pair(self.stride)[i], _pair(self.padding)[i],
                        _pair(self.dilation)[i]) for i in range(2)]
        if min(hw) < 1:
            raise ShapeProblem(f"kernel {list(w[2:])} does not fit the input {list(x)}")
        return (w[0], hw[0], hw[1]), self._out_dtype(dtype)

    def check(self, g: Graph) -> Iterator[str]:
        yield from self._geometry_problems()
        yield from _ints_ok(self, "groups", 1)
        w = g.params.get(self.weight.name) if isinstance(self.weight, ParamRef) else None
        if w is not None and w.ndim != 4:
            yield f"{self.describe()}: weight must be 4-d [out, in/groups, kH, kW], " \
                  f"got shape {list(w.shape)}"
            return
        if w is not None and w.shape[0] % self.groups:
            yield f"{self.describe()}: {w.shape[0]} output channels are not divisible by " \
                  f"groups={self.groups}"
        yield from self._weight_problems(g, ())


@register
@dataclass(frozen=True, slots=True, kw_only=True)
class ConvTranspose(_Windowed):
    """``synapse.conv_transpose``: ``y[t] = conv_transpose2d(x[t], W) + b``.

    ``weight`` is ``[in, out/groups, kH, kW]`` (torch layout); complex with ``weight_imag``.
    """

    OP: ClassVar[str] = "synapse.conv_transpose"
    groups: int = 1

    def infer(self, ins: InSpec, g: Graph) -> tuple[Shape, str]:
        (x, dtype), = ins
        _want_rank(x, (3,), "synapse.conv_transpose")
        w = g.params[self.weight.name].shape  # type: ignore[union-attr]
        if x[0] != w[0]:
            raise ShapeProblem(f"weight {list(w)} expects {w[0]} input channels, "
                               f"but the input has shape {list(x)}")
        hw = [_convt_out(x[i + 1], w[i + 2], _pair(self.stride)[i], _pair(self.padding)[i],
                         _pair(self.dilation)[i]) for i in range(2)]
        if min(hw) < 1:
            raise ShapeProblem(f"padding {list(_pair(self.padding))} leaves no output")
        return (w[1] * self.groups, hw[0], hw[1]), self._out_dtype(dtype)

    def check(self, g: Graph) -> Iterator[str]:
        yield from self._geometry_problems()
        yield from _ints_ok(self, "groups", 1)
        w = g.params.get(self.weight.name) if isinstance(self.weight, ParamRef) else None
        if w is not None and w.ndim != 4:
            yield f"{self.describe()}: weight must be 4-d [in, out/groups, kH, kW], " \
                  f"got shape {list(w.shape)}"
            return
        yield from self._weight_problems(g, ())


@register
@dataclass(frozen=True, slots=True, kw_only=True)
class Pool(_Windowed):
    """``synapse.pool``: slayer's sum pool, one ``[1, 1, kH, kW]`` kernel shared by all channels.

    Each channel is zero-padded at the bottom/right by ``H mod kH`` rows and ``W mod kW`` columns
    (the remainder, as lava-dl does), then ``y[t] = conv2d(x_c[t], W)`` with the given stride.
    ``stride`` defaults to the kernel size when built by the frontend.  lava-dl computes it on
    the channels stacked into one tall image; geometries where a window would then read two
    channels are refused by shape inference (:func:`pool_is_per_channel`).
    """

    OP: ClassVar[str] = "synapse.pool"
    kernel: tuple[int, int] = (2, 2)
    stride: tuple[int, int] = (2, 2)

    def infer(self, ins: InSpec, g: Graph) -> tuple[Shape, str]:
        (x, dtype), = ins
        _want_rank(x, (3,), "synapse.pool")
        k, s = _pair(self.kernel), _pair(self.stride)
        p, d = _pair(self.padding), _pair(self.dilation)
        hw = [_conv_out(x[i + 1] + x[i + 1] % k[i], k[i], s[i], p[i], d[i]) for i in range(2)]
        if min(hw) < 1:
            raise ShapeProblem(f"pool kernel {list(k)} does not fit the input {list(x)}")
        if not pool_is_per_channel(x[0], x[1], k[0], s[0], p[0], d[0]):
            raise ShapeProblem(
                f"pool windows over input {list(x)} (kernel {k[0]}, stride {s[0]}, padding "
                f"{p[0]}, dilation {d[0]} in height) read rows of two channels: lava-dl's pool "
                "stacks the channels into one image, which is no per-channel pool here; use "
                "no vertical padding and a stride at least the kernel extent that divides the "
                "padded height")
        return (x[0], hw[0], hw[1]), self._out_dtype(dtype)

    def check(self, g: Graph) -> Iterator[str]:
        yield from self._geometry_problems()
        yield from _ints_ok(self, "kernel", 1)
        yield from self._weight_problems(g, ((1, 1, *_pair(self.kernel)),))


@register
@dataclass(frozen=True, slots=True, kw_only=True)
class Unpool(_Windowed):
    """``synapse.unpool``: the transpose of ``synapse.pool`` (each channel, shared kernel).

    ``y[t] = conv_transpose2d(x_c[t], W)`` with ``W`` of shape ``[1, 1, kH, kW]``.
    """

    OP: ClassVar[str] = "synapse.unpool"
    kernel: tuple[int, int] = (2, 2)
    stride: tuple[int, int] = (2, 2)

    def infer(self, ins: InSpec, g: Graph) -> tuple[Shape, str]:
        (x, dtype), = ins
        _want_rank(x, (3,), "synapse.unpool")
        k, s = _pair(self.kernel), _pair(self.stride)
        p, d = _pair(self.padding), _pair(self.dilation)
        hw = [_convt_out(x[i + 1], k[i], s[i], p[i], d[i]) for i in range(2)]
        if min(hw) < 1:
            raise ShapeProblem(f"padding {list(p)} leaves no output")
        return (x[0], hw[0], hw[1]), self._out_dtype(dtype)

    def check(self, g: Graph) -> Iterator[str]:
        yield from self._geometry_problems()
        yield from _ints_ok(self, "kernel", 1)
        yield from self._weight_problems(g, ((1, 1, *_pair(self.kernel)),))


@register
@dataclass(frozen=True, slots=True, kw_only=True)
class KWTA(Op):
    """``synapse.kwta``: k-winner-take-all lateral connection of a layer of N neurons.

    ``y[t] = q(R) x[t] + q(b)`` with ``R = (1 + a) I − 1`` (``a = self_excitation`` on the
    diagonal, −1 elsewhere) and ``b = θ (N − 2K) / N``; ``q`` is the 8-bit weight quantizer at
    ``scale``.  It reads the layer's own spikes through an ``axon.shift`` (a cycle).
    """

    OP: ClassVar[str] = "synapse.kwta"
    num_winners: int = 1
    self_excitation: float = 0.5
    threshold: float = 1.0
    scale: int = 64

    def infer(self, ins: InSpec, g: Graph) -> tuple[Shape, str]:
        (x, dtype), = ins
        _want_rank(x, (1,), "synapse.kwta")
        _want_dtype(dtype, "f32", self.OP)
        if not 0 < self.num_winners <= x[0]:
            raise ShapeProblem(f"num_winners={self.num_winners} must be in 1..{x[0]}")
        return x, "f32"

    def check(self, g: Graph) -> Iterator[str]:
        yield from _ints_ok(self, "num_winners", 1)
        if not 0.0 <= self.self_excitation <= 1.0:
            yield f"{self.describe()}: self_excitation {self.self_excitation!r} not in [0, 1]"
        if self.scale <= 0:
            yield f"{self.describe()}: scale must be positive, got {self.scale}"


# -------------------------------------------------------------------------------------- neurons


@dataclass(frozen=True, slots=True, kw_only=True)
class _Neuron(Op):
    """Shared neuron fields.

    ``threshold`` θ in slayer units; ``bias`` is added to the neuron's drive each step (for CUBA:
    to the voltage input after the current integrates, where slayer's mean-only batch norm and
    Lava's ``bias_mant`` act); ``graded`` makes spikes carry the state value; ``scale`` is
    slayer's ``w_scale`` (the integer state scale is ``scale·64``); ``tau_grad``/``scale_grad``
    shape the surrogate gradient (training only); ``persistent`` keeps the state from one run
    to the next (streaming: slayer's ``persistent_state``; a runtime property netx does not store).
    """

    COMPLEX_IN: ClassVar[bool] = False
    #: (attribute, lower bound, upper bound, optional) for each neuron parameter.
    PARAMS: ClassVar[tuple[tuple[str, float | None, float | None, bool], ...]] = ()

    threshold: ScalarOrParam = 1.0
    bias: ScalarOrParam | None = None
    graded: bool = False
    scale: int = 64
    tau_grad: float = 1.0
    scale_grad: float = 1.0
    persistent: bool = False

    def infer(self, ins: InSpec, g: Graph) -> tuple[Shape, str]:
        (x, dtype), = ins
        _want_dtype(dtype, "c32" if self.COMPLEX_IN else "f32", self.OP)
        return x, "f32"

    def check(self, g: Graph) -> Iterator[str]:
        yield from _scalar_or_param(g, self, "threshold", lo=0.0)
        yield from _scalar_or_param(g, self, "bias", optional=True)
        for attr, lo, hi, optional in self.PARAMS:
            yield from _scalar_or_param(g, self, attr, lo, hi, optional)
        if not isinstance(self.scale, int) or self.scale <= 0:
            yield f"{self.describe()}: scale must be a positive int, got {self.scale!r}"


_DECAY = (0.0, 1.0)
_LIF_PARAMS = (("current_decay", *_DECAY, False), ("voltage_decay", *_DECAY, False))
_ADAPT_PARAMS = (("threshold_step", 0.0, None, False), ("threshold_decay", *_DECAY, False),
                 ("refractory_decay", *_DECAY, False))
_RF_PARAMS = (("sin_decay", -1.0, 1.0, False), ("cos_decay", -1.0, 1.0, False))


@register
@dataclass(frozen=True, slots=True, kw_only=True)
class Cuba(_Neuron):
    """``neuron.cuba``: current-based leaky integrate-and-fire.

    ``u[t] = (1 − αu) u[t−1] + x[t]``; ``v[t] = (1 − αv) v[t−1] + u[t] + bias``;
    ``s[t] = v[t] > θ`` (strict, in the integer domain), then ``v[t] = 0``.
    Graded: ``s[t] = v[t]`` where it spikes.  ``αu = current_decay``, ``αv = voltage_decay``.
    """

    OP: ClassVar[str] = "neuron.cuba"
    PARAMS: ClassVar = _LIF_PARAMS
    current_decay: ScalarOrParam = 0.0
    voltage_decay: ScalarOrParam = 0.0


@register
@dataclass(frozen=True, slots=True, kw_only=True)
class Alif(_Neuron):
    """``neuron.alif``: adaptive LIF with soft refractory.

    ``u, v`` as CUBA but ``v`` never resets; ``θ[t] = (1 − αθ)(θ[t−1] − θ0) + θ0``,
    ``r[t] = (1 − αr) r[t−1]``; ``s[t] = v[t] ≥ θ[t] + r[t]``; on a spike ``θ += θ_step`` and
    ``r += 2 θ[t]``.
    """

    OP: ClassVar[str] = "neuron.alif"
    PARAMS: ClassVar = _LIF_PARAMS + _ADAPT_PARAMS
    current_decay: ScalarOrParam = 0.0
    voltage_decay: ScalarOrParam = 0.0
    threshold_step: ScalarOrParam = 0.0
    threshold_decay: ScalarOrParam = 0.0
    refractory_decay: ScalarOrParam = 0.0


@register
@dataclass(frozen=True, slots=True, kw_only=True)
class RF(_Neuron):
    """``neuron.rf``: resonate-and-fire with phase spike (complex input ``(x_re, x_im)``).

    ``re[t] = c re[t−1] − s im[t−1] + x_re[t]``; ``im[t] = s re[t−1] + c im[t−1] + x_im[t]``
    with ``s = sin_decay``, ``c = cos_decay`` (each ``(1 − α)·sin/cos(2π/period)``);
    ``spike[t] = re[t] ≥ θ ∧ im[t−1] < 0 ∧ im[t] ≥ 0``.
    """

    OP: ClassVar[str] = "neuron.rf"
    COMPLEX_IN: ClassVar[bool] = True
    PARAMS: ClassVar = _RF_PARAMS
    sin_decay: ScalarOrParam = 0.0
    cos_decay: ScalarOrParam = 1.0


@register
@dataclass(frozen=True, slots=True, kw_only=True)
class RFIz(_Neuron):
    """``neuron.rf_iz``: resonate-and-fire, Izhikevich spike.

    Resonator as ``neuron.rf``; ``spike[t] = im[t] ≥ θ``, then ``re = 0``, ``im = θ − 1/S``.
    """

    OP: ClassVar[str] = "neuron.rf_iz"
    COMPLEX_IN: ClassVar[bool] = True
    PARAMS: ClassVar = _RF_PARAMS
    sin_decay: ScalarOrParam = 0.0
    cos_decay: ScalarOrParam = 1.0


@register
@dataclass(frozen=True, slots=True, kw_only=True)
class Adrf(_Neuron):
    """``neuron.adrf``: resonator (no reset) with adaptive threshold and refractory, phase spike.

    ``spike[t] = re[t] ≥ θ[t] + r[t] ∧ im[t−1] < 0 ∧ im[t] ≥ 0``; θ, r as ``neuron.alif``.
    """

    OP: ClassVar[str] = "neuron.adrf"
    COMPLEX_IN: ClassVar[bool] = True
    PARAMS: ClassVar = _RF_PARAMS + _ADAPT_PARAMS
    sin_decay: ScalarOrParam = 0.0
    cos_decay: ScalarOrParam = 1.0
    threshold_step: ScalarOrParam = 0.0
    threshold_decay: ScalarOrParam = 0.0
    refractory_decay: ScalarOrParam = 0.0


@register
@dataclass(frozen=True, slots=True, kw_only=True)
class AdrfIz(_Neuron):
    """``neuron.adrf_iz``: resonator (no reset) with adaptive threshold, Izhikevich spike.

    ``spike[t] = im[t] ≥ θ[t] + r[t]``; on a spike ``θ += θ_step``, ``r += 2 θ[t]``.
    """

    OP: ClassVar[str] = "neuron.adrf_iz"
    COMPLEX_IN: ClassVar[bool] = True
    PARAMS: ClassVar = _RF_PARAMS + _ADAPT_PARAMS
    sin_decay: ScalarOrParam = 0.0
    cos_decay: ScalarOrParam = 1.0
    threshold_step: ScalarOrParam = 0.0
    threshold_decay: ScalarOrParam = 0.0
    refractory_decay: ScalarOrParam = 0.0


ACTIVATIONS = ("relu", "identity", "sigmoid", "tanh")


@register
@dataclass(frozen=True, slots=True, kw_only=True)
class SigmaDelta(_Neuron):
    """``neuron.sigma_delta``: sigma decoder, activation, delta encoder.

    ``σ[t] = σ[t−1] + x[t]``; ``a[t] = act(σ[t] + bias)``; ``Δ = a[t] − a[t−1] + res``;
    ``y[t] = Δ if |Δ| ≥ θ else 0`` (floor-quantized to ``1/(scale·64)``), ``res = Δ − y[t]``.
    ``cum_error`` accumulates the error for the send decision as lava-dl's Delta does.
    """

    OP: ClassVar[str] = "neuron.sigma_delta"
    activation: str = "relu"
    cum_error: bool = False

    def check(self, g: Graph) -> Iterator[str]:
        yield from _Neuron.check(self, g)
        if self.activation not in ACTIVATIONS:
            yield f"{self.describe()}: activation {self.activation!r} is not one of " \
                  f"{', '.join(ACTIVATIONS)}"


@register
@dataclass(frozen=True, slots=True, kw_only=True)
class Dropout(Op):
    """``neuron.dropout``: drops whole neurons for the whole window in training; identity here.

    ``y[t] = x[t]`` at inference; ``p`` is the training drop probability.
    """

    OP: ClassVar[str] = "neuron.dropout"
    p: float = 0.5

    def check(self, g: Graph) -> Iterator[str]:
        if not 0.0 <= self.p < 1.0:
            yield f"{self.describe()}: dropout p={self.p!r} must be in [0, 1)"


# ---------------------------------------------------------------------------------- axon/dendrite


@register
@dataclass(frozen=True, slots=True, kw_only=True)
class Shift(Op):
    """``axon.shift``: delay the whole tensor by ``steps``: ``y[t] = x[t − steps]`` (0 before).

    slayer's per-block ``delay_shift`` and the hardware synapse's one-step hold are ``steps=1``.
    ``persistent``: the first steps of a run get the last ones of the previous run, not zeros.
    """

    OP: ClassVar[str] = "axon.shift"
    steps: int = 1
    persistent: bool = False

    def is_delay(self) -> bool:
        return self.steps >= 1

    def check(self, g: Graph) -> Iterator[str]:
        yield from _ints_ok(self, "steps", 0)


@register
@dataclass(frozen=True, slots=True, kw_only=True)
class Delay(Op):
    """``axon.delay``: per-channel axonal delay, ``y_c[t] = x_c[t − d_c]`` (0 before).

    ``delay`` is an int (all channels) or ``@param`` of integers, shape ``(C,)`` (repeated over
    H and W) or the node shape (per neuron).  ``max_delay`` records the target limit, if any.
    """

    OP: ClassVar[str] = "axon.delay"
    delay: int | ParamRef = 0
    max_delay: int | None = None

    def is_delay(self) -> bool:
        # A per-channel delay closes a cycle only if every channel waits; verify checks arrays.
        return not isinstance(self.delay, int) or self.delay >= 1

    def min_delay(self, g: Graph) -> int:
        """The smallest delay of any channel."""
        if isinstance(self.delay, ParamRef):
            arr = g.params.get(self.delay.name)
            return int(arr.min()) if arr is not None and arr.size else 0
        return self.delay

    def check(self, g: Graph) -> Iterator[str]:
        if isinstance(self.delay, int):
            if self.delay < 0:
                yield f"{self.describe()}: delay {self.delay} must be >= 0"
            return
        probs = _scalar_or_param(g, self, "delay", lo=0.0)
        if probs:
            yield from probs
            return
        arr = g.params[self.delay.name]
        if not np.array_equal(arr, np.floor(arr)):
            yield f"{self.describe()}: delays @{self.delay.name} must be whole steps; " \
                  "run legalize-delay to make float delays integral"


@register
@dataclass(frozen=True, slots=True, kw_only=True)
class Delta(Op):
    """``axon.delta``: delta encoder (lava-dl ``axon.Delta``; the SDNN input layer).

    ``Δ = x[t] − x[t−1] + res``; ``y[t] = Δ if |Δ| ≥ θ else 0``, ``res = Δ − y[t]``; the output is
    floor-quantized to ``1/(scale·64)``.
    """

    OP: ClassVar[str] = "axon.delta"
    threshold: ScalarOrParam = 0.0
    cum_error: bool = False
    scale: int = 64
    persistent: bool = False

    def check(self, g: Graph) -> Iterator[str]:
        yield from _scalar_or_param(g, self, "threshold", lo=0.0)


@register
@dataclass(frozen=True, slots=True, kw_only=True)
class Sigma(Op):
    """``dendrite.sigma``: sigma decoder, ``y[t] = Σ_{k ≤ t} x[k]`` (continued across runs when
    ``persistent``)."""

    OP: ClassVar[str] = "dendrite.sigma"
    persistent: bool = False


# ---------------------------------------------------------------------------------------- tensor


@register
@dataclass(frozen=True, slots=True, kw_only=True)
class Flatten(Op):
    """``tensor.flatten``: ``y[t] = reshape(x[t], [C·H·W])`` in C order (torch order)."""

    OP: ClassVar[str] = "tensor.flatten"

    def infer(self, ins: InSpec, g: Graph) -> tuple[Shape, str]:
        (x, dtype), = ins
        return (int(np.prod(x)),), dtype


@register
@dataclass(frozen=True, slots=True, kw_only=True)
class Reshape(Op):
    """``tensor.reshape``: ``y[t] = reshape(x[t], shape_to)`` in C order."""

    OP: ClassVar[str] = "tensor.reshape"
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

    ``y[t] = (x[t] − q(mean)) / 2^weight_exp`` with ``weight_exp = ceil(log2 std)``.
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


#: Neuron op names, for analyses that count neurons.
NEURON_OPS = frozenset(c.OP for c in (Cuba, Alif, RF, RFIz, Adrf, AdrfIz, SigmaDelta))
#: Weighted synapse op names.
SYNAPSE_OPS = frozenset(c.OP for c in (Dense, Conv, ConvTranspose, Pool, Unpool, KWTA))


# ------------------------------------------------------------------ appended by the hdf5 backend


@register
@dataclass(frozen=True, slots=True, kw_only=True)
class Average(Op):
    """``tensor.average``: slayer's ``Average`` block (hdf5 type ``average``).

    The flattened input is split into ``groups`` equal consecutive parts and each part is
    averaged: ``y_i[t] = mean(flat(x[t])[i·k : (i+1)·k])`` with ``k = size(x) / groups``.
    The output shape is ``(groups,)``.
    """

    OP: ClassVar[str] = "tensor.average"
    groups: int = 1

    def infer(self, ins: InSpec, g: Graph) -> tuple[Shape, str]:
        (x, dtype), = ins
        size = int(np.prod(x))
        if self.groups < 1 or size % self.groups:
            raise ShapeProblem(f"{size} inputs cannot be split into {self.groups} equal groups")
        return (self.groups,), dtype

    def check(self, g: Graph) -> Iterator[str]:
        yield from _ints_ok(self, "groups", 1)
