"""Neuron dropout (lava-dl ``neuron/dropout.py``)."""

from __future__ import annotations

import torch
import torch.nn.functional as F


class Dropout(torch.nn.Dropout3d):
    """Dropout of whole neurons: a dropped neuron stays silent for the entire time window.

    ``F.dropout3d`` on ``input.reshape(N, −1, 1, 1, T)``; kept neurons are scaled by ``1/(1−p)``.
    """

    def forward(self, input):
        """Apply dropout to ``input`` ``[N, *S, T]``."""
        shape = input.shape
        out = F.dropout3d(
            input.reshape(shape[0], -1, 1, 1, shape[-1]), self.p, self.training, self.inplace
        )
        return out.reshape(shape)
