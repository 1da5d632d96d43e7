"""Triton backend: fused neuron kernels (forward + backward) for training on GPUs.

* :mod:`.kernels` — the ``@triton.jit`` kernels (imported lazily: ``triton`` is optional).
* :mod:`.ops` — autograd Functions over the kernels and the dispatcher (kernel on CUDA, or on
  CPU under ``TRITON_INTERPRET=1``; otherwise the family's torch dynamics, with one warning).
  Importing it registers each op as its family's ``"triton"`` kernel in
  :mod:`slayerc.runtime.neurons`, whose ``dynamics`` functions are the torch oracle.

Training goes through the IR: ``slayerc.to_module(graph, backend="triton")`` (and
``slayerc.compile(model, x, backend="triton")``, which traces ``model`` first) runs every neuron
node through these kernels.

See ``docs/triton-backend.md``.
"""

from slayerc.backends.triton.ops import (
    Output,
    adrf,
    adrf_iz,
    alif,
    cuba,
    rf,
    rf_iz,
    sigma_delta,
    triton_available,
    use_triton,
)

__all__ = [
    "Output", "adrf", "adrf_iz", "alif", "cuba", "rf", "rf_iz", "sigma_delta",
    "triton_available", "use_triton",
]
