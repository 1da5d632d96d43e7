"""Shift a tensor along its (last) time axis (lava-dl ``utils/time/shift.py``)."""

from __future__ import annotations

from slayerc.runtime import axon as _axon

__all__ = ["shift"]


def shift(input, shift_val, sampling_time=1):
    """Shift ``input`` in time by ``int(shift_val/sampling_time)`` steps with zero fill.

    ``shift_val`` is a number (the same shift everywhere) or a tensor with one value per neuron
    (``prod(input.shape[1:-1])`` values) or per channel.  Positive values delay, negative values
    advance.  The gradient with respect to ``input`` is the inverse shift.

    >>> import torch
    >>> shift(torch.tensor([[[1., 2., 3.]]]), 1)
    tensor([[[0., 1., 2.]]])
    """
    return _axon.shift(input, shift_val, sampling_time)
