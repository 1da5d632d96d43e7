"""Fused feed-forward spiking layers: ``[shift →] synapse → cuba`` as one compiled loop.

A netx layer is a chain ``axon.shift → synapse.conv|dense → neuron.cuba``.  When nothing
else reads the shift or the synapse (and neither is recorded), the simulator can run the
chain as one numba call per layer instead of three whole-sequence kernels: per sample and
step it gathers the non-zero inputs of the (shifted) input frame, scatters their outgoing
weights into an integer accumulator and advances the CUBA neurons on it.  Spikes are sparse
(a few percent to a third of the inputs), so the scatter does a fraction of a dense
product's work, and the synaptic currents of the whole sequence are never materialised.
Binary spikes leave a fused layer as uint8 (the next layer's scan reads 64 inputs per cache
line).

Exactness: the accumulator is an integer (int32 when ``max|x|·reach < 2^31``, where ``reach``
bounds ``Σ|w|`` over the weights feeding one output, else int64; larger inputs take the
ordinary path), so every sum is exact whatever the order, as Lava's int32/int64 products.
After the accumulation the arithmetic is the synapse kernels' (:class:`~kernels.Dense`: the
``weight_exp`` shift as a floor, bias; :class:`~kernels.Conv`: bias, 24-bit wrap), then
:func:`fast._cuba`'s (the ``<< 6`` into state units, current decay and wrap, voltage decay,
bias, clip, strict threshold, reset).  The neurons run in int32 lanes
(:func:`_cuba_step32`) while every input is small enough that no synaptic input reaches
:data:`SMALL_Y` (checked per input value, like the accumulator bound); otherwise the layer
runs again with int64 neurons.  An input that is not an integer, or too large for the int64
bound, makes the call return a code and the simulator run the chain unfused (which names
the problem); so does a run without numba.

Scatter tables: every input ``i`` owns segments ``seg_ptr[i]:seg_ptr[i+1]``; segment ``s``
adds ``wflat[seg_off[s]:][:seg_len[s]]`` to ``acc[seg_base[s]:][:seg_len[s]]``.  A dense layer
has one segment per input (its weight row); runs of eight spiking rows are summed in int16
lanes before they touch the accumulator.  A convolution's accumulator is channel-last
(``[H, W, C]``), so the output channels one tap reaches are contiguous, and so are the taps of
one input and kernel row that land on consecutive output columns: one segment each such run
(its weights, concatenated, shared by every input with the same channel, row, first tap and
length).  With one group and 8..64 input channels the segments are per input *pixel*
(:data:`PIXELS`): all channels of a pixel reach the same slots, so a frame's spiking channels
of each pixel are collected as a bit mask and their weights summed before each slot is
updated.  The accumulator is transposed to the neurons' ``C, H, W`` order before the neuron
loop, except where a layer's binary spikes go only to a by-pixel convolution: that pair
passes them channel-last (the producer's neurons run in ``H, W, C`` order, the consumer's scan
yields each pixel's channels together; :attr:`Fusion.feeds`).  Weights are held as int16
(netx weights have 9 bits), so that a dense layer's table stays in the L2 cache and up to
eight of them sum in int16 lanes (a table whose weights could reach 2^12 is not fused).
"""

from __future__ import annotations

import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from slayerc.ir.core import Graph, Op
from slayerc.ir.target import DECAY_SCALE
from slayerc.runtime.fixed import fast
from slayerc.runtime.fixed import neurons as nk

ACC_BYTES = 1 << 17
"""Size of the accumulator of the frames scattered together (stays in the L2 cache)."""
LIST_BYTES = 1 << 22
"""Bound of the frames' lists of non-zero inputs (index and value: 16 bytes per input)."""
I32_MAX = float((1 << 31) - 1)
I64_SAFE = float(1 << 62)
OK, NOT_INTEGER, TOO_LARGE, OUT_OF_RANGE = 0, 1, 2, 3
ROWS, SEGMENTS, PIXELS = 0, 1, 2
"""How a synapse's weights are scattered: dense rows, convolution segments per input, or
convolution slots per input pixel (its channels summed first)."""
_jit = fast._jit
_jit_inline = fast._jit_inline
try:  # pragma: no cover - with numba only
    from numba.cpython.unsafe.numbers import trailing_zeros as _tz_bits
except ImportError:  # pragma: no cover
    def _tz_bits(x: Any) -> int:
        return (int(x) & -int(x)).bit_length() - 1


@_jit
def _scan(src, k, lims, idx, val):  # noqa: ANN001
    """Append the non-zero entries of the frame ``src`` to ``idx``/``val`` from position ``k``;
    returns the new count, or −OUT_OF_RANGE (outside ``[lims[1], lims[2]]``, or NaN),
    −NOT_INTEGER, or −TOO_LARGE (``|x| > lims[0]``).  Blocks of 64
    entries become a bit mask first (a vectorised compare), then only the set bits are
    visited, so the cost follows the spikes rather than the width."""
    n = src.shape[0]
    one = np.uint64(1)
    full = n - n % 64
    for b0 in range(0, n, 64):
        mask = np.uint64(0)
        if b0 < full:  # a fixed trip count: unrolled and vectorised
            blk = src[b0:b0 + 64]
            for b in range(64):
                mask |= np.uint64(blk[b] != 0) << np.uint64(b)
        else:
            for b in range(n - b0):
                mask |= np.uint64(src[b0 + b] != 0) << np.uint64(b)
        while mask:
            q = b0 + np.int64(_tz_bits(mask))
            mask &= mask - one
            xq = src[q]
            if xq != 1:
                if not lims[1] <= xq <= lims[2]:
                    return -OUT_OF_RANGE
                if xq != np.floor(xq):
                    return -NOT_INTEGER
                if abs(xq) > lims[0]:
                    return -TOO_LARGE
            idx[k] = q
            val[k] = np.int64(xq)
            k += 1
    return k


@_jit
def _gather(head, d, x, i, t0, t1, lims, ptr, idx, val):  # noqa: ANN001
    """The non-zero inputs of frames ``t0 .. t1`` of sample ``i`` (``head[t]`` before step
    ``d``, ``x[t − d]`` from then on) as lists ``idx[ptr[f]:ptr[f+1]]`` (ascending) with their
    values (exact integers) in ``val``; returns OK or the first problem's code (:func:`_scan`)."""
    k = 0
    for t in range(t0, t1):
        ptr[t - t0] = k
        k = _scan(head[t, i], k, lims, idx, val) if t < d else _scan(x[t - d, i], k, lims,
                                                                          idx, val)
        if k < 0:
            return -k
    ptr[t1 - t0] = k
    return OK


@_jit
def _scatter(frames, ptr, idx, val, seg_ptr, seg_base, seg_off, seg_len, wflat, acc):  # noqa: ANN001
    """``acc[f] = Σ`` over the listed inputs of frame ``f`` of their weight segments (segment
    ``s`` adds ``wflat[seg_off[s]:][:seg_len[s]]`` at ``seg_base[s]``).  Indices are unsigned
    so that the inner loop has no negative-index branch (it vectorises)."""
    for f in range(frames):
        row_acc = acc[f]
        for p in range(ptr[f], ptr[f + 1]):
            q = idx[p]
            xi = val[p]
            for s in range(seg_ptr[q], seg_ptr[q + 1]):
                base = np.uint64(seg_base[s])
                r0 = np.uint64(seg_off[s])
                if xi == 1:
                    for c in range(np.uint64(seg_len[s])):
                        row_acc[base + c] += wflat[r0 + c]
                else:
                    for c in range(np.uint64(seg_len[s])):
                        row_acc[base + c] += xi * wflat[r0 + c]


@_jit_inline
def _ones(val, p, n):  # noqa: ANN001
    """Whether ``val[p:p + n]`` are all 1 (binary spikes)."""
    for k in range(p, p + n):
        if val[k] != 1:
            return False
    return True


@_jit
def _scatter_rows(frames, ptr, idx, val, wflat, width, acc):  # noqa: ANN001
    """A dense layer's accumulation (one weight row per input, all at offset 0): runs of eight
    spiking rows are summed in int16 lanes first (weights below 2^12: no sum of eight can
    overflow), so the accumulator is loaded and stored once per eight rows (the one-row loop
    is bound by those stores); an input other than 1 is added on its own.  Exact: the integer
    sums are those of the one-row loop, reordered, and stay below the bound that chose the
    accumulator type."""
    uw = np.uint64(width)
    for f in range(frames):
        row = acc[f]
        p, end = ptr[f], ptr[f + 1]
        while p < end:
            if p + 8 <= end and _ones(val, p, 8):
                r0, r1, r2, r3 = (np.uint64(idx[p]) * uw, np.uint64(idx[p + 1]) * uw,
                                  np.uint64(idx[p + 2]) * uw, np.uint64(idx[p + 3]) * uw)
                r4, r5, r6, r7 = (np.uint64(idx[p + 4]) * uw, np.uint64(idx[p + 5]) * uw,
                                  np.uint64(idx[p + 6]) * uw, np.uint64(idx[p + 7]) * uw)
                for c in range(uw):
                    row[c] += np.int16(np.int16(np.int16(wflat[r0 + c] + wflat[r1 + c])
                                                + np.int16(wflat[r2 + c] + wflat[r3 + c]))
                                       + np.int16(np.int16(wflat[r4 + c] + wflat[r5 + c])
                                                  + np.int16(wflat[r6 + c] + wflat[r7 + c])))
                p += 8
                continue
            r, xi = np.uint64(idx[p]) * uw, val[p]
            if xi == 1:
                for c in range(uw):
                    row[c] += wflat[r + c]
            else:
                for c in range(uw):
                    row[c] += xi * wflat[r + c]
            p += 1


@_jit_inline
def _add_channels(acc_f, q, rows, n, slot_ptr, slot_base, slot_off, slot_len, wflat):  # noqa: ANN001
    """Add the weights of channels ``rows[:n]`` of input pixel ``q`` to its slots, each slot
    loaded and stored once per group of up to four (summed in int16 lanes)."""
    for s in range(slot_ptr[q], slot_ptr[q + 1]):
        base, ln = np.uint64(slot_base[s]), np.uint64(slot_len[s])
        off = np.uint64(slot_off[s])
        row = acc_f[base:base + ln]
        k = 0
        while k + 4 <= n:
            r0, r1, r2, r3 = (off + rows[k] * ln, off + rows[k + 1] * ln,
                              off + rows[k + 2] * ln, off + rows[k + 3] * ln)
            for e in range(ln):
                row[e] += np.int16(np.int16(wflat[r0 + e] + wflat[r1 + e])
                                   + np.int16(wflat[r2 + e] + wflat[r3 + e]))
            k += 4
        if k + 2 <= n:
            r0, r1 = off + rows[k] * ln, off + rows[k + 1] * ln
            for e in range(ln):
                row[e] += np.int16(wflat[r0 + e] + wflat[r1 + e])
            k += 2
        if k < n:
            r0 = off + rows[k] * ln
            for e in range(ln):
                row[e] += wflat[r0 + e]


@_jit_inline
def _add_payload(acc_f, q, c, xi, slot_ptr, slot_base, slot_off, slot_len, wflat):  # noqa: ANN001
    """Add ``xi`` times the weights of channel ``c`` of input pixel ``q`` to its slots."""
    for s in range(slot_ptr[q], slot_ptr[q + 1]):
        base, ln = np.uint64(slot_base[s]), np.uint64(slot_len[s])
        r = np.uint64(slot_off[s]) + c * ln
        for e in range(ln):
            acc_f[base + e] += xi * wflat[r + e]


@_jit
def _scatter_pixels(frames, ptr, idx, val, npix, cin_last, slot_ptr, slot_base, slot_off,
                    slot_len, wflat, cmask, acc):  # noqa: ANN001
    """A convolution's accumulation by input pixel (:func:`conv_tables`, :data:`PIXELS`):
    every channel of one pixel adds to the same accumulator slots, so the spiking channels of
    a pixel are summed first (:func:`_add_channels`).  ``cmask[pixel]`` collects a frame's
    spiking channels as bits (left zero); the inputs ``idx`` are ascending ``channel · npix +
    pixel``, or with ``cin_last`` > 0 (a channel-last input of that many channels) ``pixel ·
    cin_last + channel``.  Inputs other than 1 are added on their own."""
    one = np.uint64(1)
    rows = np.empty(64, np.uint64)
    for f in range(frames):
        acc_f = acc[f]
        c, lim = np.uint64(0), np.int64(npix)
        for p in range(ptr[f], ptr[f + 1]):
            q, xi = idx[p], val[p]
            if cin_last:
                pix = q // cin_last
                c = np.uint64(q - pix * cin_last)
                q = pix
            else:
                while q >= lim:
                    c += one
                    lim += npix
                q -= lim - npix
            if xi == 1:
                cmask[q] |= one << c
            else:
                _add_payload(acc_f, q, c, xi, slot_ptr, slot_base, slot_off, slot_len, wflat)
        for q in range(npix):
            bits = cmask[q]
            if bits == 0:
                continue
            cmask[q] = 0
            n = 0
            while bits:
                rows[n] = np.uint64(_tz_bits(bits))
                n += 1
                bits &= bits - one
            _add_channels(acc_f, q, rows, n, slot_ptr, slot_base, slot_off, slot_len, wflat)


@_jit_inline
def _transpose(row, chans, tr):  # noqa: ANN001
    """``tr[c, p] = row[p, c]`` for ``chans`` channels (a channel-last accumulator into the
    neurons' channel-first order)."""
    cc = np.uint64(chans)
    pp = np.uint64(tr.shape[0]) // cc
    for c in range(cc):
        for p in range(pp):
            tr[c * pp + p] = row[p * cc + c]


@_jit
def _synaptic(row, chans, shift, syn_bias, wrap24, tr):  # noqa: ANN001
    """A frame's accumulator ``row`` through the synapse's post-accumulation rule into ``tr``
    (the neurons' order): with ``chans`` > 0 the accumulator is channel-last and transposed
    here (so the neuron loop runs over contiguous arrays and vectorises); then the
    ``weight_exp`` shift (a floor), the bias (none when ``syn_bias`` is empty) and, with
    ``wrap24`` (a convolution whose sums may reach 2^23), the 24-bit wrap."""
    m = np.uint64(tr.shape[0])
    if chans > 0:
        _transpose(row, chans, tr)
    elif shift >= 0:
        for j in range(m):
            tr[j] = row[j] << shift
    else:
        for j in range(m):
            tr[j] = row[j] >> -shift
    if syn_bias.shape[0]:
        for j in range(m):
            tr[j] += syn_bias[j]
    if wrap24:
        wrap = 1 << 23
        for j in range(m):
            tr[j] = ((tr[j] + wrap) & (2 * wrap - 1)) - wrap


@_jit_inline
def _emit(ot, j, vv, spike, graded):  # noqa: ANN001
    """Neuron ``j``'s output: its voltage where it spikes (graded) or the spike (0/1)."""
    if graded:
        ot[j] = vv if spike else 0
    else:
        ot[j] = spike


@_jit_inline
def _decay32(a, m):  # noqa: ANN001
    """``trunc(a·m / 4096)`` in int32 (see :func:`_cuba_step32`)."""
    k12, m12 = np.int32(12), np.int32(4095)
    lo = np.int32((a & m12) * m)
    return np.int32((a >> k12) * m + (lo >> k12) + np.int32((a < 0) & ((lo & m12) != 0)))


@_jit
def _cuba_step(y, mu, mv, vth, bias, graded, u, v, ot):  # noqa: ANN001
    """One CUBA step of every neuron on the synaptic input ``y`` (int64, as
    :func:`fast._cuba`: ``<< 6`` into state units, current decay and wrap, voltage decay,
    bias, clip, strict threshold, reset)."""
    wrap = np.int64(1 << 23)
    for j in range(y.shape[0]):
        pu = u[j] * mu[j]
        uu = ((pu + ((pu >> 63) & 4095)) >> 12) + (y[j] << 6)
        uu = uu - 2 * wrap if uu > wrap else uu
        uu = uu + 2 * wrap if uu <= -wrap else uu
        pv = v[j] * mv[j]
        vv = ((pv + ((pv >> 63) & 4095)) >> 12) + uu + bias[j]
        vv = min(max(vv, -wrap + 1), wrap - 1)
        u[j] = uu
        spike = vv > vth[j]
        v[j] = 0 if spike else vv
        _emit(ot, j, vv, spike, graded)


@_jit
def _cuba_step32(y, mu, mv, vth, bias, graded, u, v, ot):  # noqa: ANN001
    """:func:`_cuba_step` in int32 lanes (twice as many per vector, half the memory), exact
    under the bounds :func:`small_limit` and :func:`_small_params` check: ``|y| < 2^18`` (so
    ``|y << 6| < 2^24``, and with ``|u| ≤ 2^23`` and ``0 ≤ mu ≤ 4096`` one fold keeps
    ``|u| ≤ 2^23``), ``|v| ≤ 2^23``, ``0 ≤ mv ≤ 4096``, ``|bias| < 2^29``.
    ``trunc(a·m / 4096)`` is formed without the 36-bit product: ``a = 4096·h + l`` (``l`` in
    ``[0, 4096)``) gives ``floor(a·m/4096) = h·m + (l·m >> 12)``, plus one where ``a < 0`` and
    ``l·m`` leaves a remainder (trunc rounds towards zero)."""
    wrap = np.int32(1 << 23)
    lim = np.int32((1 << 23) - 1)
    for j in range(y.shape[0]):
        uu = np.int32(_decay32(u[j], mu[j]) + (y[j] << np.int32(6)))
        uu = np.int32(uu - 2 * wrap) if uu > wrap else uu
        uu = np.int32(uu + 2 * wrap) if uu <= -wrap else uu
        vv = np.int32(_decay32(v[j], mv[j]) + uu + bias[j])
        vv = min(max(vv, -lim), lim)
        u[j] = uu
        spike = vv > vth[j]
        v[j] = 0 if spike else vv
        _emit(ot, j, vv, spike, graded)


@_jit
def _cuba_frames(acc, frames, chans, shift, syn_bias, wrap24, mu, mv, vth, bias, graded, u, v,
                 tr, out, i, t0):  # noqa: ANN001
    """The synapse's post-accumulation rule (:func:`_synaptic`) and the CUBA step for
    ``frames`` frames of sample ``i`` from ``acc`` into ``out[t0 + f, i]``; state ``u, v``
    (``[M]``) updated.  Int32 state selects :func:`_cuba_step32`."""
    small = u.itemsize == 4  # then |y| < 2^18: the wrap cannot act
    for f in range(frames):
        _synaptic(acc[f], chans, shift, syn_bias, wrap24 and not small, tr)
        if small:
            _cuba_step32(tr, mu, mv, vth, bias, graded, u, v, out[t0 + f, i])
        else:
            _cuba_step(tr, mu, mv, vth, bias, graded, u, v, out[t0 + f, i])


@_jit
def _layer(head, d, x, i0, i1, lims, mode, cin, cin_last, seg_ptr, seg_base, seg_off, seg_len,
           wflat, width, frames, chans, shift, syn_bias, wrap24, mu, mv, vth, bias, graded, su,
           sv, acc, out):  # noqa: ANN001
    """Run the chain for samples ``i0 .. i1`` over ``x[T, N, I]`` (behind ``head[d, N, I]``: the
    input delayed by ``d`` steps) into ``out[T, N, M]``, from the CUBA state ``su, sv``
    (``[N, M]``, updated), in pieces of ``frames`` steps per sample (``acc``: ``[frames, M]``).
    ``mode``: :data:`ROWS` (dense), :data:`SEGMENTS` or :data:`PIXELS` (convolution, ``cin``
    input channels, channel-last when ``cin_last``).  Returns OK, or the code of the first
    input that cannot run here (:func:`_scan`; ``lims``: the magnitude bound, then the range
    of allowed values)."""
    steps, _, n_in = x.shape
    ptr = np.empty(frames + 1, np.int64)
    idx = np.empty(frames * n_in, np.int64)
    val = np.empty(frames * n_in, np.int64)
    npix = n_in // max(cin, 1)
    cmask = np.zeros(npix if mode == PIXELS else 0, np.uint64)
    tr = np.empty(acc.shape[1], su.dtype)  # the neurons' integer type
    for i in range(i0, i1):
        for t0 in range(0, steps, frames):
            t1 = min(t0 + frames, steps)
            code = _gather(head, d, x, i, t0, t1, lims, ptr, idx, val)
            if code != OK:
                return code
            acc[:] = 0
            if mode == ROWS:
                _scatter_rows(t1 - t0, ptr, idx, val, wflat, width, acc)
            elif mode == PIXELS:
                _scatter_pixels(t1 - t0, ptr, idx, val, npix, cin if cin_last else 0, seg_ptr,
                                seg_base, seg_off, seg_len, wflat, cmask, acc)
            else:
                _scatter(t1 - t0, ptr, idx, val, seg_ptr, seg_base, seg_off, seg_len, wflat,
                         acc)
            _cuba_frames(acc, t1 - t0, chans, shift, syn_bias, wrap24, mu, mv, vth, bias, graded,
                         su[i], sv[i], tr, out, i, t0)
    return OK


@dataclass
class _Tables:
    """A synapse's scatter tables (see the module docstring) and its post-accumulation rule."""

    seg_ptr: np.ndarray
    seg_base: np.ndarray
    seg_off: np.ndarray
    seg_len: np.ndarray
    wflat: np.ndarray
    chans: int
    shift: int
    bias: np.ndarray
    wrap24: bool
    reach: float
    mode: int = SEGMENTS
    cin: int = 0
    """Input channels (:data:`PIXELS` mode: ``seg_ptr`` is per input pixel)."""

    width: int = field(init=False)
    """The longest segment."""
    sum16: bool = field(init=False)
    """Whether eight weights always sum within int16 (int16 table, ``|w| < 2^12``)."""
    bias_max: float = field(init=False)
    """The largest synapse bias magnitude."""

    def __post_init__(self) -> None:
        self.width = int(self.seg_len.max(initial=1))
        self.sum16 = self.wflat.dtype == np.int16 and \
            int(np.abs(self.wflat).max(initial=0)) < 1 << 12
        self.bias_max = float(np.abs(self.bias).max(initial=0))


def _integral(arr: np.ndarray) -> bool:
    return bool(np.array_equal(arr, np.rint(arr))) and float(np.abs(arr).max(initial=0)) < 2**31


def _weight_table(w: np.ndarray) -> np.ndarray:
    """Integer weights as int16 (half the cache of int32; netx weights have 9 bits) or int32."""
    small = float(np.abs(w).max(initial=0)) < 2**15
    return np.ascontiguousarray(w, np.int16 if small else np.int32)


def dense_tables(kernel: Any, m: int) -> _Tables | None:
    """Tables of a real :class:`~kernels.Dense` (weights ``[in, out]``, one segment per input)."""
    if kernel.im is not None:
        return None
    w = kernel.re.weight  # [in, out], integer-valued float64
    bias = np.zeros(m) if kernel.bias is None else np.broadcast_to(kernel.bias, (m,))
    if not (_integral(w) and _integral(bias)):
        return None
    n_in, n_out = w.shape
    reach = float(np.abs(w).sum(axis=0).max(initial=0.0))
    return _Tables(np.arange(n_in + 1, dtype=np.int64), np.zeros(n_in, np.int64),
                   np.arange(n_in, dtype=np.int64) * n_out, np.full(n_in, n_out, np.int64),
                   _weight_table(w).reshape(-1), 0, int(kernel.re.weight_exp),
                   np.ascontiguousarray(bias, np.int64), False, reach, ROWS)


def _pair(v: Any) -> tuple[int, int]:
    return (int(v), int(v)) if np.isscalar(v) else (int(v[0]), int(v[1]))


PIXEL_CHANNELS = (8, 64)
"""Input channel counts for which a convolution (one group) is scattered by pixel: with
fewer, a pixel rarely has two spiking channels; with more, the channel mask needs more than
one 64-bit word."""


def conv_tables(kernel: Any, in_shape: tuple[int, ...]) -> _Tables | None:
    """Tables of a :class:`~kernels.Conv` (``synapse.conv``: stride, padding, dilation,
    groups), accumulator channel-last: by pixel (:data:`PIXELS`) for one group of
    :data:`PIXEL_CHANNELS` input channels, else by input (:data:`SEGMENTS`)."""
    node = kernel.node
    w = kernel.w.numpy()  # [O, I/g, kh, kw]
    bias = np.zeros((w.shape[0], 1, 1)) if kernel.bias is None else kernel.bias
    if not (_integral(w) and _integral(bias)):
        return None
    cout, cin_g, kh, kw = w.shape
    groups = int(node.groups)
    width = cout // groups
    cin, hi, wi = in_shape
    _, ho, wo = node.shape
    pixels = groups == 1 and PIXEL_CHANNELS[0] <= cin <= PIXEL_CHANNELS[1]
    sy, sx = _pair(node.stride)
    py, px = _pair(node.padding)
    dy, dx = _pair(node.dilation)
    # every (input, tap) pair whose output position lies inside the output (by pixel: the
    # pairs of channel 0 stand for every channel)
    ci, yi, xi, ky, kx = (a.reshape(-1) for a in np.meshgrid(
        np.arange(1 if pixels else cin), np.arange(hi), np.arange(wi), np.arange(kh),
        np.arange(kw), indexing="ij"))
    ny, nx = yi + py - ky * dy, xi + px - kx * dx
    yo, xo = ny // sy, nx // sx
    ok = (ny % sy == 0) & (nx % sx == 0) & (yo >= 0) & (yo < ho) & (xo >= 0) & (xo < wo) \
        & (ny >= 0) & (nx >= 0)
    ci, yi, xi, ky, kx, yo, xo = (a[ok] for a in (ci, yi, xi, ky, kx, yo, xo))
    inp = (ci * hi + yi) * wi + xi
    # Taps of one input and kernel row that land on consecutive output columns are one run of
    # contiguous accumulator slots ([H, W, C], when one group spans all channels): one segment.
    order = np.lexsort((xo, ky, inp))
    ci, yi, ky, kx, yo, xo, inp = (a[order] for a in (ci, yi, ky, kx, yo, xo, inp))
    new_run = np.ones(len(inp), bool)
    if groups == 1 and len(inp):
        new_run[1:] = (inp[1:] != inp[:-1]) | (ky[1:] != ky[:-1]) | (xo[1:] != xo[:-1] + 1)
    start = np.flatnonzero(new_run)
    length = np.diff(np.append(start, len(inp)))
    # a run's weights depend on (input channel, ky, first kx, length) only; by pixel, the
    # runs of all channels are stored together ([channel, run]) under (ky, first kx, length)
    keys = np.stack([ci[start], ky[start], kx[start], length], axis=1)
    uniq, which = np.unique(keys, axis=0, return_inverse=True)
    sizes = uniq[:, 3] * width * (cin if pixels else 1)
    offs = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
    step = sx // dx if sx % dx == 0 else 0  # kx step between consecutive output columns
    rows = []
    for c0, y, x0, n in uniq:
        for c in range(cin) if pixels else (c0,):
            g0, cl = (c // cin_g) * width, c % cin_g
            rows += [w[g0:g0 + width, cl, y, x0 - j * step] for j in range(n)]
    wflat = _weight_table(np.concatenate(rows) if rows else np.zeros(0))
    group = ci[start] // cin_g
    seg_base = ((yo[start] * wo + xo[start]) * cout + group * width).astype(np.int64)
    n_in = (1 if pixels else cin) * hi * wi
    seg_ptr = np.zeros(n_in + 1, np.int64)
    np.cumsum(np.bincount(inp[start], minlength=n_in), out=seg_ptr[1:])
    bias_full = np.broadcast_to(bias, (cout, ho, wo)).reshape(-1)
    return _Tables(seg_ptr, seg_base, offs[which.reshape(-1)],
                   (length * width).astype(np.int64), wflat, cout, 0,
                   np.ascontiguousarray(bias_full, np.int64), True, float(kernel.reach),
                   PIXELS if pixels else SEGMENTS, cin if pixels else 0)


@dataclass
class Fusion:
    """One fusable chain: the node names and everything the compiled loop needs."""

    shift: str | None
    syn: str
    neuron: str
    source: str
    delay: int
    tables: _Tables
    params: tuple[np.ndarray, ...]
    small: tuple[np.ndarray, ...] | None = None
    """The parameters as int32 (``mu, mv, vth, bias``, then the synapse bias) when they admit
    the int32 neuron loop (:func:`_cuba_step32`), else None."""
    feeds: str | None = None
    """The fusion (its neuron's name) that alone reads this one's binary spikes through a
    by-pixel convolution: the two may pass them channel-last (:func:`run`)."""

    @property
    def members(self) -> tuple[str, ...]:
        """The nodes whose values the fused run does not produce."""
        return (self.shift, self.syn) if self.shift else (self.syn,)


def _only_reader(g: Graph, name: str, reader: str) -> bool:
    users = g.users(name)
    return len(users) == 1 and users[0].name == reader


def _chain(g: Graph, node: Op, kernels: dict[str, Any]) -> Fusion | None:
    """The fusion ending in ``node`` (a binary or graded CUBA), if the chain qualifies."""
    from slayerc.runtime.fixed.kernels import Conv, Delayed, Dense  # noqa: PLC0415 (cycle)

    neuron = kernels.get(node.name)
    k = getattr(neuron, "k", None)
    if type(k) is not nk.Cuba or len(node.inputs) != 1:
        return None
    syn = g[node.inputs[0]]
    sk = kernels.get(syn.name)
    if not _only_reader(g, syn.name, node.name) or len(syn.inputs) != 1:
        return None
    if type(sk) is Dense:
        tables = dense_tables(sk, int(np.prod(node.shape)))
    elif type(sk) is Conv:
        tables = conv_tables(sk, tuple(g[syn.inputs[0]].shape))
    else:
        return None
    if tables is None or not tables.sum16:
        return None  # (a quant-legal graph's weights are below 2^8: never here)
    shift, source, delay = None, syn.inputs[0], 0
    prev = kernels.get(source)
    if type(prev) is Delayed and isinstance(prev.d, int) and _only_reader(g, source, syn.name):
        shift, source, delay = source, g[source].inputs[0], prev.d
    shape = tuple(node.shape)
    params = (fast._ints(k.fu, shape, DECAY_SCALE), fast._ints(k.fv, shape, DECAY_SCALE),
              fast._ints(k.vth, shape), fast._ints(k.bias, shape))
    return Fusion(shift, syn.name, node.name, source, delay, tables, params,
                  _small_params(params, tables))


SMALL_Y = 1 << 18
"""Bound of the synaptic input (state units before the ``<< 6``) under which the int32 neuron
loop is exact: one fold then keeps the current within 24 bits."""


def _small_params(params: tuple[np.ndarray, ...], tb: _Tables) -> tuple[np.ndarray, ...] | None:
    """``params`` and the synapse bias as int32 when :func:`_cuba_step32`'s bounds hold for
    them (decay factors in ``[0, 4096]``, so that a decay never grows the current,
    ``|bias| < 2^29``, a threshold that int32 holds, a synapse bias below :data:`SMALL_Y`),
    else None."""
    mu, mv, vth, bias = params
    ok = (min(mu.min(initial=0), mv.min(initial=0)) >= 0
          and max(mu.max(initial=0), mv.max(initial=0)) <= DECAY_SCALE
          and np.abs(bias).max(initial=0) < 1 << 29 and np.abs(vth).max(initial=0) < 1 << 30
          and tb.bias_max < SMALL_Y)
    return tuple(a.astype(np.int32) for a in (*params, tb.bias)) if ok else None


def small_limit(fusion: Fusion, states: list[np.ndarray]) -> float:
    """The largest input magnitude for which the int32 neuron loop is exact from ``states``
    (every synaptic input ``|acc · 2^shift + bias| < 2^18``), or 0 when it cannot run."""
    tb = fusion.tables
    if fusion.small is None or any(np.abs(s).max(initial=0) > fast.W for s in states):
        return 0.0
    room = SMALL_Y - 1 - tb.bias_max
    return float(np.floor(room / (max(tb.reach, 1.0) * 2.0 ** max(tb.shift, 0))))


def plan(g: Graph, kernels: dict[str, Any]) -> dict[str, Fusion]:
    """Every fusable chain of ``g``, keyed by its neuron's name.  Fusion only speeds a run up:
    a chain whose tables cannot be built (an unforeseen attribute form) runs node by node."""
    out: dict[str, Fusion] = {}
    for node in g:
        if node.OP != "neuron.cuba":
            continue
        try:
            fusion = _chain(g, node, kernels)
        except Exception:  # noqa: BLE001 - the ordinary kernels then run (and report) it
            fusion = None
        if fusion is not None:
            out[node.name] = fusion
    for name, f in out.items():  # channel-last links: binary conv spikes into a by-pixel conv
        src = out.get(f.source)
        if src is not None and f.tables.mode == PIXELS and src.tables.chans > 0 \
                and not kernels[src.neuron].k.graded and len(g.users(f.source)) == 1:
            src.feeds = name
    return out


def channels_last(shape: tuple[int, ...]) -> np.ndarray:
    """The channel-first index of each neuron of a ``C, H, W`` layer in ``H, W, C`` order."""
    return np.arange(int(np.prod(shape))).reshape(shape).transpose(1, 2, 0).reshape(-1)


def run(fusion: Fusion, neuron: nk.Cuba, head: np.ndarray, x: np.ndarray,
        out: np.ndarray, allowed: tuple[float, float] = (-np.inf, np.inf),
        last_in: bool = False, last_out: bool = False, workers: int | None = None) -> bool:
    """Run the chain on the source signal ``x`` (``[T, N, *in]`` integer values of any real
    dtype and strides, e.g. the caller's input array in place; exponent 0) delayed behind
    ``head`` (``[d, N, *in]``), from ``neuron``'s state (left updated); ``out``:
    ``[T, N, *shape]``, float64 or (binary spikes) uint8.  False (state untouched) when the
    input needs the ordinary path: a non-integer, a value too large for an exact int64
    accumulation, or one outside ``allowed`` (or NaN: the caller then names it).

    Channel-last links (:attr:`Fusion.feeds`): with ``last_out`` the neurons run in ``H, W,
    C`` order on the channel-last accumulator as it is (no transpose) and ``out`` is
    ``[T, N, H, W, C]``; with ``last_in`` ``x`` is such an output (``head`` stays ``C, H, W``).
    The neurons' state is kept channel-first in either case.  ``workers``: threads to split
    the samples over (default :func:`threads`, read now)."""
    tb = fusion.tables
    steps, n = x.shape[:2]
    m = out[0, 0].size if out.size else int(np.prod(neuron.shape))
    if not steps or not n:
        return True
    xs = x.reshape(steps, n, -1)  # any strides and real dtype: the raw input is read in place
    if last_in:
        head = np.moveaxis(head, 2, -1)
    hd = np.ascontiguousarray(head, np.float64).reshape(head.shape[0], n, xs.shape[2])
    states = fast._load_state(neuron, neuron.STATE, m)
    perm = channels_last(tuple(neuron.shape)) if last_out else None
    if perm is not None:
        states = [st[:, perm] for st in states]
    flat = out.reshape(steps, n, m)
    frames = max(1, min(64, ACC_BYTES // (4 * max(1, m)), LIST_BYTES // (16 * max(1, xs.shape[2]))))
    k = min(n, workers or threads())
    parts = [n * j // k for j in range(k + 1)]
    reach = max(tb.reach, 1.0)
    # int32 neurons when the inputs allow, else an int32 then an int64 accumulator
    variants = [(np.int32, small_limit(fusion, states), fusion.small),
                (np.int32, np.floor(I32_MAX / reach), (*fusion.params, tb.bias)),
                (np.int64, np.floor(I64_SAFE / reach), (*fusion.params, tb.bias))]
    for dtype, xlim, (mu, mv, vth, bias, syn_bias) in (v for v in variants if v[1] >= 1):
        lims = np.array([xlim, *allowed], np.float64)
        state_type = mu.dtype
        # C order: a channel-last state is F-ordered after the permutation, and a strided row
        # per sample made the layer 2.3x slower (measured)
        work = [s.astype(state_type, order="C") for s in states]
        if perm is not None:
            mu, mv, vth, bias, syn_bias = (a[perm] for a in (mu, mv, vth, bias, syn_bias))
        syn_bias = syn_bias if tb.bias_max else syn_bias[:0]  # noqa: PLW2901

        def part(own: list, lo: int, hi: int, dtype: Any = dtype, lims: np.ndarray = lims,
                 prm: tuple = (syn_bias, tb.wrap24, mu, mv, vth, bias)) -> int:
            return _layer(hd[:, lo:hi], fusion.delay, xs[:, lo:hi], 0, hi - lo, lims, tb.mode,
                          tb.cin, last_in, tb.seg_ptr, tb.seg_base,
                          tb.seg_off, tb.seg_len, tb.wflat, tb.width, frames,
                          0 if last_out else tb.chans, tb.shift, *prm, neuron.graded, *own,
                          np.empty((frames, m), dtype), flat[:, lo:hi])
        codes = _split(part, work, parts)
        if all(code == OK for code in codes):
            if perm is not None:
                work = [_unpermute(w, perm) for w in work]
            fast._store(neuron, neuron.STATE, work)
            return True
        if NOT_INTEGER in codes or OUT_OF_RANGE in codes:
            return False
    return False


def _split(part: Any, work: list[np.ndarray], parts: list[int]) -> list[int]:
    """``part(states, lo, hi)`` for each range of samples ``parts[j] .. parts[j + 1]``, on
    :func:`_pool`'s threads when there are several; the codes in order.  Each thread works on
    its own copy of its samples' neuron states, made in that thread (copied back when it
    succeeded): 3-5 % faster than rows of the shared arrays on the NMNIST-size benchmark at
    batch 64."""
    if len(parts) == 2:
        return [part(work, parts[0], parts[1])]

    def one(j: int) -> int:
        lo, hi = parts[j], parts[j + 1]
        own = [w[lo:hi].copy() for w in work]
        code = part(own, lo, hi)
        if code == OK:
            for w, o in zip(work, own):
                w[lo:hi] = o
        return code
    return list(_pool().map(one, range(len(parts) - 1)))


def _unpermute(arr: np.ndarray, perm: np.ndarray) -> np.ndarray:
    """``arr[:, j]`` back to column ``perm[j]``."""
    out = np.empty_like(arr)
    out[:, perm] = arr
    return out


THREADS = 0
"""Threads that run a layer's samples (the compiled loops release the GIL); 0: as many as the
cores that other processes leave idle right now (:func:`threads`), at least one, so a run does
not oversubscribe a busy machine.  Measured on 2 cores with the NMNIST-size benchmark at batch
64 (us per sample-step, one thread / two): quiet 39 / 21; beside one CPU-bound process 41 / 39
(the default takes one); beside two 58 / 47 (the default takes one and gives up that margin to
leave the others their share)."""
_POOL: list[ThreadPoolExecutor] = []


SAMPLES = 4
"""Looks at the runnable threads that :func:`threads` takes the least of (0.5 ms apart)."""


def runnable() -> int | None:
    """Threads of other processes runnable at this instant (the fourth field of
    ``/proc/loadavg`` less this process's own running threads, :func:`own_running`); None
    where the kernel does not say."""
    try:
        with open("/proc/loadavg", encoding="ascii") as f:
            total = int(f.read().split()[3].split("/")[0])
    except (OSError, ValueError, IndexError):
        return None
    return max(0, total - own_running())


def own_running() -> int:
    """This process's threads in the running state now (the caller included): a worker of the
    last layer that has not yet gone back to sleep is not another process's load."""
    count = 0
    try:
        tids = os.listdir("/proc/self/task")
    except OSError:
        return 1
    for tid in tids:
        try:
            with open(f"/proc/self/task/{tid}/stat", "rb") as f:
                stat = f.read()
        except OSError:  # the thread ended meanwhile
            continue
        end = stat.rfind(b")")  # the name may hold spaces and brackets; the state follows it
        count += stat[end + 2:end + 3] == b"R"
    return max(count, 1)


def threads() -> int:
    """How many threads :func:`run` splits the samples over (see :data:`THREADS`): the cores
    not busy with other processes now.  The runnable threads are counted at the call, not
    read from the 1-minute load average: that average still counts a process that ended a
    minute ago (a Lava run just before, or this run's own threads) and misses one that
    started just now.  Without that count (not Linux) the load average stands in."""
    if THREADS > 0:
        return THREADS
    cpus = os.cpu_count() or 1
    others = runnable()
    for _ in range(SAMPLES - 1):  # the least of a few looks: a busy process is in all of
        if not others:            # them, a kernel worker woken by this run's page faults
            break                 # or a short command is not
        time.sleep(5e-4)
        others = min(others, runnable() or 0)
    if others is None:  # pragma: no cover - platforms without /proc/loadavg
        try:
            others = round(os.getloadavg()[0])
        except OSError:
            return 1
    return max(1, min(cpus, cpus - others))


def _pool() -> ThreadPoolExecutor:
    """One pool for the process, a worker per CPU (idle workers cost nothing)."""
    if not _POOL:
        workers = max(os.cpu_count() or 1, THREADS)
        _POOL.append(ThreadPoolExecutor(workers, thread_name_prefix="slayerc-fused"))
    return _POOL[0]
