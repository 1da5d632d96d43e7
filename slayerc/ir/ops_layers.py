"""IR ops: graph inputs and outputs and the synapses (:mod:`slayerc.ir.ops` re-exports them)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import ClassVar

from slayerc.ir.core import Graph, Op, ParamRef, ShapeProblem, register
from slayerc.ir.op_rules import (
    InSpec,
    Shape,
    _array_problems,
    _conv_out,
    _convt_out,
    _ints_ok,
    _pair,
    _want_dtype,
    _want_rank,
    pool_is_per_channel,
)

# ------------------------------------------------------------------------------------------- io


@register
@dataclass(frozen=True, slots=True, kw_only=True)
class Input(Op):
    """``io.input``: a graph input.  ``y[t] = x[t]``; its ``shape`` is given, never inferred."""

    OP: ClassVar[str] = "io.input"
    SHAPE: ClassVar[str] = (
        "given, never inferred: the node's own ``shape`` (dtype ``f32`` unless given)"
    )
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
    """Shared fields of weighted synapses: ``weight``, the optional imaginary weight
    ``weight_imag`` (a complex synapse: the output is the pair ``(W x, W_imag x)``), ``mask``
    (multiplies the weight elementwise) and ``bias`` (added per output channel).

    ``sparse`` is a storage hint only (set by ``sparsify-masks`` for low-density weights):
    backends may store such a weight in a compressed form; the semantics are unchanged.
    ``quant_scale`` (training only, like a neuron's ``tau_grad``): training re-quantizes the
    weight on every forward to slayer's 8-bit grid of ``w_scale = quant_scale``,
    ``clamp(round(w·q/2)·2/q, −256/q, 254/q)`` with a straight-through gradient (the blocks'
    ``pre_hook_fx``); the stored weight is already on that grid, so inference is unchanged.
    """

    weight: ParamRef | None = None
    weight_imag: ParamRef | None = None
    mask: ParamRef | None = None
    bias: ParamRef | None = None
    sparse: bool = False
    quant_scale: int | None = None

    def _out_dtype(self, dtype: str) -> str:
        _want_dtype(dtype, "f32", self.OP)
        return "c32" if self.weight_imag is not None else "f32"

    def _weight_problems(self, g: Graph, shapes: tuple[Shape, ...]) -> list[str]:
        q = self.quant_scale
        if q is not None and (not isinstance(q, int) or isinstance(q, bool) or q <= 0):
            return [f"{self.describe()}: quant_scale must be a positive int, got {q!r}"]
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
    SHAPE: ClassVar[str] = (
        "``(O,)`` for an input ``(I,)`` and ``weight`` ``[O, I]``; ``c32`` with ``weight_imag``, "
        "else ``f32`` (the input must be ``f32``)"
    )

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
    """Shared fields of 2-D windowed synapses, each an (H, W) pair: ``stride`` (step between
    windows), ``padding`` (zeros added on both sides) and ``dilation`` (spacing of the kernel
    taps)."""

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
    SHAPE: ClassVar[str] = (
        "``(O, H', W')`` for an input ``(C, H, W)`` and ``weight`` ``[O, C/groups, kH, kW]``: "
        "``H' = ⌊(H + 2·pH − dH·(kH − 1) − 1) / sH⌋ + 1`` (``W'`` alike; ``p`` padding, ``d`` "
        "dilation, ``s`` stride), at least 1; ``c32`` with ``weight_imag``"
    )
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
    SHAPE: ClassVar[str] = (
        "``(O, H', W')`` for an input ``(C, H, W)`` and ``weight`` ``[C, O/groups, kH, kW]``: "
        "``H' = (H − 1)·sH − 2·pH + dH·(kH − 1) + 1`` (``W'`` alike), at least 1; ``c32`` with "
        "``weight_imag``"
    )
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


@dataclass(frozen=True, slots=True, kw_only=True)
class _SharedKernel(_Windowed):
    """Pool and unpool: one ``[1, 1, kH, kW]`` kernel shared by every channel; ``kernel`` is
    ``(kH, kW)`` and ``weight`` holds that kernel."""

    kernel: tuple[int, int] = (2, 2)
    stride: tuple[int, int] = (2, 2)

    def check(self, g: Graph) -> Iterator[str]:
        yield from self._geometry_problems()
        yield from _ints_ok(self, "kernel", 1)
        yield from self._weight_problems(g, ((1, 1, *_pair(self.kernel)),))


@register
@dataclass(frozen=True, slots=True, kw_only=True)
class Pool(_SharedKernel):
    """``synapse.pool``: slayer's sum pool, one ``[1, 1, kH, kW]`` kernel shared by all channels.

    Each channel is zero-padded at the bottom/right by ``H mod kH`` rows and ``W mod kW`` columns
    (the remainder, as lava-dl does), then ``y[t] = conv2d(x_c[t], W)`` with the given stride.
    ``stride`` defaults to the kernel size when built by the frontend.  lava-dl computes it on
    the channels stacked into one tall image; geometries where a window would then read two
    channels are refused by shape inference (:func:`pool_is_per_channel`).
    """

    OP: ClassVar[str] = "synapse.pool"
    SHAPE: ClassVar[str] = (
        "``(C, H', W')`` for an input ``(C, H, W)``: "
        "``H' = ⌊(H + H mod kH + 2·pH − dH·(kH − 1) − 1) / sH⌋ + 1`` (``W'`` alike; slayer pads "
        "the remainder ``H mod kH``), at least 1; the windows must stay within one channel"
    )

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



@register
@dataclass(frozen=True, slots=True, kw_only=True)
class Unpool(_SharedKernel):
    """``synapse.unpool``: the transpose of ``synapse.pool`` (each channel, shared kernel).

    ``y[t] = conv_transpose2d(x_c[t], W)`` with ``W`` of shape ``[1, 1, kH, kW]``.
    """

    OP: ClassVar[str] = "synapse.unpool"
    SHAPE: ClassVar[str] = (
        "``(C, H', W')`` for an input ``(C, H, W)``: ``H' = (H − 1)·sH − 2·pH + dH·(kH − 1) + 1`` "
        "(``W'`` alike), at least 1"
    )

    def infer(self, ins: InSpec, g: Graph) -> tuple[Shape, str]:
        (x, dtype), = ins
        _want_rank(x, (3,), "synapse.unpool")
        k, s = _pair(self.kernel), _pair(self.stride)
        p, d = _pair(self.padding), _pair(self.dilation)
        hw = [_convt_out(x[i + 1], k[i], s[i], p[i], d[i]) for i in range(2)]
        if min(hw) < 1:
            raise ShapeProblem(f"padding {list(p)} leaves no output")
        return (x[0], hw[0], hw[1]), self._out_dtype(dtype)



@register
@dataclass(frozen=True, slots=True, kw_only=True)
class KWTA(Op):
    """``synapse.kwta``: k-winner-take-all lateral connection of a layer of N neurons.

    ``y[t] = q(R) x[t] + q(b)`` with ``R = (1 + a) I − 1`` (``a = self_excitation`` on the
    diagonal, −1 elsewhere) and ``b = θ (N − 2K) / N`` (``K = num_winners``, ``θ = threshold``,
    the layer's neuron threshold); ``q`` is the 8-bit weight quantizer at ``scale``.
    It reads the layer's own spikes through an ``axon.shift`` (a cycle).
    """

    OP: ClassVar[str] = "synapse.kwta"
    SHAPE: ClassVar[str] = (
        "the input's ``(N,)`` (``f32``, 1-d, with ``1 ≤ num_winners ≤ N``)"
    )
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
