"""``neuron.li``: current-based leaky integrator without spikes; the output is the voltage.

.. math::
    u[t] = (1-\\alpha_u)\\,u[t-1] + x[t], \\quad v[t] = (1-\\alpha_v)\\,v[t-1] + u[t] + b,
    \\quad y[t] = v[t]

The two integrators are lava-dl's ``leaky_integrator`` (``neuron.cuba``'s, without threshold and
reset), in the integer arithmetic of :func:`slayerc.runtime.dynamics.leaky_integrator`: states
on the grid ``1/S`` (``S = 64·scale``), decays ×4096, each decay truncated toward zero; gradients
flow to the input and to both decays.  NIR's ``LI`` is ``current_decay = 1`` and its ``CubaLI``
the general case (``slayerc.frontend.nir_import``).  Kernels: ``torch`` (:func:`dynamics`) and
``fixed`` (:mod:`slayerc.runtime.fixed.li`: CUBA's integer update without the spike, for
``slayerc run``); no netx neuron type holds it, so a netlist refuses it.
"""

from __future__ import annotations

from typing import Any

from slayerc.ir.core import Op
from slayerc.ir.target import STATE_SCALE
from slayerc.runtime.dynamics import leaky_integrator
from slayerc.runtime.neurons.common import Value, bias_norm, decay, last

OP = "neuron.li"
PARAMS = ("current_decay", "voltage_decay")
STATES = ("current_state", "voltage_state")


def dynamics(x, current_decay, voltage_decay, *, scale=STATE_SCALE, norm=None,
             current_state=None, voltage_state=None, exact_decay=False):
    """The voltage of ``x`` ``[N, *S, T]`` (slayer units); returns ``(v, states)``.

    Args:
        current_decay, voltage_decay: decays ×4096 (one, per channel or per neuron).
        scale: integer state scale ``S``.
        norm: applied to the current before the voltage integrates it (the IR's ``bias``), or
            None.
        current_state, voltage_state: initial states (persistent), or None for 0.
        exact_decay: the decays unrounded (the IR node's ``exact_decays``).
    """
    u = leaky_integrator(x, current_decay, current_state, scale, exact_decay=exact_decay)
    v = leaky_integrator(u if norm is None else norm(u), voltage_decay, voltage_state, scale,
                         exact_decay=exact_decay)
    return v, {"current_state": last(u), "voltage_state": last(v)}


def node_args(node: Op, value: Value) -> tuple[tuple, dict[str, Any]]:
    """``dynamics`` arguments of a ``neuron.li`` node."""
    args = (decay(value, "current_decay"), decay(value, "voltage_decay"))
    return args, {"scale": int(node.scale) * 64, "norm": bias_norm(value),  # type: ignore
                  "exact_decay": bool(getattr(node, "exact_decays", False))}


KERNELS = {"torch": dynamics, "fixed": "slayerc.runtime.fixed.li:LeakyIntegrator"}
