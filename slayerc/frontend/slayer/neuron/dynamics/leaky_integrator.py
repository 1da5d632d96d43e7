"""Leaky integrator (lava-dl ``neuron.dynamics.leaky_integrator``).

.. math::
    y[t] = (1 - \\alpha)\\,y[t-1] + x[t], \\quad s[t] = y[t] \\ge \\vartheta, \\quad
    y[t] \\leftarrow y[t]\\,(1 - s[t])
"""

from __future__ import annotations

from slayerc.runtime.dynamics import leaky_integrator as _kernel

from ._common import as_threshold, fired


def dynamics(input, decay, state, w_scale, threshold=None, debug=False):
    """Leaky-integrator trace of ``input`` ``[N, *S, T]`` (pre-reset values).

    Args:
        input: input tensor.
        decay: decay ×4096 (the unscaled integer, one value, per channel or per neuron).
        state: initial state (one value broadcasts to ``[N, *S]``).
        w_scale: integer scale of the arithmetic (slayer's ``s_scale``).
        threshold: reset threshold, or None (or negative) for no reset.
        debug: ignored (lava-dl switched to its Python path).
    """
    return _kernel(input, decay, state, int(w_scale), as_threshold(threshold))


def persistent_state(state, spike):
    """The state to keep for the next call: zero where the last step spiked."""
    return state * (1 - fired(spike, state))
