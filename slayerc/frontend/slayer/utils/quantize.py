"""Quantization helpers of ``slayer.utils`` (spec/netx-hdf5.md §4): straight-through rounding."""

from __future__ import annotations

from enum import IntEnum, unique

import torch

from slayerc.runtime.quantize import ste_floor, ste_round


@unique
class MODE(IntEnum):
    """Quantization mode: ``ROUND`` (0, half to even as ``torch.round``) or ``FLOOR`` (1)."""

    ROUND = 0
    FLOOR = 1


def quantize(input: torch.Tensor, step: float = 1, mode: MODE = MODE.ROUND) -> torch.Tensor:
    """``round(x/step)·step`` (``floor`` with ``MODE.FLOOR``); straight-through gradient.

    >>> quantize(torch.tensor([0.3, 0.8]), step=0.5)
    tensor([0.5000, 1.0000])
    """
    if mode == MODE.ROUND:
        return ste_round(input, step)
    if mode == MODE.FLOOR:
        return ste_floor(input, step)
    raise ValueError(f"quantization mode {mode!r} is not one of {list(MODE)}")


def quantize_hook_fx(
    x: torch.Tensor, scale: int = 1 << 6, num_bits: int = 8, descale: bool = False
) -> torch.Tensor:
    """Synapse pre-hook: step ``2/scale``, clamped to ``[−2·2^bits, 2·(2^bits − 1)]/scale``.

    That is ``[−512, 510]/64`` for 8 bits, twice the range of a neuron's ``quantize_8bit``
    (lava-dl behaviour).  ``descale=True`` returns the integers (values × ``scale``).
    """
    lo, hi = -2 * (1 << num_bits), 2 * ((1 << num_bits) - 1)
    q = quantize(x, step=2 / scale).clamp(lo / scale, hi / scale)
    return q * scale if descale else q
