"""Triton backend: fused neuron kernels (forward + backward) for training on GPUs.

* :mod:`.kernels` — the ``@triton.jit`` kernels (imported lazily: ``triton`` is optional).
* :mod:`.ops` — the dispatcher (kernel on CUDA, or on CPU under ``TRITON_INTERPRET=1``;
  otherwise the family's torch dynamics, with one warning), the host-side preparation, and the
  LIF-family (cuba, alif) and sigma-delta autograd Functions over the kernels.
* :mod:`.resonator` — the resonator families' (rf, rf_iz, adrf, adrf_iz) autograd Function.

Importing this package registers each op as its family's ``"triton"`` kernel in
:mod:`slayerc.runtime.neurons`, whose ``dynamics`` functions are the torch oracle.

Training goes through the IR: ``slayerc.to_module(graph, backend="triton")`` (and
``slayerc.compile(model, x, backend="triton")``, which traces ``model`` first) runs every neuron
node through these kernels.

See ``docs/triton-backend.md``.
"""

import torch

from slayerc.backends.triton.ops import (
    Output,
    alif,
    cuba,
    sigma_delta,
    triton_available,
    use_triton,
)
from slayerc.backends.triton.resonator import adrf, adrf_iz, rf, rf_iz
from slayerc.runtime import neurons as families

__all__ = [
    "Output", "adrf", "adrf_iz", "alif", "cuba", "rf", "rf_iz", "sigma_delta",
    "triton_available", "use_triton",
]


# ------------------------------------------------------------------------ family registration

_FUSED = {
    "neuron.cuba": cuba, "neuron.alif": alif, "neuron.rf": rf, "neuron.rf_iz": rf_iz,
    "neuron.adrf": adrf, "neuron.adrf_iz": adrf_iz, "neuron.sigma_delta": sigma_delta,
}


def _registered(op: str, fused):
    """The ``"triton"`` kernel of ``op``: the fused op where it covers the call (no neuron
    norm or bias hook, ReLU activation), the family's torch dynamics otherwise."""
    family = families.family(op)

    def run(x, *args, norm=None, want_state=True, activation=None, **kwargs):
        if norm is not None or activation not in (None, torch.relu, torch.nn.functional.relu) \
                or kwargs.get("exact_decay"):  # the fused loops round decays to 12 bits
            extra = {"activation": activation} if activation is not None else {}
            if op == "neuron.cuba":
                extra["want_state"] = want_state
            return family.dynamics(x, *args, norm=norm, **extra, **kwargs)
        return fused(x, *args, **kwargs)
    run.__doc__ = f"``{op}`` through :func:`{fused.__name__}` (registered Triton kernel)."
    return run


for _op, _fn in _FUSED.items():
    families.register(_op, "triton", _registered(_op, _fn))
