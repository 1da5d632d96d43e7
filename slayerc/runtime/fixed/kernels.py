"""Fixed-point kernels of the non-neuron ops, and the dispatch table keyed by ``OP``.

A value on an edge is a :class:`Sig`: an integer-valued float64 array (``re``, plus ``im`` for a
complex synapse output) in units of ``2**-e`` slayer units.  ``e`` is 0 for binary spikes (and
integer payloads fed to a first synapse), 6 for synaptic currents from spikes (weights ×64),
12 for graded payloads and sigma-delta messages, 18 for currents from messages and for the sigma
output; ``None`` marks the raw float input (slayer units) before the input transform.

Arrays are time-major: ``[T, N, *shape]`` for a whole sequence, ``[N, *shape]`` for one step in a
recurrent loop.  Stateless kernels (synapses, tensor ops) work on either, because they only use
the trailing per-sample axes.  Neuron kernels (``neurons.py``) are stepped; delays shift in time.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from slayerc.errors import RuntimeSimError
from slayerc.ir.core import Graph, Op, ParamRef
from slayerc.runtime import neurons as families
from slayerc.runtime.fixed import fast
from slayerc.runtime.fixed.neurons import NeuronKernel
from slayerc.runtime.fixed.quant import W_SCALE, DenseWeights, grid, netx_dense_weights

W_LO, W_HI = -256, 255
"""Signed 8-bit weight range of a Loihi synapse, in netx integers."""


@dataclass
class Sig:
    """An integer signal (see the module docstring)."""

    re: np.ndarray
    im: np.ndarray | None = None
    e: int | None = 0

    def at(self, t: int) -> Sig:
        """Step ``t`` of a sequence."""
        return Sig(self.re[t], None if self.im is None else self.im[t], self.e)


def rescale(arr: np.ndarray, e: int | None, target: int) -> np.ndarray:
    """``arr`` (units ``2**-e``) in units of ``2**-target``: exact left shift or ``tz`` right shift.

    The raw input (``e is None``) first goes through netx's default input transform ``x·64``.
    """
    if e is None:
        arr, e = np.rint(arr * W_SCALE), 6
    if target >= e:
        return arr * float(1 << (target - e)) if target > e else arr
    return np.trunc(arr / float(1 << (e - target)))


def wrap(arr: np.ndarray, bits: int) -> np.ndarray:
    """Two's-complement wrap to ``bits`` signed bits (Lava's ``signed_clamp``, int32 overflow)."""
    half = float(1 << (bits - 1))
    lim = arr.max(initial=0.0) >= half or arr.min(initial=0.0) < -half
    return np.mod(arr + half, 2 * half) - half if lim else arr


def _spikes_in(node: Op, x: Sig) -> tuple[np.ndarray, int]:
    """A synapse's input array and exponent; the raw input must hold integers (spikes)."""
    if x.e is not None:
        return x.re, x.e
    if not np.array_equal(x.re, np.rint(x.re)):
        raise RuntimeSimError(f"{node.describe()}: the input feeds this synapse directly, so it "
                              "must hold integer spikes or payloads (netx sends it to the first "
                              "synapse); graded values need an input layer")
    return x.re, 0


def _weights(g: Graph, node: Op, attr: str) -> np.ndarray:
    w = grid(g, node, attr, W_SCALE, W_LO, W_HI)
    if getattr(node, "mask", None) is not None:
        w = w * np.asarray(g.param(node.mask), dtype=np.float64)
    return w


class Kernel:
    """A stateless op: ``apply`` maps input signals to the output signal (any leading axes)."""

    ANY_DTYPE: bool = False
    """Whether the op works on any real dtype (a reshape): a fused layer's uint8 spikes
    then pass through it without the float64 copy the arithmetic kernels need."""

    def __init__(self, g: Graph, node: Op, ctx: dict[str, Any]):
        self.node = node
        self.rank = len(node.shape) if node.shape is not None else 0

    def apply(self, ins: list[Sig]) -> Sig:
        """The output for inputs of matching leading axes."""
        raise NotImplementedError

    def sequence(self, ins: list[Sig], steps: int, n: int, carry: bool = False) -> Sig:
        """The output sequence; ``carry``: a later chunk of a run, continuing from the state
        the previous chunk left (stateful kernels only; from rest otherwise)."""
        return self.apply(ins)

    def start(self, n: int) -> None:
        """Reset any state (none here)."""

    def step(self, ins: list[Sig]) -> Sig:
        """One step inside a recurrent loop."""
        return self.apply(ins)


class Identity(Kernel):
    """``io.output``, ``neuron.dropout`` (inference): the input unchanged."""

    ANY_DTYPE = True

    def apply(self, ins: list[Sig]) -> Sig:
        return ins[0]


@dataclass(frozen=True)
class _Matrix:
    """Dense weights as contiguous ``[in, out]`` BLAS operands (float32 only when exact)."""

    weight: np.ndarray
    weight_exp: int
    f32: np.ndarray | None


def _as_float(w: DenseWeights) -> _Matrix:
    wt = np.ascontiguousarray(w.weight.T, dtype=np.float64)
    exact32 = wt.size == 0 or float(np.abs(wt).sum(axis=0).max()) < 2.0 ** 24
    return _Matrix(wt, w.weight_exp, wt.astype(np.float32) if exact32 else None)


class Dense(Kernel):
    """``synapse.dense`` as netx's ``Dense``/``ComplexDense``: Lava's weights, ``>> -weight_exp``.

    Graded inputs accumulate in int32 (Lava's ``weights.dot(s_in)``) before the shift.
    """

    def __init__(self, g: Graph, node: Op, ctx: dict[str, Any]):
        super().__init__(g, node, ctx)
        joint = ctx.get("joint", {})
        self.re = _as_float(joint.get(node.name) or netx_dense_weights(_weights(g, node, "weight")))
        self.im = None
        if getattr(node, "weight_imag", None) is not None:
            self.im = _as_float(netx_dense_weights(_weights(g, node, "weight_imag")))
        self.bias = None
        if getattr(node, "bias", None) is not None:
            self.bias = grid(g, node, "bias", W_SCALE)

    def mac(self, x: np.ndarray, graded: bool, w: _Matrix) -> np.ndarray:
        """Lava's accumulate and weight-exponent shift for one weight matrix."""
        # One 2-D BLAS product (numpy's stacked 3-D matmul is ~30x slower).  float64 is exact
        # while |acc| < 2**53; float32 (twice as fast) while every partial sum is < 2**24,
        # which the column sums of |w| bound for spikes in {0, 1}.
        flat = x.reshape(-1, x.shape[-1])
        spikes = not graded and w.f32 is not None and flat.size and fast.within_unit(flat)
        acc = fast.matmul(flat, w.f32 if spikes else w.weight)  # float32 sums exact for spikes
        if acc is not None:
            pass
        elif not graded and w.f32 is not None and flat.size and float(np.abs(flat).max()) <= 1:
            acc = (flat.astype(np.float32) @ w.f32).astype(np.float64)
        else:
            acc = flat @ w.weight
        acc = acc.reshape(x.shape[:-1] + w.weight.shape[1:])
        if graded:
            acc = wrap(acc, 32)
        if w.weight_exp > 0:
            return acc * float(1 << w.weight_exp)
        return np.floor(acc / float(1 << -w.weight_exp)) if w.weight_exp else acc

    def apply(self, ins: list[Sig]) -> Sig:
        x, e = _spikes_in(self.node, ins[0])
        graded = e > 0
        re = self.mac(x, graded, self.re)
        if self.bias is not None:
            re = re + self.bias * float(1 << e)
        im = None if self.im is None else self.mac(x, graded, self.im)
        return Sig(re, im, e + 6)


def joint_dense_weights(g: Graph) -> dict[str, DenseWeights]:
    """netx optimises ``[W | W_rec]`` of a ``dense_rec`` layer jointly; so do we.

    Real dense synapses summed by one ``tensor.add`` share one exponent.
    """
    out: dict[str, DenseWeights] = {}
    for node in g:
        if node.OP != "tensor.add":
            continue
        syn = [g[i] for i in node.inputs if g[i].OP == "synapse.dense"
               and getattr(g[i], "weight_imag", None) is None]
        if len(syn) < 2:
            continue
        mats = [_weights(g, s, "weight") for s in syn]
        joint = netx_dense_weights(np.concatenate(mats, axis=1))
        cuts = np.cumsum([m.shape[1] for m in mats])[:-1]
        for s, part in zip(syn, np.split(joint.weight, cuts, axis=1)):
            out[s.name] = DenseWeights(part, joint.weight_exp)
    return out


def _frames(x: np.ndarray, rank: int) -> tuple[torch.Tensor, tuple[int, ...]]:
    """Leading axes folded into one batch axis, as a float64 torch tensor."""
    lead = x.shape[: x.ndim - rank]
    return torch.from_numpy(np.ascontiguousarray(x).reshape((-1, *x.shape[x.ndim - rank:]))), lead


F32_EXACT = float(1 << 24)
"""float32 holds every integer of magnitude below 2^24 exactly."""


CONV_THREADS = 1
"""torch threads for the convolutions (0: leave torch's setting).  The products of one group
of samples are small, and on a loaded machine a multi-threaded convolution waits for its
slowest thread: on 2 cores at load 2-3, one thread was 1.5 ms where two took 1.5-32 ms for the
same call; on an idle machine two threads gain at most ~1.5x."""


@contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """Run the block with ``n`` torch threads (``n`` <= 0: unchanged), then restore."""
    old = torch.get_num_threads()
    if n <= 0 or n == old:
        yield
        return
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


def ieee_float32() -> bool:
    """Whether torch's CPU float32 convolutions run in full IEEE precision (no bf16/tf32
    shortcuts a user may have switched on), so integer sums below 2^24 are exact."""
    mkldnn = torch.backends.mkldnn
    modes = {getattr(getattr(mkldnn, "conv", None), "fp32_precision", "none"),
             getattr(mkldnn, "fp32_precision", "none")}
    return torch.get_float32_matmul_precision() == "highest" and modes <= {"none", "ieee"}


class Conv(Kernel):
    """``synapse.conv`` as Lava's ``Conv`` fixed_pt: raw weights, output wrapped to 24 bits.

    All ``T·N`` frames of a sequence go through one convolution (every output position at once).
    It runs in float32 (several times faster than float64) whenever that is exact: every
    product and partial sum is an integer of magnitude at most ``max|x| · reach``, where
    ``reach`` bounds the sum of ``|w|`` feeding one output; below 2^24 float32 holds them all,
    whatever order the library sums in.  Otherwise it runs in float64 (exact below 2^53).
    """

    def __init__(self, g: Graph, node: Op, ctx: dict[str, Any]):
        super().__init__(g, node, ctx)
        if getattr(node, "weight_imag", None) is not None:
            raise RuntimeSimError(f"{node.describe()}: complex convolutions are not supported")
        w = _weights(g, node, "weight")
        self.w = torch.from_numpy(w)
        self.w32 = self.w.to(torch.float32)
        self.reach = self.weight_reach(np.abs(w))
        self.in_rank = 3
        self.bias = None  # per output channel, like Dense's (float-trained convs after BN folding)
        if getattr(node, "bias", None) is not None:
            self.bias = grid(g, node, "bias", W_SCALE).reshape(-1, 1, 1)

    def weight_reach(self, w_abs: np.ndarray) -> float:
        """An upper bound of ``Σ|w|`` over the weights feeding one output (``[O, I/g, kh, kw]``)."""
        return float(w_abs.reshape(w_abs.shape[0], -1).sum(axis=1).max(initial=0.0))

    def op(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        """The convolution on a batch of frames."""
        n = self.node
        return F.conv2d(x, w, stride=n.stride, padding=n.padding, dilation=n.dilation,
                        groups=n.groups)

    def _convolve(self, frames: torch.Tensor) -> tuple[torch.Tensor, float]:
        """The exact integer convolution of ``frames``, and a bound of its magnitude."""
        if not frames.numel():
            return self.op(frames, self.w), 0.0
        # Rounding to float32 is monotone and keeps 2^24, so |x| < 2^24 (where the cast is
        # exact) shows in the float32 copy; the bound then covers every partial sum.
        f32 = frames.to(torch.float32)
        lo, hi = torch.aminmax(f32)
        bound = max(-float(lo), float(hi)) * self.reach
        with torch_threads(CONV_THREADS):
            if bound < F32_EXACT and ieee_float32():
                return self.op(f32, self.w32).to(torch.float64), bound
            return self.op(frames, self.w), float(frames.abs().max()) * self.reach

    def apply(self, ins: list[Sig]) -> Sig:
        x, e = _spikes_in(self.node, ins[0])
        frames, lead = _frames(x, self.in_rank)
        y, bound = self._convolve(frames)
        y = y.numpy().reshape(lead + tuple(self.node.shape))
        if self.bias is not None:
            y = y + self.bias * float(1 << e)
            bound += float(np.abs(self.bias).max(initial=0.0)) * float(1 << e)
        return Sig(y if bound < float(1 << 23) else wrap(y, 24), None, e + 6)


class ConvTranspose(Conv):
    """``synapse.conv_transpose`` (not in netx): exact integer transposed conv, 24-bit wrap."""

    def weight_reach(self, w_abs: np.ndarray) -> float:
        """Each output channel sums over input channels and kernel taps (``[I, O/g, kh, kw]``)."""
        return float(w_abs.sum(axis=(0, 2, 3)).max(initial=0.0))

    def op(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        n = self.node
        return F.conv_transpose2d(x, w, stride=n.stride, padding=n.padding,
                                  dilation=n.dilation, groups=n.groups)


class Pool(Conv):
    """``synapse.pool`` (not in netx): slayer's sum pool, integer weights, 24-bit wrap.

    As lava-dl: pad bottom/right by ``H mod kH`` / ``W mod kW``, fold channels into rows
    (``[1, C·H, W]``), convolve with the shared kernel, unfold.
    """

    def op(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        n = self.node
        kh, kw = w.shape[2:]
        x = F.pad(x, (0, x.shape[3] % kw, 0, x.shape[2] % kh))
        y = F.conv2d(x.reshape(x.shape[0], 1, -1, x.shape[3]), w, stride=n.stride,
                     padding=n.padding, dilation=n.dilation)
        return y.reshape((x.shape[0], *n.shape))


class Unpool(Conv):
    """``synapse.unpool`` (not in netx): per-channel transposed sum pool, 24-bit wrap."""

    def op(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        n = self.node
        y = F.conv_transpose2d(x.reshape(x.shape[0], 1, -1, x.shape[3]), w,
                               stride=n.stride, padding=n.padding, dilation=n.dilation)
        return y.reshape((x.shape[0], *n.shape))


class Flatten(Kernel):
    """``tensor.flatten`` / ``tensor.reshape``: C order over the per-sample axes."""

    ANY_DTYPE = True

    def __init__(self, g: Graph, node: Op, ctx: dict[str, Any]):
        super().__init__(g, node, ctx)
        self.in_rank = len(g[node.inputs[0]].shape)

    def apply(self, ins: list[Sig]) -> Sig:
        x = ins[0]
        lead = x.re.shape[: x.re.ndim - self.in_rank]
        shape = lead + tuple(self.node.shape)
        return Sig(x.re.reshape(shape), None if x.im is None else x.im.reshape(shape), x.e)


def _aligned(ins: list[Sig]) -> tuple[list[Sig], int | None]:
    """Inputs moved to one exponent (the finest), exactly."""
    exps = {x.e for x in ins}
    if None in exps:
        if len(exps) > 1:
            raise RuntimeSimError("cannot combine the raw input with integer signals")
        return ins, None
    e = max(exps)  # type: ignore[type-var]
    return [Sig(rescale(x.re, x.e, e), None if x.im is None else rescale(x.im, x.e, e), e)
            for x in ins], e


class Add(Kernel):
    """``tensor.add``: exact integer sum (dense_rec's feed-forward + recurrent currents)."""

    def apply(self, ins: list[Sig]) -> Sig:
        ins, e = _aligned(ins)
        re = sum(x.re for x in ins[1:]) + ins[0].re
        ims = [x.im for x in ins if x.im is not None]
        im = None if not ims else sum(ims[1:]) + ims[0]
        return Sig(re, im, e)


class Concat(Kernel):
    """``tensor.concat`` along a per-sample axis."""

    def apply(self, ins: list[Sig]) -> Sig:
        ins, e = _aligned(ins)
        axis = ins[0].re.ndim - self.rank + self.node.axis
        return Sig(np.concatenate([x.re for x in ins], axis=axis), None, e)


class Affine(Kernel):
    """``tensor.affine``: netx's input transform ``rint(x·weight + bias)`` into 2^6 units.

    On an integer signal: ``x·(64·scale) + (64·bias)·2^e``, exact, exponent ``e + 6``.
    """

    def __init__(self, g: Graph, node: Op, ctx: dict[str, Any]):
        super().__init__(g, node, ctx)
        self.scale = float(grid(g, node, "scale", W_SCALE))
        self.bias = float(grid(g, node, "bias", W_SCALE))

    def apply(self, ins: list[Sig]) -> Sig:
        x = ins[0]
        if x.e is None:
            return Sig(np.rint(x.re * self.scale + self.bias), None, 6)
        return Sig(x.re * self.scale + self.bias * float(1 << x.e), None, x.e + 6)


class Neuron(Kernel):
    """Adapter from a stepped :class:`NeuronKernel` to the kernel interface."""

    def __init__(self, g: Graph, node: Op, ctx: dict[str, Any]):
        super().__init__(g, node, ctx)
        self.k: NeuronKernel = families.kernel(node.OP, "fixed")(g, node)

    def _inputs(self, x: Sig) -> tuple[np.ndarray, np.ndarray | None]:
        target = self.k.STATE_EXP
        if self.k.COMPLEX and x.im is None:
            raise RuntimeSimError(f"{self.node.describe()}: needs a complex synapse input")
        im = None if x.im is None else rescale(x.im, x.e, target)
        return rescale(x.re, x.e, target), im

    def sequence(self, ins: list[Sig], steps: int, n: int, carry: bool = False) -> Sig:
        a, b = self._inputs(ins[0])
        k = self.k
        if not carry:
            k.start(n)
        out = np.empty(a.shape)
        if not fast.run(k, a, b, out, carry):
            k.prepare(a)
            k.run(a, b, out)
        return Sig(out, None, k.out_exp)

    def start(self, n: int) -> None:
        self.k.start(n)

    def step(self, ins: list[Sig]) -> Sig:
        a, b = self._inputs(ins[0])
        return Sig(np.asarray(self.k.step(a, b), dtype=np.float64), None, self.k.out_exp)


class Delayed(Kernel):
    """``axon.shift`` / ``axon.delay``: ``y[t] = x[t − d]`` per channel or neuron, 0 before."""

    def __init__(self, g: Graph, node: Op, ctx: dict[str, Any]):
        super().__init__(g, node, ctx)
        if node.OP == "axon.shift":
            self.d: np.ndarray | int = int(node.steps)
        elif isinstance(node.delay, ParamRef):
            d = np.rint(np.asarray(g.param(node.delay), dtype=np.float64)).astype(np.int64)
            shape = tuple(node.shape)
            self.d = d.reshape((shape[0],) + (1,) * (len(shape) - 1)) if d.shape != shape else d
        else:
            self.d = int(node.delay)
        self.dmax = int(np.max(self.d))

    def _gather(self, past: Callable[[int], np.ndarray | None], like: np.ndarray) -> np.ndarray:
        if isinstance(self.d, int):
            got = past(self.d)
            return np.zeros_like(like) if got is None else got
        out = np.zeros_like(like)
        for v in np.unique(self.d):
            got = past(int(v))
            if got is not None:
                np.copyto(out, got, where=np.broadcast_to(self.d == v, out.shape[-self.rank:]))
        return out

    def _shift(self, x: np.ndarray | None) -> np.ndarray | None:
        if x is None:
            return None
        steps = x.shape[0]
        return self._gather(lambda v: None if v >= steps else
                            np.concatenate([np.zeros_like(x[:v]), x[: steps - v]]), x)

    def sequence(self, ins: list[Sig], steps: int, n: int, carry: bool = False) -> Sig:
        x = ins[0]
        if not carry or not self.dmax:
            return Sig(self._shift(x.re), self._shift(x.im), x.e)
        # The last dmax input steps of the previous chunk (zeros at first) go in front, so the
        # chunk's outputs see them; what is left at the end is kept for the next chunk.
        zeros = np.zeros((self.dmax, *x.re.shape[1:]))
        tail = self.tail or Sig(zeros, None if x.im is None else zeros, x.e)
        assert tail.e == x.e, (self.node.name, tail.e, x.e)  # one exponent per signal
        re = np.concatenate([tail.re, x.re])
        im = None if x.im is None else np.concatenate(
            [zeros if tail.im is None else tail.im, x.im])
        self.tail = Sig(re[-self.dmax:].copy(), None if im is None else im[-self.dmax:].copy(),
                        x.e)
        y_re, y_im = self._shift(re), self._shift(im)
        return Sig(y_re[self.dmax:], None if y_im is None else y_im[self.dmax:], x.e)

    def start(self, n: int) -> None:
        self.hist: deque[Sig] = deque(maxlen=max(self.dmax, 1))
        self.n = n
        self.tail: Sig | None = None

    def emit(self) -> Sig:
        """This step's output, from the inputs of earlier steps only.

        Before any input arrived the output is zero with exponent 0; exponents are aligned to
        the finest one downstream, so a zero with a coarser exponent changes nothing.
        """
        def past(v: int) -> np.ndarray | None:
            return self.hist[-v].re if 1 <= v <= len(self.hist) else None
        e = self.hist[-1].e if self.hist else 0
        return Sig(self._gather(past, np.zeros((self.n, *self.node.shape))), None, e)

    def push(self, x: Sig) -> None:
        """Remember this step's input."""
        self.hist.append(x)


KERNELS: dict[str, type[Kernel]] = {
    "io.output": Identity, "neuron.dropout": Identity,
    "synapse.dense": Dense, "synapse.conv": Conv, "synapse.conv_transpose": ConvTranspose,
    "synapse.pool": Pool, "synapse.unpool": Unpool,
    "tensor.flatten": Flatten, "tensor.reshape": Flatten, "tensor.add": Add,
    "tensor.concat": Concat, "tensor.affine": Affine,
    "axon.shift": Delayed, "axon.delay": Delayed,
    **{op: Neuron for op in families.ops_with("fixed")},
}
"""Kernel class per ``OP``.  Ops missing here have no fixed-point form (see the docs)."""


def make_kernel(g: Graph, node: Op, ctx: dict[str, Any]) -> Kernel:
    """The kernel of ``node``; raises :class:`RuntimeSimError` naming it if there is none."""
    cls = KERNELS.get(node.OP)
    if cls is None and node.OP in families.FAMILIES and families.kernel(node.OP, "fixed"):
        cls = Neuron  # a family added after import with a fixed-point kernel
    if cls is None:
        raise RuntimeSimError(f"{node.describe()}: {node.OP} has no fixed-point semantics "
                              f"(supported: {', '.join(sorted(KERNELS))}); lower it first")
    return cls(g, node, ctx)
