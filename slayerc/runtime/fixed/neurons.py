"""Fixed-point neuron kernels: one class per neuron op, stepped over time, vectorised over neurons.

Integers are held in integer-valued float64 arrays: every state is below 2**24 (LIF, RF) or far
below 2**53 (sigma-delta), and every decay is a dyadic ``D/4096``, so ``trunc(y·(4096−D)/4096)``
is exactly Lava's ``sign(p)·(|p| >> 12)`` with ``p = y·(4096−D)``; float64 numpy ops are about
twice as cheap per step as int64 ones (no abs/shift/sign round trip).

Each kernel declares ``STATE_EXP``: its input ``a`` arrives as an integer in units of
``2**-STATE_EXP`` (slayer units).  CUBA/ALIF/RF keep their state in 2^12 units (Lava's
``a_in << 6`` on a 2^6-unit synaptic input), the sigma-delta family in 2^18 units (Lava's
``spike_exp + state_exp`` scaling).  ``out_exp`` is the exponent of what the kernel emits:
0 for binary spikes, 12 for graded payloads and sigma-delta messages, 18 for the sigma output.
Equations and the provenance of each rule are in ``docs/fixed-point.md``.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from slayerc.errors import RuntimeSimError
from slayerc.ir.core import Graph, Op
from slayerc.runtime.fixed.quant import P_SCALE, W_SCALE, grid, lava_rf_decays, per_neuron

STATE_LIMIT = float((1 << 23) - 1)
"""LIF voltage and RF states are clipped to ±(2**23 − 1)."""
WRAP = float(1 << 23)
"""LIF current wraps at 24 bits (Lava's two-sided ``np.where`` wrap)."""


def _decay_factor(g: Graph, node: Op, attr: str, shape: tuple[int, ...],
                  clamp: bool = True) -> np.ndarray | float:
    """``(4096 − D)/4096`` for the decay attribute (exact dyadic)."""
    ints = grid(g, node, attr, P_SCALE, 0, P_SCALE if clamp else None)
    return per_neuron((P_SCALE - ints) / P_SCALE, shape)


def _threshold(g: Graph, node: Op, attr: str, shape: tuple[int, ...],
               state_shift: int) -> np.ndarray | float:
    """A threshold (×64 integer, ``vThMant``) moved to state units: ``vThMant << shift``."""
    return per_neuron(grid(g, node, attr, W_SCALE, 0) * (1 << state_shift), shape)


def _bias(g: Graph, node: Op, shape: tuple[int, ...], state_shift: int) -> np.ndarray | float:
    if getattr(node, "bias", None) is None:
        return 0.0
    return per_neuron(grid(g, node, "bias", W_SCALE) * (1 << state_shift), shape)


def _wrap24(u: np.ndarray) -> None:
    """Lava LIF's current wrap: ``u > 2^23 → u − 2^24``, then ``u <= −2^23 → u + 2^24``."""
    if u.size and (u.max() > WRAP or u.min() <= -WRAP):
        u[u > WRAP] -= 2 * WRAP
        u[u <= -WRAP] += 2 * WRAP


class NeuronKernel:
    """Base class: reads parameters at construction, ``start(n)`` resets, ``step`` advances.

    ``STATE`` names the attributes that hold the state (``[N, *shape]`` arrays that ``start``
    allocates): what carries from one chunk of steps to the next, and what a compiled loop
    (:mod:`~slayerc.runtime.fixed.fast`) reads and writes back.
    """

    STATE_EXP: ClassVar[int] = 12
    STATE: ClassVar[tuple[str, ...]] = ()
    COMPLEX: ClassVar[bool] = False

    def __init__(self, g: Graph, node: Op):
        assert node.shape is not None, node.describe()
        self.node, self.shape = node, tuple(node.shape)
        self.graded = bool(getattr(node, "graded", False))
        self.out_exp = 12 if self.graded else 0

    def prepare(self, a: np.ndarray) -> None:
        """See the input sequence (or the next chunk of it) before stepping it, from the
        current state (to skip impossible checks)."""

    def start(self, n: int) -> None:
        """Allocate the state for a batch of ``n`` samples, all at rest."""
        raise NotImplementedError

    def step(self, a: np.ndarray, b: np.ndarray | None) -> np.ndarray:
        """One time step: input ``a`` (and ``b``, imaginary) in state units → output."""
        raise NotImplementedError

    def run(self, a: np.ndarray, b: np.ndarray | None, out: np.ndarray) -> None:
        """Step through a whole sequence ``a[t]`` (time-major), writing ``out[t]``."""
        for t in range(a.shape[0]):
            out[t] = self.step(a[t], None if b is None else b[t])

    def zeros(self, n: int) -> np.ndarray:
        """A zero state of shape ``[n, *shape]``."""
        return np.zeros((n, *self.shape))

    def emit(self, spike: np.ndarray, payload: np.ndarray) -> np.ndarray:
        """Binary spikes, or the payload where it spiked (graded)."""
        return np.where(spike, payload, 0.0) if self.graded else spike


class Cuba(NeuronKernel):
    """Lava fixed-point LIF (``neuron.cuba``): 24-bit current wrap, voltage clip, strict ``>``.

    Current and voltage live in one ``[2, N, *shape]`` array so that one multiply and one trunc
    decay both; the wrap check is skipped when :meth:`prepare` proves the current cannot reach
    2^23, and the upper voltage clip is skipped for binary spikes when the threshold is below
    it (such a voltage spikes and resets to 0 anyway).
    """

    STATE: ClassVar[tuple[str, ...]] = ("u", "v")

    def __init__(self, g: Graph, node: Op):
        super().__init__(g, node)
        self.fu = _decay_factor(g, node, "current_decay", self.shape)
        self.fv = _decay_factor(g, node, "voltage_decay", self.shape)
        self.f = np.stack([np.broadcast_to(self.fu, self.shape),
                           np.broadcast_to(self.fv, self.shape)])[:, None]
        self.vth = _threshold(g, node, "threshold", self.shape, 6)
        self.bias = _bias(g, node, self.shape, 6)
        self.has_bias = getattr(node, "bias", None) is not None
        self.full_clip = self.graded or float(np.max(self.vth)) >= STATE_LIMIT
        self.may_wrap = True

    def prepare(self, a: np.ndarray) -> None:
        """Decide from the input (chunk) and the current whether the current can ever wrap.

        With ``|u| ≤ B`` now and ``|a| ≤ amax``, ``|u|`` stays below ``max(B, amax/(1 − fu))``
        (or grows by at most ``amax`` per step when the current does not decay).
        """
        if not a.size:
            return
        amax, fu = float(np.abs(a).max()), float(np.max(self.fu))
        u = getattr(self, "u", None)
        now = float(np.abs(u).max(initial=0.0)) if u is not None and u.shape[:1] == a.shape[1:2] \
            else 0.0
        bound = now + amax * a.shape[0] if fu >= 1 else max(now, amax / (1 - fu))
        self.may_wrap = bound >= WRAP

    def start(self, n: int) -> None:
        self.uv = np.zeros((2, n, *self.shape))
        self.u, self.v = self.uv[0], self.uv[1]

    def integrate(self, a: np.ndarray) -> np.ndarray:
        """Current then voltage update (shared with ALIF); returns the voltage."""
        uv, u, v = self.uv, self.u, self.v
        np.multiply(uv, self.f, out=uv)
        np.trunc(uv, out=uv)
        u += a
        if self.may_wrap:
            _wrap24(u)
        v += u
        if self.has_bias:
            v += self.bias
        if self.full_clip:
            np.clip(v, -STATE_LIMIT, STATE_LIMIT, out=v)
        else:
            np.maximum(v, -STATE_LIMIT, out=v)
        return v

    def step(self, a: np.ndarray, b: np.ndarray | None) -> np.ndarray:
        v = self.integrate(a)
        spike = v > self.vth
        out = self.emit(spike, v)
        np.copyto(v, 0.0, where=spike)
        return out

    def run(self, a: np.ndarray, b: np.ndarray | None, out: np.ndarray) -> None:
        """The binary-spike sequence loop with the per-step calls inlined (the hot path)."""
        if self.graded or self.has_bias or self.may_wrap or self.full_clip:
            super().run(a, b, out)
            return
        uv, u, v, f, vth = self.uv, self.u, self.v, self.f, self.vth
        mul, trunc, maximum, greater, copyto = (np.multiply, np.trunc, np.maximum, np.greater,
                                                np.copyto)
        for t in range(a.shape[0]):
            mul(uv, f, out=uv)
            trunc(uv, out=uv)
            u += a[t]
            v += u
            maximum(v, -STATE_LIMIT, out=v)
            s = out[t]
            greater(v, vth, out=s)
            copyto(v, 0.0, where=s > 0)


class _Adaptive:
    """ALIF/ADRF threshold θ and refractory r (slayer ``adaptive_threshold``, integer domain)."""

    th0: np.ndarray | float
    th: np.ndarray
    r: np.ndarray

    def adaptive_params(self, g: Graph, node: Op, shape: tuple[int, ...]) -> None:
        """Read θ0, θ step and the two (unclamped) decays."""
        self.th0 = _threshold(g, node, "threshold", shape, 6)
        self.th_step = _threshold(g, node, "threshold_step", shape, 6)
        self.fth = _decay_factor(g, node, "threshold_decay", shape, clamp=False)
        self.fr = _decay_factor(g, node, "refractory_decay", shape, clamp=False)

    def adaptive_start(self, zeros: np.ndarray) -> None:
        """θ starts at θ0, r at 0."""
        self.th = zeros + self.th0
        self.r = zeros.copy()

    def adapt(self) -> np.ndarray:
        """Decay θ towards θ0 and r towards 0; return the effective threshold θ + r."""
        self.r = np.trunc(self.r * self.fr)
        self.th = np.trunc((self.th - self.th0) * self.fth) + self.th0
        return self.th + self.r

    def after_spike(self, spike: np.ndarray) -> None:
        """On a spike: r += 2θ, θ += θ_step (θ before its step)."""
        self.r = self.r + np.where(spike, 2 * self.th, 0.0)
        self.th = self.th + np.where(spike, self.th_step, 0.0)


class Alif(Cuba, _Adaptive):
    """``neuron.alif``: CUBA current/voltage (no voltage reset) with adaptive θ and r, ``≥``."""

    STATE = ("u", "v", "th", "r")

    def __init__(self, g: Graph, node: Op):
        super().__init__(g, node)
        self.full_clip = True  # the voltage never resets, so the clip always matters
        self.adaptive_params(g, node, self.shape)

    def start(self, n: int) -> None:
        super().start(n)
        self.adaptive_start(self.zeros(n))

    def step(self, a: np.ndarray, b: np.ndarray | None) -> np.ndarray:
        v = self.integrate(a)
        spike = v >= self.adapt()
        self.after_spike(spike)
        return self.emit(spike, v)


class _Resonator(NeuronKernel):
    """Shared resonator: ``re' = tz(c·re) − tz(s·im) + a``, ``im' = tz(s·re) + tz(c·im) + b``."""

    COMPLEX = True
    LAVA_DECAYS: ClassVar[bool] = True
    STATE: ClassVar[tuple[str, ...]] = ("re", "im")

    def __init__(self, g: Graph, node: Op):
        super().__init__(g, node)
        if getattr(node, "bias", None) is not None:
            raise RuntimeSimError(f"{node.describe()}: a bias on a resonator neuron is not "
                                  "supported (netx's ComplexDense ignores it)")
        sin_i = grid(g, node, "sin_decay", P_SCALE, -P_SCALE, P_SCALE)
        cos_i = grid(g, node, "cos_decay", P_SCALE, -P_SCALE, P_SCALE)
        if self.LAVA_DECAYS:
            sin_i, cos_i = lava_rf_decays(sin_i, cos_i)
        self.sn = per_neuron(sin_i / P_SCALE, self.shape)
        self.cs = per_neuron(cos_i / P_SCALE, self.shape)
        self.vth = _threshold(g, node, "threshold", self.shape, 6)

    def start(self, n: int) -> None:
        self.re, self.im = self.zeros(n), self.zeros(n)

    def resonate(self, a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """New (re, im), clipped to ±(2^23 − 1); the old state stays in ``self``."""
        re, im = self.re, self.im
        new_re = np.trunc(re * self.cs) - np.trunc(im * self.sn) + a
        new_im = np.trunc(re * self.sn) + np.trunc(im * self.cs) + b
        np.clip(new_re, -STATE_LIMIT, STATE_LIMIT, out=new_re)
        np.clip(new_im, -STATE_LIMIT, STATE_LIMIT, out=new_im)
        return new_re, new_im


class RF(_Resonator):
    """``neuron.rf`` (Lava ``RF`` fixed_pt): phase spike ``re ≥ θ ∧ im ≥ 0 ∧ im_prev < 0``."""

    def step(self, a: np.ndarray, b: np.ndarray | None) -> np.ndarray:
        new_re, new_im = self.resonate(a, b)
        spike = (new_re >= self.vth) & (new_im >= 0) & (self.im < 0)
        self.re, self.im = new_re, new_im
        return self.emit(spike, new_re)


class RFIz(_Resonator):
    """``neuron.rf_iz`` (Lava ``RF_IZ`` fixed_pt): ``im ≥ θ``, then ``re = 0, im = θ − 1``."""

    def step(self, a: np.ndarray, b: np.ndarray | None) -> np.ndarray:
        new_re, new_im = self.resonate(a, b)
        spike = new_im >= self.vth
        out = self.emit(spike, new_im)
        self.re = np.where(spike, 0.0, new_re)
        self.im = np.where(spike, self.vth - 1, new_im)
        return out


class Adrf(_Resonator, _Adaptive):
    """``neuron.adrf``: resonator without reset, phase spike against θ + r (slayer's decays)."""

    LAVA_DECAYS = False
    STATE = ("re", "im", "th", "r")

    def __init__(self, g: Graph, node: Op):
        super().__init__(g, node)
        self.adaptive_params(g, node, self.shape)

    def start(self, n: int) -> None:
        super().start(n)
        self.adaptive_start(self.zeros(n))

    def fire(self, new_re: np.ndarray, new_im: np.ndarray, limit: np.ndarray) -> np.ndarray:
        """The spike condition of this model."""
        return (new_re >= limit) & (new_im >= 0) & (self.im < 0)

    def step(self, a: np.ndarray, b: np.ndarray | None) -> np.ndarray:
        new_re, new_im = self.resonate(a, b)
        spike = self.fire(new_re, new_im, self.adapt())
        self.after_spike(spike)
        out = self.emit(spike, new_re)
        self.re, self.im = new_re, new_im
        return out


class AdrfIz(Adrf):
    """``neuron.adrf_iz``: resonator without reset, ``im ≥ θ + r`` (slayer's decays)."""

    def fire(self, new_re: np.ndarray, new_im: np.ndarray, limit: np.ndarray) -> np.ndarray:
        return new_im >= limit


class SigmaDelta(NeuronKernel):
    """Lava ``SigmaDelta`` fixed_pt (spike_exp = state_exp = 6): state in 2^18 units."""

    STATE_EXP = 18
    STATE: ClassVar[tuple[str, ...]] = ("sigma", "act", "residue", "error")
    ACT_MODES: ClassVar[dict[str, bool]] = {"relu": True, "identity": False}

    def __init__(self, g: Graph, node: Op):
        super().__init__(g, node)
        self.out_exp = 12
        activation = getattr(node, "activation", "relu")
        if activation not in self.ACT_MODES:
            raise RuntimeSimError(f"{node.describe()}: activation {activation!r} has no "
                                  "fixed-point form (Lava has relu and identity)")
        self.relu = self.ACT_MODES[activation]
        self.vth = _threshold(g, node, "threshold", self.shape, 12)
        self.bias = _bias(g, node, self.shape, 12)
        self.cum_error = bool(getattr(node, "cum_error", False))

    def start(self, n: int) -> None:
        self.sigma, self.act = self.zeros(n), self.zeros(n)
        self.residue, self.error = self.zeros(n), self.zeros(n)

    def activation(self, a: np.ndarray) -> np.ndarray:
        """σ += a; act = relu(σ + bias)."""
        self.sigma += a
        act = self.sigma + self.bias
        return np.maximum(act, 0.0, out=act) if self.relu else act

    def step(self, a: np.ndarray, b: np.ndarray | None) -> np.ndarray:
        act = self.activation(a)
        delta = act - self.act + self.residue
        if self.cum_error:
            self.error += delta
            s = np.where(np.abs(self.error) >= self.vth, delta, 0.0)
            np.copyto(self.error, 0.0, where=s != 0)
        else:
            s = np.where(np.abs(delta) >= self.vth, delta, 0.0)
        self.residue = delta - s
        self.act = act
        return np.floor(s / 64)


class Delta(SigmaDelta):
    """Lava ``Delta`` fixed_pt (``axon.delta``, the SDNN input layer): no sigma, no activation."""

    def activation(self, a: np.ndarray) -> np.ndarray:
        return a


class Sigma(NeuronKernel):
    """Lava ``Sigma`` fixed_pt (``dendrite.sigma``): ``σ += a``, output σ in 2^18 units."""

    STATE_EXP = 18
    STATE: ClassVar[tuple[str, ...]] = ("sigma",)

    def __init__(self, g: Graph, node: Op):
        super().__init__(g, node)
        self.out_exp = 18

    def start(self, n: int) -> None:
        self.sigma = self.zeros(n)

    def step(self, a: np.ndarray, b: np.ndarray | None) -> np.ndarray:
        self.sigma = self.sigma + a
        return self.sigma


