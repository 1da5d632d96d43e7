"""``slayerc.compile``: trace a model and run a pass pipeline over the result."""

from __future__ import annotations

import torch

from slayerc.errors import FrontendError
from slayerc.frontend.trace import trace
from slayerc.ir.core import Graph
from slayerc.passes.manager import PassManager


def compile(model: torch.nn.Module, example_input: torch.Tensor, pipeline: str = "",
            backend: str = "ir") -> Graph:
    """Trace ``model`` on ``example_input`` (``[N, *S, T]``) and run ``pipeline`` over it.

    ``backend="ir"`` returns the graph (write it with :func:`slayerc.save` as ``.sir`` or
    ``.net``).  Other backends are added by later versions and rejected with a clear error.
    """
    if backend != "ir":
        raise FrontendError(f"unknown backend {backend!r}; available: 'ir'")
    g = trace(model, example_input)
    return PassManager.from_string(pipeline).run(g) if pipeline else g
