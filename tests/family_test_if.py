"""A neuron family defined outside slayerc, for tests/runtime/test_new_family.py: the IR op and
its one home, nothing else (what ``docs/adding-a-neuron-family.md`` says a family needs).

``neuron.test_if``: ``v[t] = (1 − leak)·v[t−1] + x[t]``; ``s[t] = v[t] ≥ θ``, then ``v = 0``;
gradients through a fast-sigmoid surrogate.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch

from slayerc.ir.core import OPS, ScalarOrParam, register
from slayerc.ir.ops_neurons import _Neuron

OP = "neuron.test_if"
PARAMS = ("leak",)
STATES = ("voltage_state",)


@dataclass(frozen=True, slots=True, kw_only=True)
class TestIF(_Neuron):
    """``neuron.test_if``: leaky integrate-and-fire in floating point (a test family).

    ``v[t] = (1 − leak) v[t−1] + x[t]``; ``s[t] = v[t] ≥ θ``, then ``v[t] = 0``.
    """

    OP: ClassVar[str] = OP
    PARAMS: ClassVar = (("leak", 0.0, 1.0, False),)
    leak: ScalarOrParam = 0.0


if OP not in OPS:
    register(TestIF)


class _Spike(torch.autograd.Function):
    @staticmethod
    def forward(ctx, v, th):
        ctx.save_for_backward(v)
        ctx.th = th
        return (v >= th).to(v.dtype)

    @staticmethod
    def backward(ctx, g):
        (v,) = ctx.saved_tensors
        return g / (1 + 10 * (v - ctx.th).abs()) ** 2, None


def dynamics(x, leak, threshold, *, voltage_state=None, **_: Any):
    """Spikes of ``x`` ``[N, *S, T]``; returns ``(s, states)``."""
    v = torch.zeros_like(x[..., 0]) if voltage_state is None else voltage_state
    out = []
    for t in range(x.shape[-1]):
        v = (1 - leak) * v + x[..., t]
        s = _Spike.apply(v, threshold)
        out.append(s)
        v = v * (1 - s.detach())
    return torch.stack(out, -1), {"voltage_state": v.detach()}


def node_args(node, value) -> tuple[tuple, dict[str, Any]]:
    """``dynamics`` arguments of a ``neuron.test_if`` node."""
    leak = value("leak")
    return (leak if torch.is_tensor(leak) else float(leak), float(node.threshold)), {}


KERNELS = {"torch": dynamics}
