"""``dendrite.sigma``: sigma decoder, ``y[t] = y[−1] + Σ_{k ≤ t} x[k]`` (spec §5.4).

Kernels: ``torch`` (:func:`dynamics`), ``fixed``/``numba`` (the SDNN sigma output layer).
"""

from __future__ import annotations

from typing import Any

from slayerc.ir.core import Op
from slayerc.runtime import axon
from slayerc.runtime.neurons.common import Value, last

OP = "dendrite.sigma"
PARAMS: tuple[str, ...] = ()
STATES = ("pre_state",)


def dynamics(x, *, pre_state=None):
    """Accumulate ``x`` ``[N, *S, T]`` over time from ``pre_state``; returns ``(y, states)``."""
    y = axon.sigma(x, pre_state)
    return y, {"pre_state": last(y)}


def node_args(node: Op, value: Value) -> tuple[tuple, dict[str, Any]]:
    """A ``dendrite.sigma`` node has no attributes the dynamics take."""
    return (), {}


KERNELS = {
    "torch": dynamics,
    "fixed": "slayerc.runtime.fixed.neurons:Sigma",
    "numba": "slayerc.runtime.fixed.fast:run_sigma",
}
