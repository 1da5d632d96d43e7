"""IR ops: neurons, axons and dendrites (:mod:`slayerc.ir.ops` re-exports them)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from slayerc.ir.core import Graph, Op, ParamRef, ScalarOrParam, register
from slayerc.ir.op_rules import (
    InSpec,
    Shape,
    _ints_ok,
    _scalar_or_param,
    _want_dtype,
)

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
    SHAPE: ClassVar[str] = (
        "the input's shape, dtype ``f32`` (the input must be ``f32``, or ``c32`` for the "
        "resonators, which take a complex pair)"
    )
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
    ``exact_decays``: the float dynamics use the decays as given instead of rounding them to
    12 bits as slayer does (NIR's continuous-time neurons, e.g. β = 0.9); the fixed-point
    runtime and ``legalize-quant`` always round them.
    """

    OP: ClassVar[str] = "neuron.cuba"
    PARAMS: ClassVar = _LIF_PARAMS
    current_decay: ScalarOrParam = 0.0
    voltage_decay: ScalarOrParam = 0.0
    exact_decays: bool = False

    def check(self, g: Graph) -> Iterator[str]:
        yield from _Neuron.check(self, g)
        yield from _exact_flag(self)


@register
@dataclass(frozen=True, slots=True, kw_only=True)
class Alif(_Neuron):
    """``neuron.alif``: adaptive LIF with soft refractory.

    ``u, v`` as CUBA but ``v`` never resets; ``θ[t] = (1 − αθ)(θ[t−1] − θ0) + θ0``,
    ``r[t] = (1 − αr) r[t−1]``; ``s[t] = v[t] ≥ θ[t] + r[t]``; on a spike ``θ += θ_step`` and
    ``r += 2 θ[t]``.  ``αu = current_decay``, ``αv = voltage_decay``, ``θ0 = threshold``,
    ``αθ = threshold_decay``, ``αr = refractory_decay``, ``θ_step = threshold_step``.
    """

    OP: ClassVar[str] = "neuron.alif"
    PARAMS: ClassVar = _LIF_PARAMS + _ADAPT_PARAMS
    current_decay: ScalarOrParam = 0.0
    voltage_decay: ScalarOrParam = 0.0
    threshold_step: ScalarOrParam = 0.0
    threshold_decay: ScalarOrParam = 0.0
    refractory_decay: ScalarOrParam = 0.0


@dataclass(frozen=True, slots=True, kw_only=True)
class _Resonator(_Neuron):
    """Resonator neurons: complex input, ``sin_decay``/``cos_decay`` (see ``neuron.rf``)."""

    COMPLEX_IN: ClassVar[bool] = True
    PARAMS: ClassVar = _RF_PARAMS
    sin_decay: ScalarOrParam = 0.0
    cos_decay: ScalarOrParam = 1.0


@dataclass(frozen=True, slots=True, kw_only=True)
class _AdaptiveResonator(_Resonator):
    """Resonators with an adaptive threshold and refractory state, as ``neuron.alif``:
    ``θ_step = threshold_step``, ``αθ = threshold_decay``, ``αr = refractory_decay``."""

    PARAMS: ClassVar = _RF_PARAMS + _ADAPT_PARAMS
    threshold_step: ScalarOrParam = 0.0
    threshold_decay: ScalarOrParam = 0.0
    refractory_decay: ScalarOrParam = 0.0


@register
@dataclass(frozen=True, slots=True, kw_only=True)
class RF(_Resonator):
    """``neuron.rf``: resonate-and-fire with phase spike (complex input ``(x_re, x_im)``).

    ``re[t] = c re[t−1] − s im[t−1] + x_re[t]``; ``im[t] = s re[t−1] + c im[t−1] + x_im[t]``
    with ``s = sin_decay``, ``c = cos_decay`` (each ``(1 − α)·sin/cos(2π/period)``);
    ``spike[t] = re[t] ≥ θ ∧ im[t−1] < 0 ∧ im[t] ≥ 0``.
    """

    OP: ClassVar[str] = "neuron.rf"


@register
@dataclass(frozen=True, slots=True, kw_only=True)
class RFIz(_Resonator):
    """``neuron.rf_iz``: resonate-and-fire, Izhikevich spike.

    Resonator as ``neuron.rf``; ``spike[t] = im[t] ≥ θ``, then ``re = 0``, ``im = θ − 1/S``.
    """

    OP: ClassVar[str] = "neuron.rf_iz"


@register
@dataclass(frozen=True, slots=True, kw_only=True)
class Adrf(_AdaptiveResonator):
    """``neuron.adrf``: resonator (no reset) with adaptive threshold and refractory, phase spike.

    ``spike[t] = re[t] ≥ θ[t] + r[t] ∧ im[t−1] < 0 ∧ im[t] ≥ 0``; θ, r as ``neuron.alif``.
    """

    OP: ClassVar[str] = "neuron.adrf"


@register
@dataclass(frozen=True, slots=True, kw_only=True)
class AdrfIz(_AdaptiveResonator):
    """``neuron.adrf_iz``: resonator (no reset) with adaptive threshold, Izhikevich spike.

    ``spike[t] = im[t] ≥ θ[t] + r[t]``; on a spike ``θ += θ_step``, ``r += 2 θ[t]``.
    """

    OP: ClassVar[str] = "neuron.adrf_iz"


ACTIVATIONS = ("relu", "identity", "sigmoid", "tanh")


@register
@dataclass(frozen=True, slots=True, kw_only=True)
class SigmaDelta(_Neuron):
    """``neuron.sigma_delta``: sigma decoder, activation, delta encoder.

    ``σ[t] = σ[t−1] + x[t]``; ``a[t] = act(σ[t] + bias)``; ``Δ = a[t] − a[t−1] + res``;
    ``y[t] = Δ if |Δ| ≥ θ else 0`` (floor-quantized to ``1/(scale·64)``), ``res = Δ − y[t]``.
    ``cum_error`` accumulates the error for the send decision as lava-dl's Delta does;
    ``act = activation``, one of ``relu``, ``identity``, ``sigmoid``, ``tanh``.
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
class LI(Op):
    """``neuron.li``: current-based leaky integrator, non-spiking; its output is the voltage.

    ``u[t] = (1 − αu) u[t−1] + x[t]``; ``v[t] = (1 − αv) v[t−1] + u[t] + bias``; ``y[t] = v[t]``
    (no threshold, no spike, no reset), with ``αu = current_decay``, ``αv = voltage_decay``.
    The two integrators are slayer's (lava-dl's ``leaky_integrator``, ``neuron.cuba``'s without
    its spike): states on the integer grid ``1/(64·scale)``, decays on 12 bits, each decay
    truncated toward zero.  ``current_decay = 1`` is NIR's ``LI`` (the input drives the voltage
    directly), otherwise NIR's ``CubaLI``.  No netx neuron type holds it (a netlist carries
    spikes): ``slayerc``'s own runtimes, ``.sir`` and ``.nir`` only.  ``persistent`` keeps
    ``u`` and ``v`` from one run to the next (streaming), as for the spiking neurons.
    ``exact_decays``: as ``neuron.cuba``'s (the float dynamics keep the decays unrounded).
    """

    OP: ClassVar[str] = "neuron.li"
    SHAPE: ClassVar[str] = "the input's shape, dtype ``f32`` (the input must be ``f32``)"
    #: (attribute, lower bound, upper bound, optional), as ``_Neuron.PARAMS``.
    PARAMS: ClassVar = _LIF_PARAMS
    current_decay: ScalarOrParam = 1.0
    voltage_decay: ScalarOrParam = 0.0
    bias: ScalarOrParam | None = None
    scale: int = 64
    persistent: bool = False
    exact_decays: bool = False

    def infer(self, ins: InSpec, g: Graph) -> tuple[Shape, str]:
        (x, dtype), = ins
        _want_dtype(dtype, "f32", self.OP)
        return x, "f32"

    def check(self, g: Graph) -> Iterator[str]:
        yield from _scalar_or_param(g, self, "bias", optional=True)
        for attr, lo, hi, optional in self.PARAMS:
            yield from _scalar_or_param(g, self, attr, lo, hi, optional)
        if not isinstance(self.scale, int) or self.scale <= 0:
            yield f"{self.describe()}: scale must be a positive int, got {self.scale!r}"
        yield from _exact_flag(self)


def _exact_flag(node: Op) -> Iterator[str]:
    flag = getattr(node, "exact_decays", False)
    if not isinstance(flag, bool):
        yield f"{node.describe()}: exact_decays must be true or false, got {flag!r}"


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
    floor-quantized to ``1/(scale·64)``.  ``θ = threshold``; ``cum_error`` accumulates the error
    for the send decision as lava-dl's Delta does; ``persistent`` keeps ``x[t−1]`` and ``res``
    from one run to the next (streaming).
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
