"""How far an imported NIR graph's approximation is from NIR's own start, measured.

The IR's neurons start at rest (voltage 0).  A NIR neuron with ``v_reset ≠ 0`` is imported with
its voltage measured from ``v_reset`` (exact at every reset), so NIR's start at ``v = 0`` would be
an IR voltage of ``−v_reset/G``.  :func:`start_error` runs the graph twice on the same seeded
spikes, once as imported and once with those neurons started where NIR starts them, and counts
the output values that differ.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from slayerc.ir.core import Graph, Op, ParamRef
from slayerc.runtime import neurons as families
from slayerc.runtime.interpreter import GraphModule, Kernel

STEPS, BATCH, RATE, SEED = 100, 4, 0.3, 0


@dataclass(frozen=True)
class StartDifference:
    """Output values (spikes) that differ, of how many the exact start produces."""

    differ: int
    spikes: int
    steps: int = STEPS
    batch: int = BATCH

    def __str__(self) -> str:
        share = self.differ / max(self.spikes, 1)
        return (f"measured on seeded spikes ({self.batch} × {self.steps} steps, rate {RATE}): "
                f"{self.differ} of {self.spikes} output spikes differ ({100 * share:.1f} %)")


def start_error(g: Graph, starts: dict[str, np.ndarray]) -> StartDifference:
    """Run ``g`` as it is and with each neuron ``name`` of ``starts`` started at that voltage
    (IR units, per neuron); compare the outputs."""
    gen = torch.Generator().manual_seed(SEED)
    feeds = {n.name: (torch.rand(BATCH, *n.shape, STEPS, generator=gen) < RATE).float()
             for n in g.inputs}  # type: ignore[misc]
    with torch.no_grad():
        approx = GraphModule(g, requires_grad=False)(feeds)
        exact_module = GraphModule(g, requires_grad=False)
        for name, v0 in starts.items():
            exact_module.kernels[name] = _started(g, g[name], v0)
        exact = exact_module(feeds)
    pairs = [(approx, exact)] if torch.is_tensor(exact) else \
        [(approx[k], exact[k]) for k in exact]
    return StartDifference(differ=sum(int((a != b).sum()) for a, b in pairs),
                      spikes=sum(int((b != 0).sum()) for _, b in pairs))


def _started(g: Graph, node: Op, v0: np.ndarray) -> Kernel:
    """The node's family dynamics with the voltage starting at ``v0`` on every run."""
    fam = families.family(node.OP)

    def value(attr: str) -> Any:
        v = getattr(node, attr, None)
        return torch.tensor(np.asarray(g.params[v.name]), dtype=torch.float32) \
            if isinstance(v, ParamRef) else v

    start = torch.tensor(np.asarray(v0, np.float32))
    state: dict[str, Any] = {}

    def fn(xs: list) -> torch.Tensor:
        args, kwargs = fam.node_args(node, value)
        if not state:
            state["voltage_state"] = start.expand(xs[0].shape[:-1]).clone()
        y, new = fam.dynamics(xs[0], *args, **kwargs, **state)
        state.update({k: v for k, v in new.items() if k in fam.STATES})
        return y

    return Kernel(fn=fn, reset=state.clear)
