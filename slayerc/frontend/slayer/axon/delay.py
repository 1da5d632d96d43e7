"""Axonal delay (lava-dl ``axon/delay.py``; spec §5.1, §5.2)."""

from __future__ import annotations

import torch

from slayerc.errors import DelayShapeError, FrontendError  # noqa: F401
from slayerc.frontend.slayer.utils.placeholder import mark as _mark
from slayerc.frontend.slayer.utils.placeholder import unchanged as _unchanged
from slayerc.runtime import axon as _axon


def delay(input: torch.Tensor, delay_val=1, sampling_time=1) -> torch.Tensor:
    """Delay ``input`` by ``int(delay_val/sampling_time)`` steps (zero fill); gradient shifts back.

    ``delay_val`` may be a number or a tensor with one value per channel or per neuron.

    >>> delay(torch.tensor([[[1., 2., 3.]]]), 1)
    tensor([[[0., 1., 2.]]])
    """
    return _axon.shift(input, delay_val, sampling_time)


class Delay(torch.nn.Module):
    """Learnable per-channel axonal delay (state dict key ``delay``).

    The delay ``d`` (float, clamped to ``[0, max_delay]`` on every forward) shifts channel ``c``
    by ``trunc(d[c]/Ts)`` steps; for conv inputs it is repeated over H and W.  Gradient
    (lava-dl): inputs get the inverse shift; ``∂L/∂d[c] = grad_scale·Σ g[t]·(y[t−1] − y[t])``.

    ``d`` starts as one value; it takes its shape ``(C,)`` (zeros) when the channel count is
    known (:meth:`set_channels`, called by blocks) and is drawn as ``rand(C)`` on the input's
    device at the first forward, as lava-dl draws it (so the same seed gives the same network);
    delays set by hand before that are kept (the draw still happens, keeping the random-number
    order).  Loading a state dict adopts the loaded delays and keeps them (the draw still
    happens); a one-element ``delay`` (what lava-dl saves before its first forward) is drawn
    over, as in lava-dl.
    """

    def __init__(self, sampling_time=1, max_delay=None, grad_scale=1):
        super().__init__()
        self.sampling_time = sampling_time
        self.max_delay = max_delay
        self.grad_scale = grad_scale
        self.register_parameter("delay", torch.nn.Parameter(torch.zeros(1), requires_grad=True))
        self.init = False
        self._drawn = False
        self._placeholder: torch.Tensor | None = None

    def set_channels(self, num_channels: int) -> None:
        """Give the delays their shape ``(num_channels,)`` now (zeros until the first forward
        draws them; no-op once initialised)."""
        if not self.init:
            self.delay.data = torch.zeros(int(num_channels), device=self.delay.device)
            self.init = True
            self._placeholder = _mark(self.delay)

    def keep_values(self) -> None:
        """The delays were set from outside (a netlist, a converter): never draw them."""
        self._drawn = True

    def _draw_pending(self, device: torch.device) -> None:
        if self._drawn:
            return
        self._drawn = True
        value = torch.rand(self.delay.shape[0], device=device)  # (the random-number order)
        if _unchanged(self.delay, self._placeholder):  # not set by hand since set_channels
            self.delay.data = value.to(self.delay.device)

    def clamp(self) -> None:
        """Clamp the delays to ``[0, max_delay]`` (``[0, ∞)`` without a maximum)."""
        if self.init:
            self.delay.data.clamp_(0, self.max_delay)

    @property
    def shape(self):
        """Shape of the delay tensor, or None before initialisation."""
        return self.delay.shape if self.init else None

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        value = state_dict.get(prefix + "delay")
        if value is None:
            super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)
            return
        pre_forward = not self._drawn and value.numel() == 1  # lava-dl's shape before a forward
        if pre_forward and self.init:
            state_dict = {**state_dict, prefix + "delay": value.reshape(1).expand(self.delay.shape)}
        elif not self.init and not pre_forward:
            self.delay.data = torch.empty(value.shape, device=self.delay.device)
            self.init = True
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)
        if pre_forward and self.init:
            self._placeholder = _mark(self.delay)  # the first forward draws over it

    def forward(self, input):
        """Delay ``input`` ``[N, C, ..., T]`` per channel."""
        if input.dim() < 3:
            raise DelayShapeError(
                f"expected an input of at least 3 dimensions [batch, *neurons, time]; "
                f"got shape {list(input.shape)}"
            )
        self.set_channels(input.shape[1])
        self._draw_pending(input.device)
        self.clamp()
        if self.delay.shape[0] != input.shape[1]:
            raise DelayShapeError(
                f"Delay has {self.delay.shape[0]} channels; got an input with "
                f"{input.shape[1]} channels (shape {list(input.shape)})"
            )
        return _axon.delay(input, self.delay, self.grad_scale, self.sampling_time)
