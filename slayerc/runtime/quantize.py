"""Straight-through quantizers (``spec/netx-hdf5.md`` §4): the forward rounds to a grid, the
backward passes the gradient unchanged, as slayer's ``utils.quantize`` does."""

from __future__ import annotations

import torch


class _Quantize(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, step, to_int):
        return to_int(x / step) * step

    @staticmethod
    def backward(ctx, grad):
        return grad, None, None


def ste_round(x: torch.Tensor, step: float = 1.0) -> torch.Tensor:
    """``round(x/step)·step`` (half to even, as ``torch.round``); straight-through gradient."""
    return _Quantize.apply(x, step, torch.round)


def ste_floor(x: torch.Tensor, step: float = 1.0) -> torch.Tensor:
    """``floor(x/step)·step``; straight-through gradient."""
    return _Quantize.apply(x, step, torch.floor)
