"""Layout and scan helpers shared by the neuron dynamics kernels (:mod:`slayerc.runtime.dynamics`).

Time-major integer buffers, parameter views and reductions, and the reverse linear scans that
the backward passes use (see the conventions in :mod:`slayerc.runtime.dynamics`).
"""

from __future__ import annotations

import math

import numpy as np
import torch

from slayerc.errors import DynamicsShapeError, SlayerError  # noqa: F401
from slayerc.ir.target import DECAY_SCALE

P_SCALE = DECAY_SCALE
"""Decay scale: a decay fraction ``α`` is stored as ``4096·α``."""

_F64 = torch.float64


# ----------------------------------------------------------------------------------- helpers


def reset_level(threshold_scaled: float) -> float:
    """Smallest integer ``k`` with ``float32(k) >= float32(threshold_scaled)``.

    lava-dl compares its int64 state with ``θ·S`` (a Python float), which torch evaluates in
    float32.  That comparison is monotone in the integer state, so it equals ``y >= k``.
    """
    f = np.float32(threshold_scaled)
    if not np.isfinite(f):
        return math.inf if f > 0 else -math.inf
    if abs(float(f)) < 2.0**24:
        return float(math.ceil(float(f)))
    below = np.nextafter(f, np.float32(-np.inf), dtype=np.float32)
    mid = (float(below) + float(f)) / 2.0
    k = math.ceil(mid)
    if k == mid and (int(f.view(np.int32)) & 1):  # a tie rounds to the even neighbour
        k += 1
    return float(k)


def param_view(p: torch.Tensor, spatial: tuple[int, ...], what: str = "parameter") -> torch.Tensor:
    """Reshape a scalar, per-channel or per-neuron parameter to broadcast against ``[N, *S]``.

    One element -> 0-d; ``(C,)`` -> ``(C, 1, …, 1)``; ``S`` (or a shape that broadcasts to it,
    such as ``(C, 1, 1)``) -> unchanged.
    """
    if p.numel() == 1:
        return p.reshape(())
    if p.dim() == 1 and len(spatial) >= 1 and p.shape[0] == spatial[0]:
        return p.reshape((spatial[0],) + (1,) * (len(spatial) - 1))
    if p.dim() == len(spatial) and all(a in (1, b) for a, b in zip(p.shape, spatial)):
        return p
    raise DynamicsShapeError(
        f"{what} of shape {list(p.shape)} fits neither one value, one per channel "
        f"({spatial[0] if spatial else '?'}) nor one per neuron {list(spatial)}"
    )


def reduce_to(g: torch.Tensor, view_shape: torch.Size, shape: torch.Size) -> torch.Tensor:
    """Sum a ``[N, *S]`` gradient down to a parameter's broadcast view, then to its shape."""
    lead = g.dim() - len(view_shape)
    dims = list(range(lead)) + [
        lead + i for i, n in enumerate(view_shape) if n == 1 and g.shape[lead + i] != 1
    ]
    if dims:
        g = g.sum(dim=dims, keepdim=True)
    return g.reshape(shape)


def _spatial(x: torch.Tensor) -> tuple[int, ...]:
    if x.dim() < 3:
        raise DynamicsShapeError(
            f"expected an input of at least 3 dimensions [batch, *neurons, time], "
            f"got shape {list(x.shape)}"
        )
    return tuple(x.shape[1:-1])


def is_time_major(x: torch.Tensor) -> bool:
    """Whether ``x`` (``[N, *S, T]``) is a view of time-major storage ``[T, N, *S]``.

    The CUBA path keeps its traces, spikes and synaptic products in this layout, so no transposing
    copy is needed between layers; a ``[N, *S, T]`` view of it behaves like any other tensor.
    """
    return x.dim() >= 2 and x.movedim(-1, 0).is_contiguous()


def time_major_int(x: torch.Tensor, scale: int) -> torch.Tensor:
    """``I(S·x)`` as integer-valued float64, time first: ``[T, N, *S]`` contiguous."""
    out = torch.empty((x.shape[-1],) + tuple(x.shape[:-1]), dtype=_F64, device=x.device)
    return _time_major_int_into(x, scale, out)


def _time_major_int_into(x: torch.Tensor, scale: int, out: torch.Tensor) -> torch.Tensor:
    """:func:`time_major_int` written into the float64 buffer ``out``."""
    # one pass: the product is computed in x's dtype (as I(S·x) requires), then widened
    torch.mul(x.detach().movedim(-1, 0), scale, out=out)
    return out.trunc_()


def state_int(state: torch.Tensor | None, like: torch.Tensor, scale: int) -> torch.Tensor:
    """``I(S·state)`` broadcast to ``like``'s ``[N, *S]`` (zeros when ``state`` is None)."""
    out = torch.zeros(like.shape[:-1], dtype=_F64, device=like.device)
    if state is not None:
        out.copy_(torch.mul(state.detach(), scale).trunc_().expand_as(out))
    return out


def from_time_major(y: torch.Tensor, dtype: torch.dtype, scale: int) -> torch.Tensor:
    """``y_int / S`` in ``dtype``, time last and contiguous (``+0.0`` folds ``-0.0`` to ``0``)."""
    out = torch.empty(y.shape[1:] + y.shape[:1], dtype=dtype, device=y.device)
    out.copy_(y.movedim(0, -1))
    return out.div_(scale).add_(0.0)


def _time_major_out(y: torch.Tensor, dtype: torch.dtype, scale: int) -> torch.Tensor:
    """As :func:`from_time_major` (same values), but a ``[N, *S, T]`` view of ``[T, N, *S]``."""
    out = y.to(dtype, memory_format=torch.contiguous_format, copy=True)
    return out.div_(scale).add_(0.0).movedim(0, -1)


def reverse_scan(g: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
    """``h[t] = a·h[t+1] + g[t]`` (``h[T−1] = g[T−1]``) over the last axis, without a T loop.

    ``a`` is constant in time and broadcasts against ``g[..., 0]`` (real or complex).  One value:
    blocks of at most 128 steps are a matrix product with the Toeplitz matrix
    ``M[k, t] = a^{k−t}`` (``k ≥ t``), chained across blocks (measured 2× faster than the
    doubling scan).  Per channel or per neuron: a log-depth doubling scan.  Both agree with the
    sequential recursion to rounding.
    """
    if a.numel() == 1:
        flat = g.reshape(-1, g.shape[-1])
        return _scan_blocks(flat, a.reshape(()).to(g.dtype)).reshape(g.shape)
    return _scan_doubling(g, a)


def _powers(a: torch.Tensor, n: int) -> torch.Tensor:
    """``[a^0, a^1, …, a^{n−1}]`` along a new last axis."""
    reps = a.unsqueeze(-1).expand(a.shape + (n - 1,))
    ones = torch.ones(a.shape + (1,), dtype=a.dtype, device=a.device)
    return torch.cat([ones, torch.cumprod(reps, dim=-1)], dim=-1)


def _scan_blocks(g: torch.Tensor, a: torch.Tensor, block: int = 128) -> torch.Tensor:
    """Blocked Toeplitz scan of ``g`` ``[M, T]`` with a 0-d ``a``."""
    n = g.shape[-1]
    size = min(n, block)
    pw = _powers(a, size + 1)  # [size+1]
    k = torch.arange(size, device=g.device)
    lag = k.unsqueeze(1) - k.unsqueeze(0)  # k - t
    mat = pw[..., lag.clamp(min=0)] * (lag >= 0)  # [..., size, size]
    out = torch.empty_like(g)
    nxt = None
    for start in range(((n - 1) // size) * size, -1, -size):
        stop = min(start + size, n)
        m = stop - start
        h = torch.matmul(g[..., start:stop], mat[..., :m, :m])
        if nxt is not None:
            carry = pw[..., 1 : m + 1].flip(-1)  # a^{m−j}
            h += nxt.unsqueeze(-1) * carry
        out[..., start:stop] = h
        nxt = h[..., 0]
    return out


def _scan_doubling(g: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
    """Kogge–Stone scan: ``⌈log2 T⌉`` vectorised steps, any broadcastable ``a``."""
    h = g.clone()
    n = h.shape[-1]
    ak = a.to(g.dtype).unsqueeze(-1) if a.dim() > 0 else a.to(g.dtype)
    k = 1
    while k < n:
        h[..., : n - k] += ak * h[..., k:]
        ak = ak * ak
        k *= 2
    return h


def _scan_time_major(g: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
    """:func:`reverse_scan` of ``g`` ``[N, *S, T]``, computed on (and returning) a time-major view.

    One decay value: the Toeplitz blocks of :func:`_scan_blocks` applied from the left to
    ``g`` as a ``[T, M]`` matrix, so time-major gradients need no transposing copy.  Blocks of
    at most 48 steps skip most of the zero half of the triangular matrix (measured 1.4x faster
    than one 100-step block).
    """
    gt = g.movedim(-1, 0)
    if not gt.is_contiguous():
        gt = gt.contiguous()
    if a.numel() != 1:
        return _scan_doubling_tm(gt, a).movedim(0, -1)
    n = gt.shape[0]
    size = -(-n // -(-n // 48))  # ceil(n / number of blocks of at most 48)
    flat = _toeplitz_tm(gt.reshape(n, -1), _toeplitz(a.reshape(()).to(g.dtype), size))
    return flat.reshape(gt.shape).movedim(0, -1)


def _toeplitz(a: torch.Tensor, size: int) -> torch.Tensor:
    """``M[t, k] = a^{k−t}`` for ``k ≥ t`` (else 0): ``h = M @ g`` is one block of the scan."""
    pw = _powers(a, size)
    k = torch.arange(size, device=a.device)
    lag = k.unsqueeze(0) - k.unsqueeze(1)  # k - t
    return pw[lag.clamp(min=0)] * (lag >= 0)


def _toeplitz_tm(g: torch.Tensor, mat: torch.Tensor) -> torch.Tensor:
    """Blocked reverse scan of time-major ``g`` ``[T, M]`` with the block matrix ``mat``."""
    n, size = g.shape[0], mat.shape[0]
    if n <= size:
        return torch.mm(mat[:n, :n], g)
    a = mat[0, 1]
    out = torch.empty_like(g)
    nxt = None
    for start in range(((n - 1) // size) * size, -1, -size):
        stop = min(start + size, n)
        h = torch.mm(mat[: stop - start, : stop - start], g[start:stop], out=out[start:stop])
        if nxt is not None:
            carry = _powers(a, stop - start + 1)[1:].flip(0)  # a^{m−j}
            h.addr_(carry, nxt)
        nxt = h[0]
    return out


def _scan_doubling_tm(g: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
    """Kogge–Stone scan over the first axis of time-major ``g``; ``a`` broadcasts to ``g[0]``."""
    h = g.clone()
    n = h.shape[0]
    ak = a.to(g.dtype)
    k = 1
    while k < n:
        h[: n - k] += ak * h[k:]
        ak = ak * ak
        k *= 2
    return h


def _prev(y: torch.Tensor, init: torch.Tensor | None) -> torch.Tensor:
    """``y[t−1]`` along the last axis, with ``init`` (or 0) at ``t = 0``."""
    first = torch.zeros_like(y[..., :1]) if init is None else init.to(y.dtype).unsqueeze(-1)
    return torch.cat([first.expand(y.shape[:-1] + (1,)), y[..., :-1]], dim=-1)


def _decay_keep(decay: torch.Tensor, spatial: tuple[int, ...], what: str,
                exact: bool = False) -> torch.Tensor:
    """``(4096 − round(D)) / 4096`` as an exact float64 view (``exact``: ``D`` unrounded, for
    neurons whose IR node keeps its decays exact)."""
    d = param_view(decay.detach(), spatial, what).to(_F64)
    return (P_SCALE - (d if exact else d.round())) / P_SCALE
