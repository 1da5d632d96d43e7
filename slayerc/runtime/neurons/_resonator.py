"""What the four resonator families (rf, rf_iz, adrf, adrf_iz) share: node arguments."""

from __future__ import annotations

from typing import Any

from slayerc.ir.core import Op
from slayerc.runtime.neurons.common import Value, decay, scalar, spike_args

RF_DECAYS = ("sin_decay", "cos_decay")
ADAPTIVE_DECAYS = ("threshold_decay", "refractory_decay")


def plain_args(node: Op, value: Value) -> tuple[tuple, dict[str, Any]]:
    """``(sin_decay, cos_decay, threshold, tau_rho, scale_rho)`` and keywords."""
    a = spike_args(node)
    args = (*(decay(value, p) for p in RF_DECAYS), a.pop("threshold"), a.pop("tau_rho"),
            a.pop("scale_rho"))
    return args, a


def adaptive_args(node: Op, value: Value) -> tuple[tuple, dict[str, Any]]:
    """``(sin, cos, threshold_decay, refractory_decay, threshold, step, tau, scale)``."""
    a = spike_args(node)
    args = (*(decay(value, p) for p in RF_DECAYS + ADAPTIVE_DECAYS), a.pop("threshold"),
            scalar(node, "threshold_step"), a.pop("tau_rho"), a.pop("scale_rho"))
    return args, a
