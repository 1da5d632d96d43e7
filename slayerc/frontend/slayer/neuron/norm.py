"""Neuron normalization (lava-dl ``neuron/norm.py``): the batch mean acts as a negative bias."""

from __future__ import annotations

import torch


def _identity(x, descale=False):
    return x


def _channel_view(t: torch.Tensor, ndim: int) -> torch.Tensor:
    return t.reshape((1, -1) + (1,) * (ndim - 2))


class _Norm(torch.nn.Module):
    """Shared bookkeeping: lazily sized ``running_mean`` that adopts a loaded shape."""

    def __init__(self, num_features=None, momentum=0.1, pre_hook_fx=None):
        super().__init__()
        self.num_features = num_features
        self.momentum = momentum
        self.pre_hook_fx = _identity if pre_hook_fx is None else pre_hook_fx
        size = 1 if num_features is None else num_features
        self.register_buffer("running_mean", torch.zeros(size))
        self.update = True

    def set_num_features(self, num_features: int) -> None:
        """Size ``running_mean`` for ``num_features`` channels (if it is still unsized)."""
        if self.num_features is None:
            self.num_features = int(num_features)
            if self.running_mean.numel() == 1:
                self.running_mean = self.running_mean.expand(self.num_features).clone()

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        for name, buf in self.named_buffers(recurse=False):
            value = state_dict.get(prefix + name)
            if value is not None and value.shape != buf.shape and 1 in (value.numel(), buf.numel()):
                setattr(self, name, torch.zeros(value.shape, dtype=buf.dtype, device=buf.device))
                if name == "running_mean" and value.numel() > 1:
                    self.num_features = value.numel()
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def reset_parameters(self):
        """Zero the running statistics."""
        for buf in self.buffers():
            buf.zero_()

    def _mean(self, inp: torch.Tensor) -> torch.Tensor:
        """Batch mean per channel (train mode, updating the running mean) or the running mean."""
        if self.num_features is None:
            self.num_features = inp.shape[1]
        if not (self.training and self.update):
            return self.running_mean
        mean = inp.reshape(inp.shape[0], self.num_features, -1).mean(dim=(0, 2))
        with torch.no_grad():
            self.running_mean = (1 - self.momentum) * self.running_mean + self.momentum * mean
        return mean

    @property
    def bias(self):
        """Equivalent neuron bias: ``−quantize(running_mean)`` as integer mantissas."""
        return -self.pre_hook_fx(self.running_mean, descale=True)


class MeanOnlyBatchNorm(_Norm):
    """Mean-only batch norm: ``y = x − q(μ)`` with ``μ`` the per-channel batch (or running) mean.

    ``q`` is ``pre_hook_fx`` (the neuron's ``quantize_8bit``).  Train mode updates
    ``running_mean ← (1−m)·running_mean + m·μ``.
    """

    def forward(self, inp):
        """Normalize ``inp`` ``[N, C, ...]``."""
        mean = self._mean(inp)
        return inp - self.pre_hook_fx(_channel_view(mean, inp.dim()))


class WgtScaleBatchNorm(_Norm):
    """Batch norm with a power-of-two variance scale: ``y = (x − q(μ)) / 2^{clamp(⌈log2 σ⌉)}``.

    ``σ = sqrt(var + eps)`` of the whole batch; the exponent is clamped to ``±weight_exp_bits``.
    """

    def __init__(self, num_features=None, momentum=0.1, weight_exp_bits=3, eps=1e-5,
                 pre_hook_fx=None):
        super().__init__(num_features, momentum, pre_hook_fx)
        self.weight_exp_bits = weight_exp_bits
        self.eps = eps
        self.register_buffer("running_var", torch.zeros(1))

    def std(self, var):
        """Power-of-two standard deviation ``2^{clamp(⌈log2 sqrt(var+eps)⌉)}``."""
        exp = torch.ceil(torch.log2(torch.sqrt(var + self.eps)))
        return torch.pow(2.0, exp.clamp(-self.weight_exp_bits, self.weight_exp_bits))

    @property
    def weight_exp(self):
        """Equivalent weight exponent ``⌈log2 sqrt(running_var + eps)⌉``."""
        return torch.ceil(torch.log2(torch.sqrt(self.running_var + self.eps)))

    def forward(self, inp):
        """Normalize ``inp`` ``[N, C, ...]``."""
        if self.training and self.update:
            var = torch.var(inp, unbiased=False)
            n = inp.numel() / inp.shape[1]
            with torch.no_grad():
                self.running_var = (1 - self.momentum) * self.running_var + (
                    self.momentum * var * n / (n + 1)
                )
        else:
            var = self.running_var
        mean = self._mean(inp)
        std = self.std(var).reshape(-1)
        return (inp - self.pre_hook_fx(_channel_view(mean, inp.dim()))) / _channel_view(
            std, inp.dim()
        )
