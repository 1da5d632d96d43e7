"""``axon.delta``: delta encoder with threshold (lava-dl ``axon.Delta``; spec §5.3).

``Δ = x[t] − x[t−1] + res``; ``y[t] = Δ if |Δ| ≥ θ else 0``, ``res = Δ − y[t]``; the output is
floor-quantized to ``1/scale``.  With ``cum_error`` the send decision uses the accumulated error.
The threshold is held at ``≥ max(min_threshold, 1/scale)`` (straight-through for gradients).
Kernels: ``torch`` (:func:`dynamics`), ``fixed``/``numba`` (the SDNN input layer).
"""

from __future__ import annotations

from typing import Any

import torch

from slayerc.ir.core import Op
from slayerc.runtime import axon
from slayerc.runtime.neurons.common import Value, last

OP = "axon.delta"
PARAMS = ("threshold",)
STATES = ("pre_state", "residual_state", "error_state")


class _AtLeast(torch.autograd.Function):
    """``max(x, lo)`` whose gradient passes straight through (slayer clamps ``.data``)."""

    @staticmethod
    def forward(ctx, x, lo):
        return x.clamp(min=lo)

    @staticmethod
    def backward(ctx, g):
        return g, None


def held_threshold(threshold: torch.Tensor, scale: int, min_threshold: float = 0.0):
    """The threshold the encoder uses: at least ``max(min_threshold, 1/scale)``."""
    return _AtLeast.apply(threshold, max(min_threshold, 1 / scale))


def dynamics(x, threshold, *, scale=1 << 6, tau_grad=1.0, scale_grad=1.0, cum_error=False,
             pre_state=None, residual_state=None, error_state=None, min_threshold=0.0):
    """Delta-encode ``x`` ``[N, *S, T]``; returns ``(y, states)``."""
    th = held_threshold(threshold, scale, min_threshold)
    err = None
    if cum_error:
        err = error_state if error_state is not None else torch.zeros_like(x[..., 0])
    y, res, err = axon.delta_encode(x, th, pre_state, residual_state, err, scale, tau_grad,
                                    scale_grad)
    states = {"pre_state": last(x), "residual_state": res.detach().clone(),
              "error_state": (err.detach().clone() if err is not None
                              else torch.zeros_like(x[..., 0]))}
    return y, states


def _threshold(value: Value) -> torch.Tensor:
    th = value("threshold")
    return th if torch.is_tensor(th) else torch.tensor([float(th)])


def node_args(node: Op, value: Value) -> tuple[tuple, dict[str, Any]]:
    """``dynamics`` arguments of an ``axon.delta`` node."""
    return (_threshold(value),), {"scale": int(node.scale) * 64,  # type: ignore[attr-defined]
                                  "cum_error": bool(node.cum_error)}  # type: ignore[attr-defined]


KERNELS = {
    "torch": dynamics,
    "fixed": "slayerc.runtime.fixed.neurons:Delta",
    "numba": "slayerc.runtime.fixed.fast:run_sigma_delta",
}
