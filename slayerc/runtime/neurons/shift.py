"""``axon.shift``: the whole tensor delayed by ``steps`` (slayer's ``delay_shift``, a Lava
synapse's one-step hold): the dynamics of :mod:`.delay` with one delay for every neuron."""

from __future__ import annotations

from typing import Any

from slayerc.ir.core import Op
from slayerc.runtime.neurons.common import Value
from slayerc.runtime.neurons.delay import STATES, dynamics  # noqa: F401

OP = "axon.shift"
PARAMS: tuple[str, ...] = ()


def node_args(node: Op, value: Value) -> tuple[tuple, dict[str, Any]]:
    """``dynamics`` arguments of an ``axon.shift`` node."""
    return (int(value("steps")),), {}


KERNELS = {"torch": dynamics}
