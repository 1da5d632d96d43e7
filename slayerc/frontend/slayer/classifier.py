"""Spike-rate classifiers (``slayer.classifier``): global rate and moving-window rate.

Inputs are ``[N, *neurons, T]``; the neuron dimensions are flattened into classes.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from slayerc.errors import ClassifierError, SlayerError  # noqa: F401

__all__ = ["Rate", "MovingWindow", "causal_fir"]


def causal_fir(x: torch.Tensor, response: torch.Tensor, sampling_time: float = 1) -> torch.Tensor:
    """Causal FIR filter along time: ``y[t] = Ts · Σ_k h[k]·x[t−k]`` (lava-dl's ``FIR``)."""
    shape = x.shape
    flat = x.reshape(1, -1, shape[-1]).transpose(0, 1)  # [M, 1, T]
    kernel = response.to(x.dtype).flip(0).reshape(1, 1, -1)
    y = F.conv1d(F.pad(flat, (kernel.shape[-1] - 1, 0)), kernel)
    return (y.transpose(0, 1) * sampling_time).reshape(shape)


def _confidence(rate: torch.Tensor, mode: str, eps: float, dim: int = 1) -> torch.Tensor:
    if mode == "probability":
        return rate / (torch.sum(rate, dim=dim, keepdim=True) + eps)
    if mode == "softmax":
        return F.softmax(rate, dim=dim)
    if mode == "logsoftmax":
        return F.log_softmax(rate, dim=dim)
    raise ClassifierError(
        f"unknown confidence mode {mode!r}; use 'probability', 'softmax' or 'logsoftmax'"
    )


class Rate(torch.nn.Module):
    """Global rate classifier: ``r = mean_t s(t)``; prediction ``argmax r``.

    ``confidence`` is ``r / Σr`` (probability), ``softmax(r)`` or ``log_softmax(r)``.
    """

    def forward(self, spike):
        """Predicted class per sample."""
        return Rate.predict(spike)

    @staticmethod
    def rate(spike):
        """Mean over time: ``[N, *neurons]``."""
        return torch.mean(spike, dim=-1)

    @staticmethod
    def confidence(spike, mode="probability", eps=1e-6):
        """Class confidence ``[N, classes]`` from the spike rates."""
        rate = Rate.rate(spike).reshape(spike.shape[0], -1)
        return _confidence(rate, mode, eps)

    @staticmethod
    def predict(spike):
        """Index of the class with the highest rate."""
        return torch.max(Rate.rate(spike).reshape(spike.shape[0], -1), dim=1)[1]


class MovingWindow(torch.nn.Module):
    """Moving-window rate classifier: ``r(t) = (1/W) Σ_{k<W} s(t−k)``, per time step.

    Returns ``[N, classes, T]`` rates and confidences (lava-dl's ``confidence`` drops the class
    dimension; here it is kept) and ``[N, T]`` predictions.
    """

    def __init__(self, time_window, mode="probability", eps=1e-6):
        super().__init__()
        self.register_buffer("filter", torch.ones(int(time_window)) / int(time_window))
        self.mode = mode
        self.eps = eps

    def rate(self, spike):
        """Moving-window rate, ``[N, *neurons, T]``."""
        return causal_fir(spike, self.filter)

    def confidence(self, spike, mode=None):
        """Confidence per class and time step, ``[N, classes, T]``."""
        rate = self.rate(spike).reshape(spike.shape[0], -1, spike.shape[-1])
        return _confidence(rate, self.mode if mode is None else mode, self.eps)

    def predict(self, spike):
        """Predicted class per time step, ``[N, T]``."""
        return torch.argmax(self.rate(spike).reshape(spike.shape[0], -1, spike.shape[-1]), dim=1)

    def forward(self, spike):
        """Predicted class per time step (lava-dl's forward returns None)."""
        return self.predict(spike)
