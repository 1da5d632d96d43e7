"""Triton backend: fused neuron kernels (forward + backward) for training on GPUs.

* :mod:`.kernels` — the ``@triton.jit`` kernels (imported lazily: ``triton`` is optional).
* :mod:`.ops` — autograd Functions over the kernels and the dispatcher (kernel on CUDA, or on
  CPU under ``TRITON_INTERPRET=1``; otherwise the torch reference, with one warning).
* :mod:`.reference` — the same ops composed from :mod:`slayerc.runtime` (fallback and oracle).
* :mod:`.adapters` — run ``slayerc.slayer`` neurons and blocks through the fused ops.
* :mod:`.training` — the fx training graph built by ``slayerc.compile(..., backend="triton")``.

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
