"""``axon.delay`` (and ``axon.shift``, :mod:`.shift`): spikes delayed in time (spec §5.1–5.2).

``y_c[t] = x_c[t − d_c]`` (0 before), with ``d`` one number, one per channel (repeated over H
and W) or one per neuron.  A delay held as a tensor shifts by ``trunc(d)`` and gets slayer's
delay gradient (:func:`slayerc.runtime.axon.delay`).  The carried state of a persistent delay is
its line, the last ``max d`` input frames, which the next call's first steps read.

Kernels: ``torch`` (:func:`dynamics`).  The fixed-point simulator's delay line is
:class:`slayerc.runtime.fixed.kernels.Delayed` (it also steps delays inside recurrent loops).
"""

from __future__ import annotations

from typing import Any

import torch

from slayerc.ir.core import Op
from slayerc.runtime import axon
from slayerc.runtime.neurons.common import Value

OP = "axon.delay"
PARAMS = ("delay",)
STATES = ("line_state",)


def depth(d: Any) -> int:
    """The longest delay in whole steps (the line's length)."""
    if torch.is_tensor(d):
        return int(torch.trunc(d.detach()).max().clamp(min=0)) if d.numel() else 0
    return max(int(d), 0)


def dynamics(x, d, *, line_state=None):
    """``x`` ``[N, *S, T]`` delayed by ``d``; the line (last ``depth(d)`` frames) continues
    from ``line_state`` when given.  Returns ``(y, {"line_state": ...})``."""
    k = depth(d)
    move = (lambda v: axon.delay(v, d)) if torch.is_tensor(d) else (lambda v: axon.shift(v, d))
    if not torch.is_tensor(d) and not (torch.is_grad_enabled() and x.requires_grad):
        move = lambda v: _shift_steps(v, d)  # noqa: E731  (inference: no zero fill first)
    if k == 0:
        return move(x), {"line_state": x[..., :0].detach()}
    if line_state is None or tuple(line_state.shape) != (*x.shape[:-1], k):
        y, tail = move(x), x  # a line at rest: zeros before the first step
        if x.shape[-1] < k:
            zeros = torch.zeros((*x.shape[:-1], k), dtype=x.dtype, device=x.device)
            tail = torch.cat([zeros, x], dim=-1)
    else:
        tail = torch.cat([line_state.to(x.dtype), x], dim=-1)
        y = move(tail)[..., k:]
    return y, {"line_state": tail[..., -k:].detach().clone()}


def _shift_steps(x: torch.Tensor, d) -> torch.Tensor:
    """``y[t] = x[t − d]`` (0 before) for a whole number of steps ``d``, as
    :func:`slayerc.runtime.axon.shift` computes it, writing each output element once."""
    k = int(d)
    if k <= 0 or k >= x.shape[-1]:
        return axon.shift(x, d)
    out = torch.empty_like(x)
    out[..., :k] = 0
    out[..., k:] = x[..., :-k]
    return out


def node_args(node: Op, value: Value) -> tuple[tuple, dict[str, Any]]:
    """``dynamics`` arguments of an ``axon.delay`` node (the live tensor of a delay array)."""
    return (value("delay"),), {}


KERNELS = {"torch": dynamics}
