"""Passes over the IR, each a pure ``run(graph, opts) -> graph`` in its own module.

``REGISTRY`` is the one explicit table from pass name to ``"module:function"``; modules are
imported only when a pipeline uses them.  See :mod:`slayerc.passes.manager` for pipelines.
"""

from __future__ import annotations

#: Pass name -> "module:function", imported lazily.  Add new passes here (no decorators).
REGISTRY: dict[str, str] = {
    "canonicalize": "slayerc.passes.canonicalize:run",
    "fold-batchnorm": "slayerc.passes.fold_batchnorm:run",
    "legalize-delay": "slayerc.passes.legalize_delay:run",
    "legalize-layers": "slayerc.passes.legalize_layers:run",
    "legalize-quant": "slayerc.passes.legalize_quant:run",
    "lower-kwta": "slayerc.passes.lower_kwta:run",
    "lower-pool": "slayerc.passes.lower_pool:run",
    "shape-infer": "slayerc.passes.shape_infer:run",
    "sparsify-masks": "slayerc.passes.sparsify_masks:run",
}

from slayerc.passes.manager import PassManager, PassSpec, parse_pipeline  # noqa: E402

__all__ = ["REGISTRY", "PassManager", "PassSpec", "parse_pipeline"]
