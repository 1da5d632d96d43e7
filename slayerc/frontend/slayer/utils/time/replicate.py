"""Replicate a tensor along a new time axis (lava-dl ``utils/time/replicate.py``)."""

from __future__ import annotations

import torch

__all__ = ["replicate"]


def replicate(input: torch.Tensor, num_steps: int) -> torch.Tensor:
    """``input`` repeated ``num_steps`` times along a new last (time) axis, any dtype.

    >>> replicate(torch.tensor([1, 2]), 3)
    tensor([[1, 1, 1],
            [2, 2, 2]])
    """
    return input.unsqueeze(-1).expand(*input.shape, int(num_steps)).contiguous()
