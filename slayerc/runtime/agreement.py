"""How closely a legalized graph's fixed-point spikes follow the float model, layer by layer.

``quant_report(g_float, g_fixed, x)`` runs the float interpreter on ``g_float`` (the model as
trained, e.g. the traced graph) and the bit-accurate fixed-point runtime on ``g_fixed`` (after
``legalize-quant``) on the same input, and gives per neuron layer (matched by node name, which
passes keep) the fraction of equal output entries, next to the per-synapse weight errors that
``legalize-quant`` reported (``Report.values``).  ``legalize-layers`` may make a layer's output
come later (one step per synapse): pass its per-node ``latency`` and the outputs are aligned.
With ``g_legal`` (the graph just before ``legalize-quant``) a second column gives the agreement
with the float interpreter on the same graph, i.e. what quantization alone changes; the first
column also counts what the layer form changed (biases, head-start).  Used by ``slayerc compile
--quant-report`` and by the tests; not a pass (it runs the graph).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from slayerc.ir import ops
from slayerc.ir.core import Graph
from slayerc.runtime.fixed import simulate
from slayerc.runtime.interpreter import interpret

WEIGHT_KEYS = ("exp", "max_err", "rms_err")


def _total(agreement: Mapping[str, float], entries: Mapping[str, int]) -> float:
    n = sum(entries[k] for k in agreement)
    return sum(agreement[k] * entries[k] for k in agreement) / max(n, 1)


@dataclass(frozen=True)
class QuantReport:
    """Per layer: spike agreement (neurons) and weight error (synapses, from the pass).

    ``agreement``: fixed point vs the float model; ``quant``: fixed point vs the float
    interpreter on the same graph before quantization (empty when not measured).
    """

    agreement: dict[str, float]
    entries: dict[str, int]
    weights: Mapping[str, float] = field(default_factory=dict)
    quant: dict[str, float] = field(default_factory=dict)

    @property
    def total(self) -> float:
        """Agreement with the float model over all entries of all compared neuron layers."""
        return _total(self.agreement, self.entries)

    @property
    def total_quant(self) -> float:
        """Agreement with the unquantized graph over all entries (nan when not measured)."""
        return _total(self.quant, self.entries) if self.quant else float("nan")

    def table(self) -> str:
        """A text table: one row per synapse (exponent, errors) and per neuron (agreement)."""
        head = f"{'layer':<28}{'exp':>5}{'max err':>11}{'rms err':>11}{'= model':>10}"
        rows = [head + (f"{'= unquantized':>15}" if self.quant else "")]
        w = self.weights
        syn = sorted({k.rsplit(".", 1)[0] for k in w if k.rsplit(".", 1)[-1] in WEIGHT_KEYS})
        for name in syn:
            exp, mx, rms = (w.get(f"{name}.{k}", 0.0) for k in WEIGHT_KEYS)
            rows.append(f"{name:<28}{int(exp):>+5d}{mx:>11.3g}{rms:>11.3g}")

        def row(name: str, a: float, q: float | None) -> str:
            extra = f"{100 * q:>14.2f}%" if q is not None else ""
            return f"{name:<28}{'':>27}{100 * a:>9.2f}%{extra}"
        for name, a in self.agreement.items():
            rows.append(row(name, a, self.quant.get(name) if self.quant else None))
        rows.append(row("all neuron outputs", self.total,
                        self.total_quant if self.quant else None))
        return "\n".join(rows)


def _recording(g: Graph, names: list[str]) -> tuple[Graph, dict[str, str]]:
    """``g`` with one extra ``io.output`` per named node (the interpreter returns outputs)."""
    extra = [ops.Output(name=g.unique_name(f"rec_{n}"), inputs=(n,), shape=g[n].shape,
                        dtype=g[n].dtype) for n in names]
    return g.replace(nodes=[*g, *extra]), {e.inputs[0]: e.name for e in extra}


def latencies(values: Mapping[str, float]) -> dict[str, int]:
    """The ``NAME.latency`` entries of pass report values (``legalize-layers``), by node."""
    return {k[: -len(".latency")]: int(v) for k, v in values.items() if k.endswith(".latency")}


def _floats(g: Graph, names: list[str], x: torch.Tensor) -> dict[str, np.ndarray]:
    """The float interpreter's output of each named node of ``g`` on ``x``."""
    rec, out_name = _recording(g, names)
    got = interpret(rec, x)
    got = got if isinstance(got, dict) else {out_name[names[0]]: got}
    return {n: got[out_name[n]].detach().cpu().numpy() for n in names}


def _agreement(a: np.ndarray, b: np.ndarray, lat: int, steps: int) -> tuple[float, int]:
    """Equal fraction of float ``a`` and fixed ``b`` (whose output comes ``lat`` steps later)."""
    b = b[..., max(lat, 0): max(lat, 0) + steps]
    if lat < 0:  # earlier than the model: its first steps have no float counterpart
        a, b = a[..., -lat:], b[..., : steps + lat]
    return float(np.mean(a == b)), int(a.size)


def quant_report(g_float: Graph, g_fixed: Graph, x: Any,
                 weights: Mapping[str, float] | None = None,
                 latency: Mapping[str, int] | None = None,
                 g_legal: Graph | None = None, target: str | None = "loihi2") -> QuantReport:
    """Spike agreement of ``g_fixed`` (fixed point) with ``g_float`` (float) on ``x``.

    Per neuron node in both graphs, the fraction of equal output entries.  ``weights``:
    ``legalize-quant``'s report values; ``latency``: per node, how many steps later ``g_fixed``
    produces its output (``legalize-layers``; :func:`latencies` reads them from its report
    values): the fixed-point run gets ``max(latency)`` zero steps appended and its steps
    ``L .. L+T-1`` are compared with the float steps ``0 .. T-1``.  ``g_legal``: the graph
    before ``legalize-quant``, run in float on the same padded input as the fixed-point run, for
    the quantization-only column.  ``target``: whose graded-message width the fixed-point run
    enforces (None: none).
    """
    latency = dict(latency or {})
    names = [n.name for n in g_fixed if n.OP in ops.NEURON_OPS and n.name in g_float.nodes
             and g_float[n.name].OP == n.OP]
    x = torch.as_tensor(np.asarray(x.detach().cpu() if hasattr(x, "detach") else x))
    steps, lead = x.shape[-1], max([0, *latency.values()])
    padded = torch.cat([x, x.new_zeros((*x.shape[:-1], lead))], -1)
    fixed = simulate(g_fixed, padded.numpy(), record=names, target=target)
    floats = _floats(g_float, names, x)
    agree, count = {}, {}
    for n in names:
        agree[n], count[n] = _agreement(floats[n], np.asarray(fixed[n]), latency.get(n, 0), steps)
    quant: dict[str, float] = {}
    if g_legal is not None:
        same = _floats(g_legal, names, padded)
        quant = {n: float(np.mean(same[n] == np.asarray(fixed[n]))) for n in names}
    return QuantReport(agree, count, dict(weights or {}), quant)
