"""How closely a legalized graph's fixed-point spikes follow the float model, layer by layer.

``quant_report(g_float, g_fixed, x)`` runs the float interpreter on ``g_float`` (the model as
trained, e.g. the traced graph) and the bit-accurate fixed-point runtime on ``g_fixed`` (after
``legalize-quant``) on the same input, and gives per neuron layer (matched by node name, which
passes keep) the fraction of equal output entries, next to the per-synapse weight errors that
``legalize-quant`` reported (``Report.values``).  Used by ``slayerc compile --quant-report``
and by the tests; not a pass (it runs the graph).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from slayerc.ir import ops
from slayerc.ir.core import Graph
from slayerc.runtime.fixed import simulate
from slayerc.runtime.interpreter import interpret


@dataclass(frozen=True)
class QuantReport:
    """Per layer: spike agreement (neurons) and weight error (synapses, from the pass)."""

    agreement: dict[str, float]
    entries: dict[str, int]
    weights: Mapping[str, float] = field(default_factory=dict)

    @property
    def total(self) -> float:
        """Agreement over all entries of all compared neuron layers."""
        n = sum(self.entries.values())
        return sum(self.agreement[k] * self.entries[k] for k in self.agreement) / max(n, 1)

    def table(self) -> str:
        """A text table: one row per synapse (exponent, errors) and per neuron (agreement)."""
        rows = [f"{'layer':<28}{'exp':>5}{'max err':>11}{'rms err':>11}{'spikes equal':>14}"]
        syn = sorted({k.rsplit(".", 1)[0] for k in self.weights})
        w = self.weights
        for name in syn:
            exp, mx, rms = (w.get(f"{name}.{k}", 0.0) for k in ("exp", "max_err", "rms_err"))
            rows.append(f"{name:<28}{int(exp):>+5d}{mx:>11.3g}{rms:>11.3g}")
        rows += [f"{name:<28}{'':>27}{100 * a:>13.2f}%" for name, a in self.agreement.items()]
        rows.append(f"{'all neuron outputs':<28}{'':>27}{100 * self.total:>13.2f}%")
        return "\n".join(rows)


def _recording(g: Graph, names: list[str]) -> tuple[Graph, dict[str, str]]:
    """``g`` with one extra ``io.output`` per named node (the interpreter returns outputs)."""
    extra = [ops.Output(name=g.unique_name(f"rec_{n}"), inputs=(n,), shape=g[n].shape,
                        dtype=g[n].dtype) for n in names]
    return g.replace(nodes=[*g, *extra]), {e.inputs[0]: e.name for e in extra}


def spike_agreement(g_float: Graph, g_fixed: Graph, x: Any) -> tuple[dict[str, float],
                                                                      dict[str, int]]:
    """Per neuron node in both graphs: fraction of equal output entries, and the entry count."""
    names = [n.name for n in g_fixed if n.OP in ops.NEURON_OPS and n.name in g_float.nodes
             and g_float[n.name].OP == n.OP]
    rec, out_name = _recording(g_float, names)
    floats = interpret(rec, x)
    floats = floats if isinstance(floats, dict) else {out_name[names[0]]: floats}
    fixed = simulate(g_fixed, x, record=names)
    agree, count = {}, {}
    for n in names:
        a = np.asarray(floats[out_name[n]].detach().cpu().numpy())
        b = np.asarray(fixed[n])
        agree[n], count[n] = float(np.mean(a == b)), int(a.size)
    return agree, count


def quant_report(g_float: Graph, g_fixed: Graph, x: Any,
                 weights: Mapping[str, float] | None = None) -> QuantReport:
    """Spike agreement of ``g_fixed`` (fixed point) with ``g_float`` (float) on ``x``."""
    agree, count = spike_agreement(g_float, g_fixed, x)
    return QuantReport(agree, count, dict(weights or {}))
