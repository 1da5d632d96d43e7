"""Integer helpers of ``slayer.utils.int_utils``."""

from __future__ import annotations

import torch


def right_shift_to_zero(x: torch.Tensor, bits: int) -> torch.Tensor:
    """Arithmetic right shift that truncates toward zero: ``sign(x)·(|x| >> bits)``.

    >>> right_shift_to_zero(torch.tensor([-4097, 4097]), 12)
    tensor([-1,  1])
    """
    return torch.sign(x) * (torch.abs(x) >> bits)
