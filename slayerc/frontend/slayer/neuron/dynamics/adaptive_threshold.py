"""Adaptive threshold and refractory dynamics (lava-dl ``neuron.dynamics.adaptive_threshold``).

.. math::
    \\vartheta[t] = (1-\\alpha_\\vartheta)(\\vartheta[t-1] - \\vartheta_0) + \\vartheta_0, \\quad
    r[t] = (1-\\alpha_r)\\,r[t-1], \\quad s[t] = x[t] - r[t] \\ge \\vartheta[t]

and on a spike ``r += 2θ``, ``θ += θ_step``.
"""

from __future__ import annotations

from slayerc.runtime.dynamics import adaptive_threshold as _kernel

from ._adaptive import persistent_ref_state, persistent_th_state  # noqa: F401

#: lava-dl module flags (its neurons read them); kept for code that sets them.
reset_persistent_ref_state = True
reset_persistent_th_state = True


def dynamics(input, ref_state, ref_decay, th_state, th_decay, th_scale, th0, w_scale,
             debug=False):
    """Threshold and refractory traces ``(threshold, refractory)`` for the voltage ``input``.

    ``ref_decay``/``th_decay`` are ×4096 integers; ``th_scale`` is the threshold step after a
    spike, ``th0`` the resting threshold, ``w_scale`` the integer scale.
    """
    return _kernel(input, th_decay, ref_decay, float(th_scale), float(th0), int(w_scale),
                   th_state, ref_state)
