"""Finite impulse response filters (``slayer.utils.filter.FIR``, ``FIRBank``)."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from .conv import conv

__all__ = ["FIR", "FIRBank"]


class FIR(torch.nn.Module):
    """A fixed (not learnable) FIR filter along time: ``y = conv(x, filter, sampling_time)``.

    ``fir_response`` gives the impulse response; if None it is ``exp(−k/time_constant)`` for
    ``k = 0 … length−1``.  The response is the buffer ``filter`` (state-dict key ``filter``).
    """

    def __init__(self, fir_response=None, time_constant=1, length=20, sampling_time=1):
        super().__init__()
        if fir_response is None:
            fir_response = np.exp(-np.arange(length) / time_constant)
        response = torch.as_tensor(np.asarray(fir_response), dtype=torch.float32)
        self.register_buffer("filter", response)
        self.sampling_time = sampling_time

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        """Filter ``input`` (time last); the output has its shape (a 1-D input becomes 2-D)."""
        return conv(input, self.filter, self.sampling_time)


class FIRBank(torch.nn.Conv3d):
    """A bank of ``num_filter`` learnable FIR filters of ``filter_length`` (in time units).

    An input ``[N, C, T]`` (or ``[N, *dims, T]``) gives ``[N, num_filter·C, T]``: channel
    ``f·C + c`` is input channel ``c`` through filter ``f``, times ``sampling_time``.  The weight
    is a Conv3d weight ``[num_filter, 1, 1, 1, K]`` (``K = filter_length/sampling_time`` taps,
    stored time-reversed, so ``impulse_response`` reads it back flipped); ``scale`` multiplies
    the default Conv3d initialisation.
    """

    def __init__(self, num_filter, filter_length, sampling_time=1, scale=1):
        taps = int(filter_length / sampling_time)
        super().__init__(1, num_filter, (1, 1, taps), bias=False)
        self.sampling_time = sampling_time
        self.pad = torch.nn.ConstantPad3d((taps - 1, 0, 0, 0, 0, 0), 0)
        if scale != 1:
            with torch.no_grad():
                self.weight.mul_(scale)

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        """Filter every input channel with every filter of the bank."""
        out_shape = [input.shape[0], -1, *input.shape[2:]]
        x = input.reshape(input.shape[0], 1, 1, -1, input.shape[-1])
        return (F.conv3d(self.pad(x), self.weight) * self.sampling_time).reshape(out_shape)

    @property
    def num_filter(self) -> int:
        """Number of filters in the bank."""
        return self.out_channels

    @property
    def filter_length(self) -> int:
        """Number of taps of each filter."""
        return self.kernel_size[2]

    @property
    def impulse_response(self) -> np.ndarray:
        """``[num_filter, taps]`` numpy array: each filter's response to a unit impulse."""
        return self.weight.detach().reshape(self.out_channels, -1).cpu().numpy()[:, ::-1]
