"""What the lava-dl dynamics wrappers share."""

from __future__ import annotations

import torch


def fired(spike: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """1 where ``spike`` is positive, in ``like``'s dtype (lava-dl's persistent-state rule)."""
    return (spike > 0).to(like.dtype)


def as_threshold(threshold) -> float | None:
    """lava-dl's "no reset" (None, or a negative threshold) as the kernels' None."""
    if threshold is None:
        return None
    value = float(threshold)
    return None if value < 0 else value
