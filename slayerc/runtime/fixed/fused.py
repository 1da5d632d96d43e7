"""Fused feed-forward spiking layers: ``[shift →] synapse → cuba`` as one compiled loop.

A netx layer is a chain ``axon.shift → synapse.conv|dense → neuron.cuba``.  When nothing
else reads the shift or the synapse (and neither is recorded), the simulator can run the
chain as one numba call per layer instead of three whole-sequence kernels: per sample and
step it gathers the non-zero inputs of the (shifted) input frame, scatters their outgoing
weights into an integer accumulator and advances the CUBA neurons on it.  Spikes are sparse
(a few percent to a third of the inputs), so the scatter does a fraction of a dense
product's work, and the synaptic currents of the whole sequence are never materialised.

Exactness: the accumulator is an integer (int32 when ``max|x|·reach < 2^31``, where ``reach``
bounds ``Σ|w|`` over the weights feeding one output, else int64; larger inputs take the
ordinary path), so every sum is exact whatever the order, as Lava's int32/int64 products.
After the accumulation the arithmetic is the synapse kernels' (:class:`~kernels.Dense`: the
``weight_exp`` shift as a floor, bias; :class:`~kernels.Conv`: bias, 24-bit wrap), then
:func:`fast._cuba`'s (the ``<< 6`` into state units, current decay and wrap, voltage decay,
bias, clip, strict threshold, reset).  An input that is not an integer, or too large for the
int64 bound, makes the call return a code and the simulator run the chain unfused (which
names the problem); so does a run without numba.

Scatter tables: every input ``i`` owns segments ``seg_ptr[i]:seg_ptr[i+1]``; segment ``s``
adds ``wflat[seg_off[s]:][:seg_len[s]]`` to ``acc[seg_base[s]:][:seg_len[s]]``.  A dense layer
has one segment per input (its weight row).  A convolution's accumulator is channel-last
(``[H, W, C]``), so the output channels one tap reaches are contiguous, and so are the taps of
one input and kernel row that land on consecutive output columns: one segment each such run
(its weights, concatenated, shared by every input with the same channel, row, first tap and
length).  The accumulator is transposed to the neurons' ``C, H, W`` order before the neuron
loop.  Weights are held as int16 (netx weights have 9 bits), so that a dense layer's table
stays in the L2 cache.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
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
OK, NOT_INTEGER, TOO_LARGE = 0, 1, 2
_jit = fast._jit
try:  # pragma: no cover - with numba only
    from numba.cpython.unsafe.numbers import trailing_zeros as _tz_bits
except ImportError:  # pragma: no cover
    def _tz_bits(x: Any) -> int:
        return (int(x) & -int(x)).bit_length() - 1


@_jit
def _scan(src, k, xlim, idx, val):  # noqa: ANN001
    """Append the non-zero entries of the frame ``src`` to ``idx``/``val`` from position ``k``;
    returns the new count, or −1 (a non-integer) / −2 (``|x| > xlim``).  Blocks of 64
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
                if xq != np.floor(xq):
                    return -NOT_INTEGER
                if abs(xq) > xlim:
                    return -TOO_LARGE
            idx[k] = q
            val[k] = np.int64(xq)
            k += 1
    return k


@_jit
def _gather(head, d, x, i, t0, t1, xlim, ptr, idx, val):  # noqa: ANN001
    """The non-zero inputs of frames ``t0 .. t1`` of sample ``i`` (``head[t]`` before step
    ``d``, ``x[t − d]`` from then on) as lists ``idx[ptr[f]:ptr[f+1]]`` with their values (exact
    integers) in ``val``; returns OK, NOT_INTEGER or TOO_LARGE."""
    k = 0
    for t in range(t0, t1):
        ptr[t - t0] = k
        k = _scan(head[t, i], k, xlim, idx, val) if t < d else _scan(x[t - d, i], k, xlim,
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


@_jit
def _scatter_rows(frames, ptr, idx, val, wflat, width, acc):  # noqa: ANN001
    """A dense layer's accumulation (one weight row per input, all at offset 0): spiking rows
    are added four at a time, so the accumulator is loaded and stored once per four rows (the
    one-row loop is bound by those stores).  Exact: the int32 sums are those of the one-row
    loop, reordered, and stay below the bound that chose int32."""
    uw = np.uint64(width)
    pend = np.empty(4, np.uint64)
    for f in range(frames):
        row = acc[f]
        k = 0
        for p in range(ptr[f], ptr[f + 1]):
            r = np.uint64(idx[p]) * uw
            xi = val[p]
            if xi != 1:
                for c in range(uw):
                    row[c] += xi * wflat[r + c]
                continue
            pend[k] = r
            k += 1
            if k == 4:
                r0, r1, r2, r3 = pend[0], pend[1], pend[2], pend[3]
                for c in range(uw):
                    row[c] += wflat[r0 + c] + wflat[r1 + c] + wflat[r2 + c] + wflat[r3 + c]
                k = 0
        for j in range(k):
            r = pend[j]
            for c in range(uw):
                row[c] += wflat[r + c]


@_jit
def _cuba_frames(acc, frames, chans, shift, syn_bias, wrap24, mu, mv, vth, bias, graded, u, v,
                 tr, out, i, t0):  # noqa: ANN001
    """The synapse's post-accumulation rule and the CUBA step for ``frames`` frames of sample
    ``i`` from ``acc`` into ``out[t0 + f, i]``; state ``u, v`` (``[M]``) updated.  With
    ``chans`` > 0 the accumulator is channel-last and first transposed into ``tr`` (so the
    neuron loop runs over contiguous arrays and vectorises)."""
    wrap = np.int64(1 << 23)
    m = out.shape[2]
    um = np.uint64(m)
    cc = np.uint64(max(chans, 1))
    pp = um // cc
    for f in range(frames):
        row = acc[f]
        if chans > 0:
            for p in range(pp):
                for c in range(cc):
                    tr[c * pp + p] = row[p * cc + c]
        else:
            for j in range(um):
                tr[j] = row[j]
        ot = out[t0 + f, i]
        for j in range(um):
            y = tr[j]
            y = (y << shift) if shift >= 0 else (y >> -shift)
            y += syn_bias[j]
            if wrap24:
                y = ((y + wrap) & (2 * wrap - 1)) - wrap
            pu = u[j] * mu[j]
            uu = ((pu + ((pu >> 63) & 4095)) >> 12) + (y << 6)
            uu = uu - 2 * wrap if uu > wrap else uu
            uu = uu + 2 * wrap if uu <= -wrap else uu
            pv = v[j] * mv[j]
            vv = ((pv + ((pv >> 63) & 4095)) >> 12) + uu + bias[j]
            vv = min(max(vv, -wrap + 1), wrap - 1)
            u[j] = uu
            spike = vv > vth[j]
            v[j] = 0 if spike else vv
            ot[j] = (vv if graded else 1.0) if spike else 0.0


@_jit
def _layer(head, d, x, i0, i1, xlim, seg_ptr, seg_base, seg_off, seg_len, wflat, width,
           frames, chans,
           shift, syn_bias, wrap24, mu, mv, vth, bias, graded, su, sv, acc, out):  # noqa: ANN001
    """Run the chain for samples ``i0 .. i1`` over ``x[T, N, I]`` (behind ``head[d, N, I]``: the
    input delayed by ``d`` steps) into ``out[T, N, M]``, from the CUBA state ``su, sv``
    (``[N, M]``, updated), in pieces of ``frames`` steps per sample (``acc``: ``[frames, M]``).
    Returns OK, or NOT_INTEGER / TOO_LARGE at the first such input (``|x| > xlim``)."""
    steps, _, n_in = x.shape
    ptr = np.empty(frames + 1, np.int64)
    idx = np.empty(frames * n_in, np.int64)
    val = np.empty(frames * n_in, np.int64)
    tr = np.empty(acc.shape[1], np.int64)
    for i in range(i0, i1):
        for t0 in range(0, steps, frames):
            t1 = min(t0 + frames, steps)
            code = _gather(head, d, x, i, t0, t1, xlim, ptr, idx, val)
            if code != OK:
                return code
            acc[:] = 0
            if chans == 0:  # dense
                _scatter_rows(t1 - t0, ptr, idx, val, wflat, width, acc)
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

    @property
    def width(self) -> int:
        """The longest segment."""
        return int(self.seg_len.max(initial=1))


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
                   np.ascontiguousarray(bias, np.int64), False, reach)


def _pair(v: Any) -> tuple[int, int]:
    return (int(v), int(v)) if np.isscalar(v) else (int(v[0]), int(v[1]))


def conv_tables(kernel: Any, in_shape: tuple[int, ...]) -> _Tables | None:
    """Tables of a :class:`~kernels.Conv` (``synapse.conv``: stride, padding, dilation,
    groups), accumulator channel-last."""
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
    sy, sx = _pair(node.stride)
    py, px = _pair(node.padding)
    dy, dx = _pair(node.dilation)
    # every (input, tap) pair whose output position lies inside the output
    ci, yi, xi, ky, kx = (a.reshape(-1) for a in np.meshgrid(
        np.arange(cin), np.arange(hi), np.arange(wi), np.arange(kh), np.arange(kw),
        indexing="ij"))
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
    # a run's weights depend on (input channel, ky, first kx, length) only
    keys = np.stack([ci[start], ky[start], kx[start], length], axis=1)
    uniq, which = np.unique(keys, axis=0, return_inverse=True)
    sizes = uniq[:, 3] * width
    offs = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
    step = sx // dx if sx % dx == 0 else 0  # kx step between consecutive output columns
    rows = []
    for c, y, x0, n in uniq:
        g0, cl = (c // cin_g) * width, c % cin_g
        rows += [w[g0:g0 + width, cl, y, x0 - j * step] for j in range(n)]
    wflat = _weight_table(np.concatenate(rows) if rows else np.zeros(0))
    group = ci[start] // cin_g
    seg_base = ((yo[start] * wo + xo[start]) * cout + group * width).astype(np.int64)
    seg_ptr = np.zeros(cin * hi * wi + 1, np.int64)
    np.cumsum(np.bincount(inp[start], minlength=cin * hi * wi), out=seg_ptr[1:])
    bias_full = np.broadcast_to(bias, (cout, ho, wo)).reshape(-1)
    return _Tables(seg_ptr, seg_base, offs[which.reshape(-1)], sizes[which.reshape(-1)],
                   wflat, cout, 0, np.ascontiguousarray(bias_full, np.int64), True,
                   float(kernel.reach))


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
    if tables is None:
        return None
    shift, source, delay = None, syn.inputs[0], 0
    prev = kernels.get(source)
    if type(prev) is Delayed and isinstance(prev.d, int) and _only_reader(g, source, syn.name):
        shift, source, delay = source, g[source].inputs[0], prev.d
    shape = tuple(node.shape)
    params = (fast._ints(k.fu, shape, DECAY_SCALE), fast._ints(k.fv, shape, DECAY_SCALE),
              fast._ints(k.vth, shape), fast._ints(k.bias, shape))
    return Fusion(shift, syn.name, node.name, source, delay, tables, params)


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
    return out


def run(fusion: Fusion, neuron: nk.Cuba, head: np.ndarray, x: np.ndarray,
        out: np.ndarray) -> bool:
    """Run the chain on the source signal ``x`` (``[T, N, *in]`` integer-valued floats of any
    strides, e.g. the caller's input array in place; exponent 0) delayed behind ``head``
    (``[d, N, *in]``), from ``neuron``'s state (left updated); ``out``: ``[T, N, *shape]``,
    float64 or (binary spikes) float32.  False (state untouched) when the input needs the
    ordinary path: a non-integer, or a value too large for an exact int64 accumulation."""
    tb = fusion.tables
    steps, n = x.shape[:2]
    m = out[0, 0].size if out.size else int(np.prod(neuron.shape))
    if not steps or not n:
        return True
    xs = x.reshape(steps, n, -1)  # any strides and real dtype: the raw input is read in place
    hd = np.ascontiguousarray(head, np.float64).reshape(head.shape[0], n, xs.shape[2])
    states = fast._load_state(neuron, neuron.STATE, m)
    flat = out.reshape(steps, n, m)
    frames = max(1, min(64, ACC_BYTES // (4 * max(1, m)), LIST_BYTES // (16 * max(1, xs.shape[2]))))
    parts = np.linspace(0, n, min(n, threads()) + 1).astype(int)
    for dtype, lim in ((np.int32, I32_MAX), (np.int64, I64_SAFE)):
        xlim = np.floor(lim / max(tb.reach, 1.0))
        work = [s.copy() for s in states]

        def part(k: int, dtype: Any = dtype, xlim: float = xlim, work: list = work) -> int:
            lo, hi = parts[k], parts[k + 1]
            return _layer(hd, fusion.delay, xs, lo, hi, xlim, tb.seg_ptr, tb.seg_base,
                          tb.seg_off, tb.seg_len, tb.wflat, tb.width, frames,
                          tb.chans, tb.shift, tb.bias, tb.wrap24, *fusion.params,
                          neuron.graded, *work, np.empty((frames, m), dtype), flat)
        codes = [part(0)] if len(parts) == 2 else list(_pool().map(part, range(len(parts) - 1)))
        if all(code == OK for code in codes):
            fast._store(neuron, neuron.STATE, work)
            return True
        if NOT_INTEGER in codes:
            return False
    return False


THREADS = 0
"""Threads that run a layer's samples (the compiled loops release the GIL); 0: as many as the
1-minute load average leaves idle cores (at least one).  Measured on 2 shared cores with the
NMNIST-size benchmark at batch 64: at load 1.2 two threads took 34 against one thread's 58 us
per sample-step; at load 9 two were slower than one (171 against 142), as a thread that waits
for a busy core holds up the layer."""
_POOL: list[ThreadPoolExecutor] = []


def threads() -> int:
    """How many threads :func:`run` splits the samples over (see :data:`THREADS`)."""
    if THREADS > 0:
        return THREADS
    cpus = os.cpu_count() or 1
    try:
        busy = os.getloadavg()[0]
    except OSError:  # pragma: no cover - no load average on this platform
        return 1
    return max(1, min(cpus, round(cpus + 1 - busy)))


def _pool() -> ThreadPoolExecutor:
    """One pool for the process, a worker per CPU (idle workers cost nothing)."""
    if not _POOL:
        workers = max(os.cpu_count() or 1, THREADS)
        _POOL.append(ThreadPoolExecutor(workers, thread_name_prefix="slayerc-fused"))
    return _POOL[0]
