"""``slayerc.compile``: trace a model and run a pass pipeline over the result, or make it a
trainable module of its IR graph (``backend="torch"`` or ``"triton"``)."""

from __future__ import annotations

import warnings

import torch

from slayerc.errors import FrontendError
from slayerc.frontend import checkpoint
from slayerc.frontend.trace import trace
from slayerc.ir.core import Graph
from slayerc.passes.manager import PassManager

BACKENDS = ("ir", "torch", "triton")


def compile(model: torch.nn.Module, example_input: torch.Tensor, pipeline: str = "",
            backend: str = "ir") -> Graph | torch.nn.Module:
    """Trace ``model`` on ``example_input`` (``[N, *S, T]``) and compile it for ``backend``.

    * ``backend="ir"`` runs ``pipeline`` over the traced IR graph and returns the graph (write
      it with :func:`slayerc.save` as ``.sir`` or ``.net``).
    * ``backend="torch"`` / ``"triton"`` return the trainable module
      ``slayerc.to_module(trace(model, example_input), backend)``
      (:class:`slayerc.runtime.interpreter.GraphModule`): every neuron runs its family's
      registered kernel (``"triton"``: the fused Triton kernels, forward and backward; without
      CUDA and without ``TRITON_INTERPRET=1`` the torch dynamics run, with one warning).  Its
      forward equals the model's.  It starts from the model's own values (latent weights,
      unrounded decays, fractional delays) and trains what the model trains (each parameter's
      ``requires_grad`` follows the model's).  Its parameters are the graph's (decays as
      fractions of 4096, weight-normed weights as one ``weight``); map checkpoints with
      :mod:`slayerc.frontend.checkpoint` (``load_model_state`` / ``model_state``), and get
      the graph back with :func:`slayerc.from_module`.  See ``docs/triton-backend.md``.
    """
    if backend in ("torch", "triton"):
        return _trainable(model, example_input, pipeline, backend)
    if backend != "ir":
        raise FrontendError(f"unknown backend {backend!r}; available: "
                            f"{', '.join(map(repr, BACKENDS))}")
    g = trace(model, example_input)
    return PassManager.from_string(pipeline).run(g) if pipeline else g


def _trainable(model: torch.nn.Module, example_input: torch.Tensor, pipeline: str,
               backend: str) -> torch.nn.Module:
    from slayerc.backends.module import to_module

    if pipeline:
        raise FrontendError(f"backend={backend!r} compiles the model itself for training; pass "
                            f"pipelines (got {pipeline!r}) apply to backend='ir' only")
    if not isinstance(example_input, torch.Tensor) or example_input.dim() < 3:
        raise FrontendError("the example input must be a tensor [N, C(, H, W), T] (batch first, "
                            f"time last); got {getattr(example_input, 'shape', example_input)!r}")
    # learn_neuron: scalar decays/thresholds become one-element parameters, so checkpoints can
    # set them; mirror_requires_grad then freezes those the model does not train
    module = to_module(trace(model, example_input), backend=backend, learn_neuron=True)
    setattr(module, checkpoint.ATTR, checkpoint.build_map(module.graph, model))
    # the model's latent values; a lazily sized one that the model has not sized yet (its first
    # forward draws it) keeps the value the trace drew
    state = model.state_dict()
    unsized = checkpoint.misfits(module, state)
    if unsized:
        warnings.warn(f"slayerc.compile: {', '.join(unsized)} of {type(model).__name__} are not "
                      "sized yet (the model draws them at its first forward); the compiled module "
                      "keeps the values the trace drew, which the model will not share. Run one "
                      "forward of the model before compiling to share them.", stacklevel=3)
    checkpoint.load_model_state(module, state, strict=False, skip_misfit=True)
    checkpoint.mirror_requires_grad(module, model)
    return module
