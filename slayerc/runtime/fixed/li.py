"""Fixed-point ``neuron.li``: CUBA's two integrators without threshold, spike or reset.

Per step, in the integer state units of :class:`~slayerc.runtime.fixed.neurons.Cuba`
(``2**-12`` slayer units, the input ``a`` already ``<< 6``)::

    u = trunc(u·(4096 − Du)/4096) + a         (24-bit wrap, as Lava's LIF current)
    v = trunc(v·(4096 − Dv)/4096) + u + b     (b = bias_mant << 6; clipped to ±(2**23 − 1))
    out = v                                   (units of 2**-12: a graded payload)

That is Lava's fixed-point LIF arithmetic with the spike compare left out, and the integer form
of the float dynamics (:mod:`slayerc.runtime.neurons.li`: lava-dl's leaky integrators at state
scale 4096): on a quant-legal graph the two agree exactly while the voltage stays inside 24 bits.
No netx neuron type holds it (a netlist carries spikes), so this is slayerc's own runtime only.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from slayerc.ir.core import Graph, Op
from slayerc.runtime.fixed.neurons import Cuba, NeuronKernel, _bias, _decay_factor


class LeakyIntegrator(Cuba):
    """``neuron.li`` in fixed point: :class:`Cuba`'s update (current wrap, voltage clip), and
    the voltage as output instead of spikes."""

    STATE: ClassVar[tuple[str, ...]] = ("u", "v")

    def __init__(self, g: Graph, node: Op):
        NeuronKernel.__init__(self, g, node)
        self.out_exp = 12  # the voltage leaves as a payload in 2**-12 units
        self.fu = _decay_factor(g, node, "current_decay", self.shape)
        self.fv = _decay_factor(g, node, "voltage_decay", self.shape)
        self.f = np.stack([np.broadcast_to(self.fu, self.shape),
                           np.broadcast_to(self.fv, self.shape)])[:, None]
        self.bias = _bias(g, node, self.shape, 6)
        self.has_bias = getattr(node, "bias", None) is not None
        self.full_clip = True  # no reset bounds the voltage from above
        self.may_wrap = True

    def step(self, a: np.ndarray, b: np.ndarray | None) -> np.ndarray:
        return self.integrate(a).copy()

    def run(self, a: np.ndarray, b: np.ndarray | None, out: np.ndarray) -> None:
        NeuronKernel.run(self, a, b, out)
