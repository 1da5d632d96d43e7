"""``slayerc.compile``: trace a model and run a pass pipeline over the result, or build a
fused training graph (``backend="triton"``)."""

from __future__ import annotations

import torch

from slayerc.errors import FrontendError
from slayerc.frontend.trace import _symbolic, trace
from slayerc.ir.core import Graph
from slayerc.passes.manager import PassManager

BACKENDS = ("ir", "triton")


def compile(model: torch.nn.Module, example_input: torch.Tensor, pipeline: str = "",
            backend: str = "ir") -> Graph | torch.nn.Module:
    """Trace ``model`` on ``example_input`` (``[N, *S, T]``) and compile it for ``backend``.

    * ``backend="ir"`` runs ``pipeline`` over the traced IR graph and returns the graph (write
      it with :func:`slayerc.save` as ``.sir`` or ``.net``).
    * ``backend="triton"`` returns a trainable ``torch.fx.GraphModule`` of ``model`` in which
      each slayer neuron chain (neuron, ``delay_shift``, axonal delay) runs as one fused Triton
      kernel forward and backward, while synapses stay torch ops.  It shares the model's
      parameters and states (same ``state_dict`` keys).  Recurrent/KWTA layers run their eager
      forward, with one warning per process.  Without CUDA (and without
      ``TRITON_INTERPRET=1``) the torch reference dynamics run, with one warning.  See
      ``docs/triton-backend.md``.
    """
    if backend == "triton":
        return _triton(model, example_input, pipeline)
    if backend != "ir":
        raise FrontendError(f"unknown backend {backend!r}; available: "
                            f"{', '.join(map(repr, BACKENDS))}")
    g = trace(model, example_input)
    return PassManager.from_string(pipeline).run(g) if pipeline else g


def _triton(model: torch.nn.Module, example_input: torch.Tensor,
            pipeline: str) -> torch.nn.Module:
    from slayerc.backends.triton import training

    if pipeline:
        raise FrontendError("backend='triton' compiles the model itself for training; pass "
                            f"pipelines (got {pipeline!r}) apply to backend='ir' only")
    if not isinstance(example_input, torch.Tensor) or example_input.dim() < 3:
        raise FrontendError("the example input must be a tensor [N, C(, H, W), T] (batch first, "
                            f"time last); got {getattr(example_input, 'shape', example_input)!r}")
    graph = _symbolic(model).graph
    return training.build(model, graph, example_input)
