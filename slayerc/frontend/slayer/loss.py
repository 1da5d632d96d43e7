"""Spike losses (``slayer.loss``): SpikeTime, SpikeRate, SpikeMax, SpikeMoid, and the
SparsityEnforcer (an event-rate penalty).

Inputs are ``[N, *neurons, T]`` spike tensors (neuron dimensions are flattened into classes).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from slayerc.errors import LossError, SlayerError  # noqa: F401

from .classifier import MovingWindow, Rate
from .utils.filter.fir import FIR
from .utils.time.replicate import replicate

__all__ = ["SpikeTime", "SpikeRate", "SpikeMax", "SpikeMoid", "SparsityEnforcer"]


class SpikeTime(torch.nn.Module):
    """van Rossum-like distance: ``L = Σ (ε * (s − ŝ))²`` with ε a causal exponential filter
    ``exp(−t/τ)`` of ``length`` steps, convolved with itself ``filter_order − 1`` times
    (truncated to ``length``).  ``self.filter`` is that :class:`~slayerc.slayer.utils.filter.FIR`
    module (callable; state-dict key ``filter.filter``), as in lava-dl."""

    def __init__(self, time_constant=5, length=100, filter_order=1, reduction="sum"):
        super().__init__()
        self.filter = FIR(time_constant=time_constant, length=length)
        base = self.filter.filter.clone()
        for _ in range(filter_order - 1):
            self.filter.filter = FIR(base)(self.filter.filter).flatten()
        self.reduction = reduction

    def forward(self, input, desired):
        """Loss between the output and desired spike trains (same shape)."""
        if input.shape != desired.shape:
            raise LossError(
                f"SpikeTime: output shape {list(input.shape)} and desired shape "
                f"{list(desired.shape)} differ"
            )
        return F.mse_loss(
            self.filter(input).flatten(), self.filter(desired).flatten(), reduction=self.reduction
        )


def _check_rate(name: str, value: float) -> None:
    if not 0 <= value <= 1:
        raise LossError(f"expected {name} between 0 and 1; got {value}")


def _time_labels(label: torch.Tensor, steps: int) -> torch.Tensor:
    """A ``[N]`` label becomes ``[N, T]``; a ``[N, T]`` label is kept."""
    return replicate(label, steps) if label.dim() == 1 else label


class SpikeRate(torch.nn.Module):
    """Spike-rate loss: MSE between the rate and ``true_rate`` (label) / ``false_rate`` (others);
    with ``moving_window``, per time step on the moving-window rate."""

    def __init__(self, true_rate, false_rate, moving_window=None, reduction="sum"):
        super().__init__()
        _check_rate("true rate", true_rate)
        _check_rate("false rate", false_rate)
        self.true_rate = true_rate
        self.false_rate = false_rate
        self.reduction = reduction
        self.window = None if moving_window is None else MovingWindow(moving_window)

    def _target(self, one_hot):
        return self.true_rate * one_hot + self.false_rate * (1 - one_hot)

    def forward(self, input, label):
        """Loss for spikes ``[N, *neurons, T]`` and labels ``[N]`` (or ``[N, T]``)."""
        input = input.reshape(input.shape[0], -1, input.shape[-1])
        if self.window is None:
            one_hot = F.one_hot(label, num_classes=input.shape[1])
            rate = Rate.rate(input)
        else:
            label = _time_labels(label, input.shape[-1])
            one_hot = F.one_hot(label, num_classes=input.shape[1]).transpose(2, 1)
            rate = self.window.rate(input)
        return F.mse_loss(
            rate.flatten(), self._target(one_hot).to(rate.dtype).flatten(),
            reduction=self.reduction,
        )


class SpikeMax(torch.nn.Module):
    """Negative log-likelihood of the label under the rate confidence (``probability`` or
    ``softmax`` mode); with ``moving_window``, summed over time steps."""

    def __init__(self, moving_window=None, mode="probability", reduction="sum"):
        super().__init__()
        self.window = None if moving_window is None else MovingWindow(moving_window)
        self.mode = mode
        self.reduction = reduction

    def _log_p(self, confidence_fn, input):
        if self.mode == "probability":
            return torch.log(confidence_fn(input, mode="probability"))
        return confidence_fn(input, mode="logsoftmax")

    def forward(self, input, label):
        """Loss for spikes ``[N, *neurons, T]`` and labels ``[N]`` (or ``[N, T]``)."""
        input = input.reshape(input.shape[0], -1, input.shape[-1])
        if self.window is None:
            return F.nll_loss(self._log_p(Rate.confidence, input), label, reduction=self.reduction)
        label = _time_labels(label, input.shape[-1])
        log_p = self._log_p(self.window.confidence, input)
        return F.nll_loss(
            log_p.transpose(1, 2).reshape(-1, input.shape[1]), label.flatten(),
            reduction=self.reduction,
        )


class SpikeMoid(torch.nn.Module):
    """Binary cross entropy of ``σ((r − θ)/α)`` against multi-hot labels ``[N, classes]``
    (or ``[N, classes, T]`` with ``moving_window``)."""

    def __init__(self, moving_window=None, reduction="sum", alpha=1, theta=0):
        super().__init__()
        self.window = None if moving_window is None else MovingWindow(moving_window)
        self.reduction = reduction
        self.alpha = alpha
        self.theta = theta

    def forward(self, input, label):
        """Loss for spikes ``[N, *neurons, T]`` and float labels."""
        input = input.reshape(input.shape[0], -1, input.shape[-1])
        if self.window is None:
            probs = torch.sigmoid((input.mean(-1) - self.theta) / self.alpha)
        else:
            if label.dim() == 2:
                label = replicate(label, input.shape[-1])
            probs = torch.sigmoid((self.window.rate(input) - self.theta) / self.alpha)
        return F.binary_cross_entropy(
            probs.flatten(), label.to(probs.dtype).flatten(), reduction=self.reduction
        )


class SparsityEnforcer:
    """Event-rate penalty: each :meth:`append` of a tensor ``x`` adds the ticket
    ``relu(mean|x| − max_rate)²``; :attr:`loss` is ``lam ·`` their sum; :meth:`clear` empties the
    list (call it once per batch)."""

    def __init__(self, max_rate: float = 0.01, lam: float = 1.0) -> None:
        self.max_rate = max_rate
        self.lam = lam
        self.loss_list: list[torch.Tensor] = []

    def clear(self) -> None:
        """Drop every gathered ticket."""
        self.loss_list = []

    @property
    def loss(self):
        """``lam · Σ tickets`` (0 without tickets)."""
        return self.lam * sum(self.loss_list)

    def append(self, x: torch.Tensor) -> None:
        """Add the ticket of ``x`` (gradients flow to ``x``)."""
        excess = F.relu(torch.mean(torch.abs(x)) - self.max_rate)
        self.loss_list.append(excess * excess)
