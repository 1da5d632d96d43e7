"""Sigma decoder (lava-dl ``dendrite/sigma.py``)."""

from __future__ import annotations

import torch

from slayerc.errors import FrontendError, SigmaShapeError  # noqa: F401
from slayerc.runtime.neurons import sigma as family


class Sigma(torch.nn.Module):
    """Sigma decoder: ``y[t] = y[−1] + Σ_{k ≤ t} x[k]`` (``y[−1]`` carried when persistent)."""

    def __init__(self, persistent_state=False):
        super().__init__()
        self.persistent_state = persistent_state
        self.shape = None
        self.register_buffer("pre_state", torch.zeros(1), persistent=False)

    def forward(self, input):
        """Accumulate ``input`` ``[N, *S, T]`` over time."""
        if input.dim() < 3:
            raise SigmaShapeError(
                f"expected an input of at least 3 dimensions [batch, *neurons, time]; "
                f"got shape {list(input.shape)}"
            )
        if self.shape is None:
            self.shape = input.shape[1:-1]
        elif input.shape[1:-1] != self.shape:
            raise SigmaShapeError(
                f"Sigma expected input of shape [batch, {', '.join(map(str, self.shape))}, "
                f"time]; got {list(input.shape)}"
            )
        if tuple(self.pre_state.shape) != tuple(input.shape[:-1]):
            self.pre_state = torch.zeros(input.shape[:-1], dtype=input.dtype, device=input.device)
        if not self.persistent_state:
            return family.dynamics(input)[0]
        out, new = family.dynamics(input, pre_state=self.pre_state)
        self.pre_state = new["pre_state"]
        return out

    @property
    def device_params(self):
        """Hardware parameters of a sigma output layer."""
        return {"type": "SDNN", "sigma_output": True}
