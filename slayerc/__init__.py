"""slayerc: a compiler toolchain for spiking neural networks.

The public API (imported lazily, so ``import slayerc`` stays light):

- :func:`trace` ``(model, example_input) -> Graph``: torch.fx tracing into the SNN IR;
- :func:`compile` ``(model, example_input, pipeline=None, backend="ir", target="loihi2")``:
  trace, then the target's default pipeline (as ``slayerc compile``), or a trainable module
  (``backend="torch"`` / ``"triton"``);
- :func:`run_netlist`: bit-accurate fixed-point run of a ``.net`` file (as ``slayerc run``);
- :func:`load` / :func:`save`: ``.sir`` text IR or ``.net`` netx hdf5 netlists, by suffix;
- :class:`PassManager` and :func:`parse_pipeline`: pass pipelines such as ``"shape-infer"``;
- :func:`interpret`: run a graph in floating point (``slayerc.runtime.interpreter``);
- :func:`to_module` / :func:`from_module`: any graph as a trainable ``nn.Module`` (backend
  ``"torch"`` or ``"triton"``), and the trained module's graph back;
- ``slayerc.slayer``: the SLAYER-compatible modelling API (``import slayerc.slayer as slayer``).
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_LAZY = {
    "trace": "slayerc.frontend.trace:trace",
    "compile": "slayerc.driver:compile",
    "run_netlist": "slayerc.driver:run_netlist",
    "load": "slayerc.driver:load",
    "save": "slayerc.driver:save",
    "PassManager": "slayerc.passes.manager:PassManager",
    "parse_pipeline": "slayerc.passes.manager:parse_pipeline",
    "interpret": "slayerc.runtime.interpreter:interpret",
    "to_module": "slayerc.backends.module:to_module",
    "from_module": "slayerc.backends.module:from_module",
    "Graph": "slayerc.ir.core:Graph",
    "SlayerError": "slayerc.errors:SlayerError",
}

__all__ = [*_LAZY, "__version__"]


def __getattr__(name: str) -> Any:
    target = _LAZY.get(name)
    if target is None:
        raise AttributeError(f"module 'slayerc' has no attribute {name!r}")
    module, _, attr = target.partition(":")
    value = getattr(importlib.import_module(module), attr)
    globals()[name] = value
    return value
