"""``neuron.sigma_delta``: sigma decoder, activation, delta encoder (spec §4.7).

``σ[t] = σ[t−1] + x[t]``; ``a[t] = act(σ[t] + bias)``; ``Δ = a[t] − a[t−1] + res``;
``y[t] = Δ if |Δ| ≥ θ else 0`` (floor-quantized to ``1/scale``), ``res = Δ − y[t]``.
Always graded.  Kernels: ``torch`` (:func:`dynamics`), ``fixed``/``numba``, ``triton``.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from slayerc.errors import RuntimeSimError
from slayerc.ir.core import Op
from slayerc.ir.target import STATE_SCALE
from slayerc.runtime.neurons import delta, sigma
from slayerc.runtime.neurons.common import NO_OUTPUT, Value, apply_output, last

OP = "neuron.sigma_delta"
PARAMS = ("threshold", "bias")
STATES = ("sigma_state", "pre_state", "residual_state", "error_state")

ACTIVATIONS = {"relu": F.relu, "identity": lambda x: x, "sigmoid": torch.sigmoid,
               "tanh": torch.tanh}
"""The IR's ``activation`` names and the functions they stand for."""


def dynamics(
    x, threshold, *, bias=None, scale=STATE_SCALE, tau_grad=1.0, scale_grad=1.0, cum_error=False,
    activation=F.relu, norm=None, sigma_state=None, pre_state=None, residual_state=None,
    error_state=None, output=NO_OUTPUT,
):
    """Sigma-delta output of ``x`` ``[N, *S, T]``: ``a = act(norm(Σx) + b)``, delta-encoded.

    ``bias`` is added only when given; ``error_state`` (zeros when None) is used only with
    ``cum_error``.  States: ``sigma_state`` (the sigma unit's), ``pre_state``,
    ``residual_state``, ``error_state`` (the delta unit's).  Returns ``(y, states)``.
    """
    sig, _ = sigma.dynamics(x, pre_state=sigma_state)
    dend = sig if norm is None else norm(sig)
    if bias is not None:
        if bias.dim() == 1 and x.dim() > 3 and bias.numel() == x.shape[1] > 1:
            bias = bias.reshape(-1, *([1] * (x.dim() - 3)))  # per channel of a conv layer
        dend = dend + bias.unsqueeze(0).unsqueeze(-1)
    a = activation(dend)
    y, st = delta.dynamics(a, threshold, scale=scale, tau_grad=tau_grad, scale_grad=scale_grad,
                           cum_error=cum_error, pre_state=pre_state,
                           residual_state=residual_state, error_state=error_state)
    return apply_output(y, output), {"sigma_state": last(sig), **st, "shift_state": last(y)}


def node_args(node: Op, value: Value) -> tuple[tuple, dict[str, Any]]:
    """``dynamics`` arguments of a ``neuron.sigma_delta`` node."""
    th = value("threshold")
    th = th if torch.is_tensor(th) else torch.tensor([float(th)])
    b = value("bias")
    if b is not None and not torch.is_tensor(b):
        b = torch.tensor([float(b)])
    act = ACTIVATIONS.get(node.activation)  # type: ignore[attr-defined]
    if act is None:
        raise RuntimeSimError(f"unknown activation {node.activation!r}")  # type: ignore
    return (th,), {"bias": b, "scale": int(node.scale) * 64,  # type: ignore[attr-defined]
                   "tau_grad": float(node.tau_grad),  # type: ignore[attr-defined]
                   "scale_grad": float(node.scale_grad),  # type: ignore[attr-defined]
                   "cum_error": bool(node.cum_error), "activation": act}  # type: ignore


KERNELS = {
    "torch": dynamics,
    "fixed": "slayerc.runtime.fixed.neurons:SigmaDelta",
    "numba": "slayerc.runtime.fixed.fast:run_sigma_delta",
}
