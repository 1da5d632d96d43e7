"""Placeholders of per-channel values drawn at the first forward (neuron decays, delays).

A block gives such a parameter its final shape at construction, holding a placeholder; the
first forward draws the random values over it (lava-dl's order), unless somebody set the
parameter by hand or loaded it since.  :func:`mark` records the placeholder, :func:`unchanged`
tells whether the parameter still holds it.  Values, not storage, are compared: ``deepcopy``
and ``.to(device)`` keep the values but not the storage.
"""

from __future__ import annotations

import torch


def mark(param: torch.Tensor) -> torch.Tensor:
    """The placeholder values of ``param`` (a CPU copy)."""
    return param.detach().cpu().clone()


def unchanged(param: torch.Tensor, placeholder: torch.Tensor | None) -> bool:
    """Whether ``param`` still holds ``placeholder`` (nobody set it by hand)."""
    if placeholder is None or param.shape != placeholder.shape:
        return False
    now = param.detach().cpu()  # (a checkpoint saved before a first forward may hold NaN)
    return bool(((now == placeholder) | (now.isnan() & placeholder.isnan())).all())
