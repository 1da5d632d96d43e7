"""Delta encoder (lava-dl ``axon/delta.py``; spec §5.3)."""

from __future__ import annotations

import torch

from slayerc.errors import DeltaShapeError, FrontendError  # noqa: F401
from slayerc.runtime.neurons import delta as family


class Delta(torch.nn.Module):
    """Delta encoding with a (learnable) threshold, as in sigma-delta neurons.

    .. math::
        \\Delta[t] &= x[t] - x[t-1] + r[t-1] \\\\
        y[t] &= \\Delta[t]\\ \\text{if}\\ |\\Delta[t]| \\ge \\vartheta\\ \\text{else}\\ 0,
        \\qquad r[t] = \\Delta[t] - y[t]

    With ``cum_error``: ``e += Δ``; send when ``|e| ≥ θ``; ``e = 0`` after a send.  The output is
    floor-quantized to steps of ``1/scale``.  The threshold is clamped to
    ``≥ max(min_threshold, 1/scale)`` on every forward.  ``shared_param=False``: one threshold per
    channel (shape ``(C, 1, …)``); ``per_neuron_param=True`` (slayerc): one per neuron.
    Gradients: :func:`slayerc.runtime.axon.delta_encode` (through the ``axon.delta`` family,
    :mod:`slayerc.runtime.neurons.delta`).
    """

    def __init__(
        self, threshold, min_threshold=0, tau_grad=1, scale_grad=1, cum_error=False,
        shared_param=True, persistent_state=False, requires_grad=False, scale=1 << 6,
        per_neuron_param=False,
    ):
        super().__init__()
        self.min_threshold = min_threshold
        self.tau_grad = tau_grad
        self.scale_grad = scale_grad
        self.cum_error = cum_error
        self.per_neuron_param = per_neuron_param
        self.shared_param = shared_param and not per_neuron_param
        self.persistent_state = persistent_state
        self.requires_grad = requires_grad
        self.scale = scale
        self.quantizer = None
        self.shape = None
        for name in ("pre_state", "residual_state", "error_state"):
            self.register_buffer(name, torch.zeros(1), persistent=False)
        self.register_parameter(
            "threshold",
            torch.nn.Parameter(torch.tensor([float(threshold)]), requires_grad=requires_grad),
        )
        self._ready = self.shared_param

    def clamp(self):
        """Clamp the threshold to ``[max(min_threshold, 1/scale), ∞)``."""
        self.threshold.data.clamp_(max(self.min_threshold, 1 / self.scale))

    @property
    def device(self):
        """Device of the threshold."""
        return self.threshold.device

    def set_shape(self, shape) -> None:
        """Fix the per-sample shape and size the threshold (per channel or per neuron) now."""
        shape = torch.Size(int(n) for n in shape)
        if self.shape is not None and tuple(self.shape) != tuple(shape):
            raise DeltaShapeError(f"Delta has shape {list(self.shape)}; got {list(shape)}")
        self.shape = shape
        if not self._ready:
            pshape = (shape[0],) + (1,) * (len(shape) - 1)
            if self.per_neuron_param:
                pshape = tuple(shape)
            self.threshold.data = self.threshold.data.reshape(-1)[:1].expand(pshape).clone()
            self._ready = True

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        """A one-element threshold (lava-dl's shape before its first forward) is broadcast over
        the channels, as lava-dl's first forward does; other values load with their shape."""
        value = state_dict.get(prefix + "threshold")
        one = value is not None and value.numel() == 1 and not self.shared_param
        if one and self._ready:
            state_dict = {**state_dict, prefix + "threshold": value.reshape(-1)[:1].expand(
                self.threshold.shape)}
        elif value is not None and not self._ready and not one:
            self.threshold.data = torch.empty(value.shape, device=self.threshold.device)
            self._ready = True
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def _check(self, x):
        if x.dim() < 3:
            raise DeltaShapeError(
                f"expected an input of at least 3 dimensions [batch, *neurons, time]; "
                f"got shape {list(x.shape)}"
            )
        if self.shape is None:
            self.set_shape(x.shape[1:-1])
        elif tuple(x.shape[1:-1]) != tuple(self.shape):
            raise DeltaShapeError(
                f"Delta expected input of shape [batch, {', '.join(map(str, self.shape))}, "
                f"time]; got {list(x.shape)}"
            )

    def forward(self, input):
        """Delta-encode ``input`` ``[N, *S, T]``."""
        self._check(input)
        if tuple(self.pre_state.shape) != tuple(input.shape[:-1]):
            for name in ("pre_state", "residual_state", "error_state"):
                setattr(self, name, torch.zeros(input.shape[:-1], device=input.device))
        self.clamp()
        keep = self.persistent_state
        states = {}
        if keep:
            states = {"pre_state": self.pre_state, "residual_state": self.residual_state,
                      "error_state": self.error_state}
        y, new = family.dynamics(
            input, self.threshold, scale=self.scale, tau_grad=self.tau_grad,
            scale_grad=self.scale_grad, cum_error=self.cum_error,
            min_threshold=self.min_threshold, **states,
        )
        if keep:
            self.pre_state, self.residual_state = new["pre_state"], new["residual_state"]
            if self.cum_error:
                self.error_state = new["error_state"]
        return y
