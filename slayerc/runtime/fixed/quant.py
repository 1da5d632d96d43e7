"""Integer views of IR attributes, and the weight/decay arithmetic netx and Lava apply on load.

The IR holds slayer units (floats).  The fixed-point runtime needs the hardware integers:
weights and thresholds ×64, decays ×4096.  :func:`grid` converts and refuses values that are not
on the grid (a graph that is not quant-legal).  :func:`netx_dense_weights` reproduces what a
netx ``Dense`` does to a weight matrix before Lava multiplies with it (``optimize_weight_bits``
in netx, then ``clip_weights`` and ``truncate_weights`` in Lava's bit-accurate Dense), and
:func:`lava_rf_decays` reproduces the sin/cos decay round trip through period and alpha that netx
and Lava's ``RF`` process perform.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from slayerc.errors import RuntimeSimError
from slayerc.ir.core import Graph, Op, ParamRef
from slayerc.ir.target import DECAY_SCALE

W_SCALE = 64
"""Weights, thresholds and biases: slayer value × 64 = netx integer (``vThMant``, weight)."""
P_SCALE = DECAY_SCALE
"""Decays: slayer fraction × 4096 = netx integer (``iDecay``, ``sinDecay``...)."""
TOL = 1e-4
"""How far (in integer units) a value may sit from the grid (float32 storage noise)."""


def grid(g: Graph, node: Op, attr: str, unit: int, lo: float | None = None,
         hi: float | None = None) -> np.ndarray:
    """``attr`` of ``node`` as integers ``value × unit`` (float64 array, scalar shape ``()``).

    Raises :class:`RuntimeSimError` naming the node when the value is off the grid or out of
    ``[lo, hi]`` (integer units).
    """
    raw = getattr(node, attr)
    value = g.value(raw)
    if value is None:
        raise RuntimeSimError(f"{node.describe()}: attribute '{attr}' is required by the "
                              "fixed-point runtime")
    where = f"@{raw.name}" if isinstance(raw, ParamRef) else repr(raw)
    ints = np.asarray(value, dtype=np.float64) * unit
    rounded = np.rint(ints)
    if ints.size and float(np.max(np.abs(ints - rounded))) > TOL:
        raise RuntimeSimError(f"{node.describe()}: '{attr}' ({where}) is not on the 1/{unit} "
                              "grid of the fixed-point target, so the graph is not quant-legal; "
                              "run legalize-quant first")
    if rounded.size and lo is not None and float(rounded.min()) < lo:
        raise RuntimeSimError(f"{node.describe()}: '{attr}' ({where}) = {rounded.min() / unit!r}"
                              f" is below the fixed-point range minimum {lo / unit!r}")
    if rounded.size and hi is not None and float(rounded.max()) > hi:
        raise RuntimeSimError(f"{node.describe()}: '{attr}' ({where}) = {rounded.max() / unit!r}"
                              f" is above the fixed-point range maximum {hi / unit!r}")
    return rounded


def per_neuron(arr: np.ndarray, shape: tuple[int, ...]) -> np.ndarray | float:
    """Broadcastable form of a neuron parameter: scalar, per channel ``(C,)`` or per neuron.

    The result broadcasts against a state of shape ``[N, *shape]``.
    """
    if arr.size == 1:
        return float(arr.reshape(-1)[0])
    if arr.shape == shape:
        return arr
    if arr.shape == (shape[0],):
        return arr.reshape((shape[0],) + (1,) * (len(shape) - 1))
    raise RuntimeSimError(f"parameter of shape {list(arr.shape)} fits neither the channels "
                          f"nor the neurons of shape {list(shape)}")


@dataclass(frozen=True)
class DenseWeights:
    """A dense weight matrix as Lava's bit-accurate Dense holds it after netx loaded it.

    ``a_out = (weight · s) << weight_exp`` (a right shift, i.e. floor, when negative).
    """

    weight: np.ndarray
    weight_exp: int


def netx_dense_weights(w_int: np.ndarray) -> DenseWeights:
    """netx ``optimize_weight_bits`` then Lava ``clip_weights`` + ``truncate_weights``.

    For weights in [-256, 254] this is lossless except for one case that is reproduced on
    purpose: an all-negative matrix whose scaled minimum is -256 is clipped to -255 (and the
    truncation may then zero small weights), as Lava does.
    """
    w = np.asarray(w_int, dtype=np.int64)
    if not w.size or (w.max() == 0 and w.min() == 0):
        return DenseWeights(np.zeros_like(w), 0)  # netx crashes on an all-zero matrix
    scaled, nwb, wexp = _netx_optimize(w)
    return DenseWeights(_lava_truncate(_lava_clip(scaled), nwb), wexp)


def _netx_optimize(w: np.ndarray) -> tuple[np.ndarray, int, int]:
    """netx ``utils.optimize_weight_bits``: returns (scaled weights, num bits, exponent)."""
    max_w, min_w = int(w.max()), int(w.min())
    if (max_w > 254 and min_w < 0) or (min_w < -256 and max_w > 0):
        w = np.clip(w, -256, 254)
        max_w, min_w = int(w.max()), int(w.min())
    if max_w < 0:
        scale, signed = -256 / min_w, 0
    elif min_w >= 0:
        scale, signed = 255 / max_w, 0
    else:
        pos = 127 / max_w if max_w else np.inf
        scale, signed = min(pos, -128 / min_w), 1
    scale_bits = int(np.floor(np.log2(scale))) + signed
    n = 8
    low = int(np.bitwise_or.reduce(w, axis=None)) if w.size else 0  # w % 2^n == 0 for all w
    while n > 0 and low % (1 << n):  # iff the OR of all w (two's complement) is, too
        n -= 1
    n -= signed
    if scale_bits < 0:
        raise RuntimeSimError(f"weights in [{min_w}, {max_w}] do not fit netx's 8-bit synapse")
    return w << scale_bits, 8 - scale_bits - n, -scale_bits


def _sign_mode(w: np.ndarray) -> str:
    """Lava ``determine_sign_mode`` (note: max <= 0 is inhibitory, unlike netx's max < 0)."""
    if w.min() >= 0:
        return "exc"
    return "inh" if w.max() <= 0 else "mixed"


def _lava_clip(w: np.ndarray) -> np.ndarray:
    mode = _sign_mode(w)
    if mode == "inh":
        return -np.clip(-w, 0, 255)
    return np.clip(w, -256 if mode == "mixed" else 0, 255)


def _lava_truncate(w: np.ndarray, num_weight_bits: int) -> np.ndarray:
    mode = _sign_mode(w)
    bits = 8 - num_weight_bits + (mode == "mixed")
    if mode == "inh":
        return -(((-w) >> bits) << bits)
    return (w >> bits) << bits


def lava_rf_decays(sin_int: np.ndarray, cos_int: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The integer sin/cos decays Lava's ``RF``/``RF_IZ`` end up with for netx's ``sinDecay``.

    netx turns them into ``period``/``alpha`` (``slayer.neuron.rf.neuron_params``) and Lava's
    process recomputes ``np.int32((1 − alpha)·sin(2π/period)·4096)``.  Mathematically that is
    exactly ``sinDecay``, so the truncation keeps it or takes 1 LSB off depending on the last-ULP
    rounding of numpy's arctan2/sin/cos, which varies with the numpy version and the CPU's SIMD
    path (Lava's own results differ between machines).  Same float64 expressions, same order;
    see docs/fixed-point.md for how often this disagrees with Lava on numpy 1.26 + AVX-512.
    """
    return _rf_round_trip(np.asarray(sin_int, np.float64), np.asarray(cos_int, np.float64))


def _rf_round_trip(sin_int: Any, cos_int: Any) -> tuple[Any, Any]:
    sin_decay = sin_int / P_SCALE
    cos_decay = cos_int / P_SCALE
    decay = 1 - np.sqrt(sin_decay ** 2 + cos_decay ** 2)
    frequency = np.arctan2(sin_decay, cos_decay) / 2 / np.pi
    period = 1 / frequency
    lava_sin = (1 - decay) * np.sin(np.pi * 2 * 1 / period)
    lava_cos = (1 - decay) * np.cos(np.pi * 2 * 1 / period)
    return (np.asarray(np.int32(lava_sin * (1 << 12)), np.float64),
            np.asarray(np.int32(lava_cos * (1 << 12)), np.float64))
