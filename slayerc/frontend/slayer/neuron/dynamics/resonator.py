"""Resonator (lava-dl ``neuron.dynamics.resonator``): complex integrator with a rotating decay.

.. math::
    \\Re z[t] = c\\,\\Re z[t-1] - s\\,\\Im z[t-1] + x_{re}[t], \\quad
    \\Im z[t] = s\\,\\Re z[t-1] + c\\,\\Im z[t-1] + x_{im}[t]

and with a threshold the Izhikevich reset (``Re z = 0``, ``Im z = θ − 1/S`` where
``Im z ≥ θ``).
"""

from __future__ import annotations

from slayerc.runtime.dynamics import resonator as _kernel

from ._common import as_threshold, fired


def dynamics(real_input, imag_input, sin_decay, cos_decay, real_state, imag_state, w_scale,
             threshold=None, debug=False):
    """Real and imaginary traces ``(real, imag)`` of the complex input.

    ``sin_decay``/``cos_decay`` are ×4096 integers; the states broadcast from one value;
    ``w_scale`` is the integer scale; ``threshold`` None (or negative): no reset.
    """
    return _kernel(real_input, imag_input, sin_decay, cos_decay, real_state, imag_state,
                   int(w_scale), as_threshold(threshold))


def persistent_real_state(real_state, spike):
    """Real state to keep: zero where the last step spiked."""
    return real_state * (1 - fired(spike, real_state))


def persistent_imag_state(imag_state, spike, threshold, scale):
    """Imaginary state to keep: ``θ − 1/scale`` where the last step spiked."""
    s = fired(spike, imag_state)
    return s * (threshold - 1 / scale) + (1 - s) * imag_state
