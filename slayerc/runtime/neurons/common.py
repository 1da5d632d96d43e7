"""What every neuron family shares: the block output tail, persistent-state helpers, and the
IR attributes common to all ``neuron.*`` ops."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from slayerc.errors import RuntimeSimError
from slayerc.ir.core import Op, ParamRef
from slayerc.ir.target import DECAY_SCALE
from slayerc.runtime import axon


@dataclass(frozen=True, eq=False)
class Output:
    """What happens to the spikes on their way out of a block (fused kernels fold it in).

    Attributes:
        delay_shift: the block's one-step shift ``y[t] = s[t−1]``.
        shift_state: ``y[0]`` under ``delay_shift`` (the previous call's last frame for a
            persistent block; zeros when None).
        delay: axonal delay ``d`` (a number, or a tensor per channel or per neuron); the spikes
            move ``trunc(d/Ts)`` further steps.  A tensor gets lava-dl's delay gradient.
        grad_scale, sampling_time: as ``slayer.axon.Delay``.
    """

    delay_shift: bool = False
    shift_state: torch.Tensor | None = None
    delay: torch.Tensor | float | None = None
    grad_scale: float = 1.0
    sampling_time: float = 1.0


NO_OUTPUT = Output()
"""The default: spikes leave unshifted."""


def apply_output(s: torch.Tensor, output: Output) -> torch.Tensor:
    """``step_delay`` (when ``delay_shift``) then the axonal delay, as a block does."""
    y = s
    if output.delay_shift:
        first = output.shift_state
        if first is None:
            y = torch.nn.functional.pad(s, (1, -1))
        else:
            first = first.to(s.dtype).expand(s.shape[:-1])
            y = torch.cat([first.unsqueeze(-1), s[..., :-1]], dim=-1)
    if output.delay is None:
        return y
    if torch.is_tensor(output.delay):
        return axon.delay(y, output.delay, output.grad_scale, output.sampling_time)
    return axon.shift(y, output.delay, output.sampling_time)


def last(t: torch.Tensor) -> torch.Tensor:
    """The last time step of a trace, detached (a persistent state)."""
    return t[..., -1].detach().clone()


def fired(s: torch.Tensor) -> torch.Tensor:
    """1 where the last step spiked (graded spikes count when positive), detached."""
    return (s[..., -1] > 0).to(s.dtype).detach()


def adapted(states: dict, th: torch.Tensor, r: torch.Tensor, spiked, step: float) -> dict:
    """Persistent θ/r after the call: ``r += 2θ·s``, ``θ += step·s`` on the last step."""
    states["refractory_state"] = last(r) + 2 * spiked * last(th)
    states["threshold_state"] = last(th) + spiked * step
    return states


# ------------------------------------------------------------------------- from IR nodes

P_SCALE = DECAY_SCALE
"""Decays are fractions in the IR and ×4096 in the kernels (and in slayer's state dicts)."""

Value = Callable[[str], Any]
"""``value(attr)``: a node attribute as the dynamics take it (a live tensor for a parameter)."""


def scalar(node: Op, attr: str) -> float:
    """A scalar attribute, or a clear error for a per-channel one the family cannot take."""
    value = getattr(node, attr)
    if isinstance(value, ParamRef):
        raise RuntimeSimError(f"a per-channel '{attr}' is not supported for {node.OP}; "
                              "use a scalar")
    return float(value)


def spike_args(node: Op) -> dict[str, Any]:
    """Threshold, surrogate-gradient and scale keywords of a spiking family's dynamics.

    The IR keeps ``tau_grad`` relative to θ (slayer's ``tau_rho = tau_grad·θ``) and the state
    scale as slayer's ``w_scale`` (``s_scale = 64·w_scale``).
    """
    th = scalar(node, "threshold")
    return {"threshold": th, "tau_rho": float(node.tau_grad) * th,  # type: ignore[attr-defined]
            "scale_rho": float(node.scale_grad),  # type: ignore[attr-defined]
            "scale": int(node.scale) * 64,  # type: ignore[attr-defined]
            "graded": bool(node.graded)}  # type: ignore[attr-defined]


def decay(value: Value, attr: str) -> torch.Tensor:
    """A decay as the kernels take it: ×4096 (a one-element tensor for a scalar)."""
    v = value(attr)
    if not torch.is_tensor(v):
        v = torch.tensor([float(v)], dtype=torch.float64)
    return v.reshape(v.shape or (1,)) * P_SCALE


def bias_norm(value: Value) -> Callable[[torch.Tensor], torch.Tensor] | None:
    """A neuron's ``bias`` as the norm hook the dynamics take (per channel or per neuron)."""
    b = value("bias")
    if b is None:
        return None
    b = b if torch.is_tensor(b) else torch.tensor([float(b)])

    def add(x: torch.Tensor) -> torch.Tensor:
        bb = b.to(device=x.device, dtype=x.dtype)
        if bb.dim() == 1 and x.dim() > 3:
            bb = bb.reshape(-1, *([1] * (x.dim() - 3)))
        return x + bb.unsqueeze(-1)
    return add
