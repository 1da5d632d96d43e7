"""Optional numba path: the neuron recurrences as compiled integer loops over a whole sequence.

The numpy kernels of ``neurons.py`` stay the reference; this module runs the same arithmetic
in int64 inside one compiled call per layer (time loop, batch and neurons in compiled code,
state in local arrays), Lava's way: ``tz(y·m / 4096)`` as ``sign(p)·(|p| >> 12)`` with
``p = y·m``, the 24-bit current wrap, the ±(2^23 − 1) clips, ``floor(s / 64)`` as ``s >> 6``.
It is used when numba imports and ``SLAYERC_NO_NUMBA`` is not set to a non-empty value other
than ``0``; :func:`backend` names the path that runs.  A kernel type without a compiled form
(or a subclass this module does not know) falls back to numpy.

Inputs arrive as integer-valued float64 ``[T, N, *shape]`` arrays (the runtime's signals) and
outputs are written into float64 arrays of the same shape, so the rest of the runtime is
unchanged.  Integers stay exact: LIF/RF states are below 2^24, decay multipliers at most 2^12
in magnitude, so every product fits easily in int64; the float64 reference is exact in the
same range (below 2^53), which is where the two paths are compared.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from slayerc.ir.target import DECAY_SCALE
from slayerc.runtime import neurons as families
from slayerc.runtime.fixed import neurons as nk

try:  # pragma: no cover - depends on the environment
    import numba
except ImportError:  # pragma: no cover
    numba = None

_DISABLED = os.environ.get("SLAYERC_NO_NUMBA", "") not in ("", "0")
AVAILABLE = numba is not None
"""numba imported."""
_state = {"enabled": AVAILABLE and not _DISABLED}


def enabled() -> bool:
    """Whether neuron sequences run compiled (numba present and not disabled)."""
    return _state["enabled"]


def set_enabled(on: bool) -> bool:
    """Switch the compiled path on or off (tests, benchmarks); returns the previous setting.

    Switching on without numba installed keeps it off.
    """
    old = _state["enabled"]
    _state["enabled"] = bool(on) and AVAILABLE
    return old


def backend() -> str:
    """``"numba <version>"`` or ``"numpy (...)"``: the path neuron sequences take."""
    if enabled():
        return f"numba {numba.__version__}"
    if not AVAILABLE:
        return "numpy (numba not installed)"
    return "numpy (SLAYERC_NO_NUMBA set)" if _DISABLED else "numpy (numba switched off)"


def _identity(f: Any) -> Any:
    return f


_jit = numba.njit(cache=True, nogil=True) if AVAILABLE else _identity
_jit_inline = numba.njit(cache=True, nogil=True, inline="always") if AVAILABLE else _identity
"""For small helpers called in hot loops: inlined into the caller's numba IR (a separately
compiled call is not always inlined by LLVM; measured 4 % on the fused conv layers)."""

W = 1 << 23          # the LIF current wraps at 24 bits
LIM = (1 << 23) - 1  # LIF voltage and RF states are clipped to ±LIM


@_jit
def _tz(p: int) -> int:
    """``trunc(p / 4096)``: Lava's ``sign(p)·(|p| >> 12)``."""
    return p >> 12 if p >= 0 else -((-p) >> 12)


@_jit
def _clip(x: int) -> int:
    return LIM if x > LIM else (-LIM if x < -LIM else x)


@_jit
def _cuba(a, mu, mv, vth, bias, graded, alif, th0, th_step, mth, mr, su, sv, sth, sr,
          out):  # noqa: ANN001
    """CUBA (``alif`` False) or ALIF over ``a[T, N, M]`` from the state ``su, sv, sth, sr``
    (``[N, M]``, updated in place); see ``neurons.Cuba``/``Alif``."""
    steps, n, m = a.shape
    for i in range(n):
        u = su[i]
        v = sv[i]
        th = sth[i]
        r = sr[i]
        for t in range(steps):
            at = a[t, i]
            ot = out[t, i]
            for j in range(m):
                uu = _tz(u[j] * mu[j]) + np.int64(at[j])
                if uu > W:
                    uu -= 2 * W
                if uu <= -W:
                    uu += 2 * W
                vv = _clip(_tz(v[j] * mv[j]) + uu + bias[j])
                u[j] = uu
                if alif:
                    rr = _tz(r[j] * mr[j])
                    tt = _tz((th[j] - th0[j]) * mth[j]) + th0[j]
                    spike = vv >= tt + rr
                    if spike:
                        rr += 2 * tt
                        tt += th_step[j]
                    r[j] = rr
                    th[j] = tt
                    v[j] = vv
                else:
                    spike = vv > vth[j]
                    v[j] = 0 if spike else vv
                if spike:
                    ot[j] = vv if graded else 1.0
                else:
                    ot[j] = 0.0


@_jit
def _resonator(a, b, cs, sn, vth, graded, mode, adaptive, th0, th_step, mth, mr, sre, sim,
               sth, sr, out):  # noqa: ANN001
    """RF (mode 0), RF_IZ (1), ADRF (2), ADRF_IZ (3) over ``a, b[T, N, M]`` from the state
    ``sre, sim, sth, sr`` (``[N, M]``, updated in place)."""
    steps, n, m = a.shape
    for i in range(n):
        re = sre[i]
        im = sim[i]
        th = sth[i]
        r = sr[i]
        for t in range(steps):
            at = a[t, i]
            bt = b[t, i]
            ot = out[t, i]
            for j in range(m):
                x, y = re[j], im[j]
                nre = _clip(_tz(x * cs[j]) - _tz(y * sn[j]) + np.int64(at[j]))
                nim = _clip(_tz(x * sn[j]) + _tz(y * cs[j]) + np.int64(bt[j]))
                limit = vth[j]
                rr = 0
                tt = 0
                if adaptive:
                    rr = _tz(r[j] * mr[j])
                    tt = _tz((th[j] - th0[j]) * mth[j]) + th0[j]
                    limit = tt + rr
                if mode == 1 or mode == 3:
                    spike = nim >= limit
                else:
                    spike = nre >= limit and nim >= 0 and y < 0
                if adaptive:
                    if spike:
                        rr += 2 * tt
                        tt += th_step[j]
                    r[j] = rr
                    th[j] = tt
                if spike:
                    ot[j] = (nim if mode == 1 else nre) if graded else 1.0
                else:
                    ot[j] = 0.0
                if mode == 1 and spike:
                    re[j] = 0
                    im[j] = vth[j] - 1
                else:
                    re[j] = nre
                    im[j] = nim


@_jit
def _sigma_delta(a, vth, bias, sigma_on, relu, cum_error, ssigma, sact, sres, serr,
                 out):  # noqa: ANN001
    """SigmaDelta (``sigma_on``) or Delta over ``a[T, N, M]``, output ``floor(s / 64)``, from
    the state ``ssigma, sact, sres, serr`` (``[N, M]``, updated in place)."""
    steps, n, m = a.shape
    for i in range(n):
        sigma = ssigma[i]
        act = sact[i]
        res = sres[i]
        err = serr[i]
        for t in range(steps):
            at = a[t, i]
            ot = out[t, i]
            for j in range(m):
                x = np.int64(at[j])
                if sigma_on:
                    sg = sigma[j] + x
                    sigma[j] = sg
                    ac = sg + bias[j]
                    if relu and ac < 0:
                        ac = 0
                else:
                    ac = x
                d = ac - act[j] + res[j]
                s = 0
                if cum_error:
                    e = err[j] + d
                    if abs(e) >= vth[j]:
                        s = d
                    err[j] = 0 if s != 0 else e
                elif abs(d) >= vth[j]:
                    s = d
                res[j] = d - s
                act[j] = ac
                ot[j] = s >> 6


@_jit
def _sigma(a, sacc, out):  # noqa: ANN001
    """Sigma: the running sum over time (exact in int64), from ``sacc`` (``[N, M]``)."""
    steps, n, m = a.shape
    for i in range(n):
        acc = sacc[i]
        for t in range(steps):
            at = a[t, i]
            ot = out[t, i]
            for j in range(m):
                acc[j] += np.int64(at[j])
                ot[j] = acc[j]


def _ints(value: Any, shape: tuple[int, ...], scale: int = 1) -> np.ndarray:
    """A scalar or broadcastable parameter as a flat int64 ``[M]`` array (``value × scale``)."""
    arr = np.broadcast_to(np.asarray(value, dtype=np.float64) * scale, shape)
    out = np.rint(arr).astype(np.int64).reshape(-1)
    return np.ascontiguousarray(out)


def _flat(arr: np.ndarray, m: int) -> np.ndarray:
    """``[T, N, *shape]`` float64 as a C-contiguous ``[T, N, M]`` view or copy."""
    return np.ascontiguousarray(arr, dtype=np.float64).reshape(arr.shape[0], arr.shape[1], m)


def _adaptive(k: Any, shape: tuple[int, ...]) -> tuple[np.ndarray, ...]:
    return (_ints(k.th0, shape), _ints(k.th_step, shape), _ints(k.fth, shape, DECAY_SCALE),
            _ints(k.fr, shape, DECAY_SCALE))


def _load_state(k: nk.NeuronKernel, names: tuple[str, ...], m: int) -> list[np.ndarray]:
    """The kernel's state arrays (``[N, *shape]`` integer-valued float64) as int64 ``[N, M]``."""
    return [np.ascontiguousarray(np.rint(getattr(k, a)), dtype=np.float64)
            .astype(np.int64).reshape(-1, m) for a in names]


def _store(k: nk.NeuronKernel, names: tuple[str, ...], arrs: list[np.ndarray]) -> None:
    """Write the compiled loop's final state back into the kernel's arrays (exact)."""
    for a, arr in zip(names, arrs):
        dst = getattr(k, a)
        dst[...] = arr.reshape(dst.shape)


def _spare(states: list[np.ndarray], want: int) -> list[np.ndarray]:
    """Pad with zero arrays for the state a mode does not use (ALIF's θ, r for CUBA)."""
    like = states[0]
    return states + [np.zeros_like(like) for _ in range(want - len(states))]


def run_cuba(k: nk.Cuba, a: np.ndarray, b: np.ndarray | None, out: np.ndarray) -> None:
    shape = k.shape
    m = int(np.prod(shape, dtype=np.int64))
    alif = type(k) is nk.Alif
    if alif:
        adapt = _adaptive(k, shape)
    else:
        z = np.zeros(m, np.int64)
        adapt = (z, z, z, z)
    states = _load_state(k, k.STATE, m)
    _cuba(_flat(a, m), _ints(k.fu, shape, DECAY_SCALE), _ints(k.fv, shape, DECAY_SCALE),
          _ints(k.vth, shape), _ints(k.bias, shape), k.graded, alif, *adapt,
          *_spare(states, 4), out.reshape(out.shape[0], out.shape[1], m))
    _store(k, k.STATE, states)


_RES_MODES = {nk.RF: 0, nk.RFIz: 1, nk.Adrf: 2, nk.AdrfIz: 3}


def run_resonator(k: nk._Resonator, a: np.ndarray, b: np.ndarray | None,
                   out: np.ndarray) -> None:
    assert b is not None
    shape = k.shape
    m = int(np.prod(shape, dtype=np.int64))
    mode = _RES_MODES[type(k)]
    adaptive = mode >= 2
    if adaptive:
        adapt = _adaptive(k, shape)
    else:
        z = np.zeros(m, np.int64)
        adapt = (z, z, z, z)
    states = _load_state(k, k.STATE, m)
    _resonator(_flat(a, m), _flat(b, m), _ints(k.cs, shape, DECAY_SCALE),
               _ints(k.sn, shape, DECAY_SCALE),
               _ints(k.vth, shape), k.graded, mode, adaptive, *adapt, *_spare(states, 4),
               out.reshape(out.shape[0], out.shape[1], m))
    _store(k, k.STATE, states)


def run_sigma_delta(k: nk.SigmaDelta, a: np.ndarray, b: np.ndarray | None,
                     out: np.ndarray) -> None:
    shape = k.shape
    m = int(np.prod(shape, dtype=np.int64))
    states = _load_state(k, k.STATE, m)
    _sigma_delta(_flat(a, m), _ints(k.vth, shape), _ints(k.bias, shape),
                 type(k) is nk.SigmaDelta, k.relu, k.cum_error, *states,
                 out.reshape(out.shape[0], out.shape[1], m))
    _store(k, k.STATE, states)


def run_sigma(k: nk.Sigma, a: np.ndarray, b: np.ndarray | None, out: np.ndarray) -> None:
    m = int(np.prod(k.shape, dtype=np.int64))
    states = _load_state(k, k.STATE, m)
    _sigma(_flat(a, m), *states, out.reshape(out.shape[0], out.shape[1], m))
    _store(k, k.STATE, states)


OWN_RUNNERS = frozenset({run_cuba, run_resonator, run_sigma_delta, run_sigma})
"""The compiled loops of this module: they continue from the kernel's state (``STATE``)."""


def run(k: nk.NeuronKernel, a: np.ndarray, b: np.ndarray | None, out: np.ndarray,
        carry: bool = False) -> bool:
    """Run ``k`` over the sequence ``a`` (``b``) into ``out`` compiled, if possible.

    The loop starts from the kernel's state (:meth:`~neurons.NeuronKernel.start` first) and
    leaves its final state there, so a sequence can run in chunks.  ``out`` must be a
    C-contiguous float64 array of ``a``'s shape.  Returns False (and leaves ``out`` alone) when
    the compiled path is off or the family registers no ``numba`` loop; with ``carry`` (a
    later chunk) also for a loop of another module, which may not continue from the state.
    """
    runner = families.kernel(k.node.OP, "numba") if enabled() else None
    if runner is None or not out.flags.c_contiguous or out.dtype != np.float64:
        return False
    if carry and runner not in OWN_RUNNERS:
        return False
    if a.shape[0] and a.shape[1] and out.size:
        runner(k, a, b, out)
    return True


@_jit
def _sparse_mac(x, w, out):  # noqa: ANN001
    """``out = x @ w`` over the non-zero inputs only (spikes are sparse): float64 sums of
    integers, exact below 2^53 whatever the order.  A local accumulator lets LLVM vectorise."""
    rows, n_in = x.shape
    n_out = w.shape[1]
    acc = np.empty(n_out, w.dtype)
    idx = np.empty(n_in, np.int64)
    for r in range(rows):
        k = 0
        for i in range(n_in):
            if x[r, i] != 0.0:
                idx[k] = i
                k += 1
        acc[:] = 0.0
        for q in range(k):
            i = idx[q]
            xi = x[r, i]
            if xi == 1.0:
                for o in range(n_out):
                    acc[o] += w[i, o]
            else:
                for o in range(n_out):
                    acc[o] += xi * w[i, o]
        for o in range(n_out):
            out[r, o] = acc[o]


@_jit
def _within_unit(x):  # noqa: ANN001
    for v in x.flat:
        if v > 1.0 or v < -1.0:
            return False
    return True


def within_unit(x: np.ndarray) -> bool:
    """Whether every entry of ``x`` lies in [−1, 1] (one pass, stops at the first that does not)."""
    if not enabled():
        return bool(float(np.abs(x).max(initial=0.0)) <= 1)
    return bool(_within_unit(np.ascontiguousarray(x)))


SPARSE_MAX_WORK = 1 << 27
"""Largest ``rows·in·out`` for which :func:`matmul` accumulates compiled instead of via BLAS.

Small products (batch 1) lose to BLAS's thread start-up, and the sparse loop touches only the
rows of the weights that spiked; large batched products are left to a multi-threaded GEMM.
"""


def matmul(flat: np.ndarray, w: np.ndarray) -> np.ndarray | None:
    """``flat @ w`` (``[R, I] @ [I, O]``) compiled for small products, else None.

    Every term is an integer and every partial sum is exact while below 2^53 for float64 ``w``
    (as the BLAS path), or below 2^24 for float32 ``w``, which callers pass only for 0/1 spikes
    and weights whose column sums of ``|w|`` stay below 2^24; so the result does not depend on
    the summation order.  Returned as float64.
    """
    if not enabled() or flat.size * w.shape[1] > SPARSE_MAX_WORK:
        return None
    out = np.empty((flat.shape[0], w.shape[1]), w.dtype)
    _sparse_mac(np.ascontiguousarray(flat, dtype=np.float64), w, out)
    return out.astype(np.float64, copy=False)
