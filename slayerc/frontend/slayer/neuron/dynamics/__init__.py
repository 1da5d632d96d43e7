"""lava-dl's ``slayer.neuron.dynamics``: the neuron dynamics as functions, with lava-dl's
signatures (``spec/slayer-dynamics.md`` §3).

Each is a thin wrapper over the integer-exact kernels that the neuron families share
(:mod:`slayerc.runtime.dynamics`, used by the families' homes in :mod:`slayerc.runtime.neurons`):
same numbers as the ``slayerc.slayer`` neurons, on CPU and GPU alike (lava-dl compiled CUDA
code at run time for the GPU; slayerc has no run-time compilation).  ``debug`` is accepted and
ignored.  Gradients are slayerc's (the decay gradient is corrected; see
``docs/differences-from-lava-dl.md``).
"""

from . import adaptive_phase_th, adaptive_resonator, adaptive_threshold, leaky_integrator, resonator

__all__ = [
    "adaptive_phase_th", "adaptive_resonator", "adaptive_threshold", "leaky_integrator",
    "resonator",
]
