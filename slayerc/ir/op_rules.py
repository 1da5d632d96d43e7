"""Shared shape and attribute rules of the IR ops (:mod:`slayerc.ir.ops`)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from slayerc.ir.core import Graph, Op, ParamRef, ShapeProblem, is_scalar

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
