"""Small helpers of ``slayer.utils``: ``dotdict``, ``staticproperty``, ``diagonal_mask``,
``event_rate`` (lava-dl's ``slayer.utils.utils``)."""

from __future__ import annotations

import torch

from slayerc.errors import SlayerError

__all__ = ["dotdict", "staticproperty", "diagonal_mask", "event_rate"]


class dotdict(dict):  # noqa: N801 (lava-dl's name)
    """A dict whose keys also read and write as attributes (``d.key`` is ``d["key"]``; a
    missing key reads as None)."""

    __getattr__ = dict.get
    __setattr__ = dict.__setitem__
    __delattr__ = dict.__delitem__


class staticproperty(property):  # noqa: N801 (lava-dl's name)
    """A property of the class itself, computed by a function without arguments."""

    def __get__(self, instance, owner=None):
        """Call the getter (no ``self``)."""
        return self.fget()


def diagonal_mask(dim: int, num_diagonals: int) -> torch.Tensor:
    """``[dim, dim]`` float mask with ones on the main diagonal and the ``num_diagonals // 2``
    diagonals on each side of it (an even count acts as the next odd one below: 1 gives the
    identity, 3 and 4 a tridiagonal band)."""
    if num_diagonals <= 0:
        raise SlayerError(f"diagonal_mask: expected a positive number of diagonals; got "
                          f"{num_diagonals}")
    i = torch.arange(dim)
    return ((i[:, None] - i[None, :]).abs() <= num_diagonals // 2).float()


def event_rate(x: torch.Tensor) -> float:
    """Fraction of non-zero entries of ``x``; with more than one time step the first step is
    left out (it holds the initialisation events)."""
    if x.shape[-1] > 1:
        x = x[..., 1:]
    return (x != 0).to(torch.float32).mean().item()
