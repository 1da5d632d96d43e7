"""Convolution and correlation in time (``slayer.utils.filter.conv``/``corr``).

For a signal ``x`` (time last) and a filter ``h`` of length ``K``, with sampling time ``Ts``:

* ``conv``: ``y[t] = Ts · Σ_{k=0}^{K-1} h[k] · x[t − k]`` (causal; ``x[t] = 0`` before 0),
  i.e. ``np.convolve(x, h)[:T] · Ts``.
* ``corr``: ``y[t] = Ts · Σ_{k=0}^{K-1} h[k] · x[t + k]`` (anti-causal; ``x[t] = 0`` after T−1),
  i.e. ``np.convolve(x, h[::-1])[K-1:] · Ts``.

The output has the input's shape.  ``corr`` is the adjoint of ``conv``, so each is the other's
input gradient (autograd computes it).  As in lava-dl, the filter gets no gradient (use
:class:`~slayerc.slayer.utils.filter.FIRBank` for learnable filters); the filter is flattened.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["conv", "corr"]


def _filter_time(x: torch.Tensor, kernel: torch.Tensor, causal: bool) -> torch.Tensor:
    shape = x.shape
    flat = x.reshape(-1, 1, shape[-1])
    k = kernel.numel()
    pad = (k - 1, 0) if causal else (0, k - 1)
    weight = kernel.detach().to(x.dtype).reshape(1, 1, -1)
    if causal:
        weight = weight.flip(-1)  # conv1d correlates: flip for a convolution
    return F.conv1d(F.pad(flat, pad), weight).reshape(shape)


def conv(input: torch.Tensor, filter: torch.Tensor, sampling_time: float = 1) -> torch.Tensor:
    """Causal convolution in time of ``input`` (time last) with ``filter``, times
    ``sampling_time``; a 1-D input becomes ``[1, T]``.

    >>> conv(torch.tensor([1., 0., 0.]), torch.tensor([1., .5]))
    tensor([[1.0000, 0.5000, 0.0000]])
    """
    if input.dim() == 1:
        input = input.reshape(1, -1)
    return _filter_time(input, filter.flatten(), causal=True) * sampling_time


def corr(input: torch.Tensor, filter: torch.Tensor, sampling_time: float = 1) -> torch.Tensor:
    """Correlation in time of ``input`` (time last) with ``filter`` (looks ahead), times
    ``sampling_time``; a 1-D input becomes ``[1, T]``.

    >>> corr(torch.tensor([0., 0., 1.]), torch.tensor([1., .5]))
    tensor([[0.0000, 0.5000, 1.0000]])
    """
    if input.dim() == 1:
        input = input.reshape(1, -1)
    return _filter_time(input, filter.flatten(), causal=False) * sampling_time
