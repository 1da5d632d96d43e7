"""The report for converted (sigma-delta) models: per layer threshold, quantization error and
message rate, since sparsity is the point of an SDNN.

* **message rate**: the fraction of a layer's neurons that send a (non-zero) message per step,
  on the given input, in the float model (1.0 = dense: every neuron every step, as an ANN
  layer or a rate-coded SNN would);
* **quantization error**: with ``compiled`` (the graph after the loihi2 pipeline), the largest
  difference of the layer's decoded activation (the sum of its messages) at the last step
  between the fixed-point run and the float model, relative to the layer's largest float
  activation; for the outputs the same with the decoded outputs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from slayerc.errors import SlayerError
from slayerc.ir import ops
from slayerc.ir.core import Graph, ParamRef
from slayerc.runtime.fixed.simulator import simulate
from slayerc.runtime.interpreter import interpret

LAYER_OPS = ("axon.delta", "neuron.sigma_delta")
MESSAGE = float(1 << 12)  # fixed-point message unit (2^-12)
SIGMA = float(1 << 18)  # fixed-point sigma output unit (2^-18)


@dataclass
class LayerRow:
    """One neuron layer of the report."""

    name: str
    neurons: int
    threshold: float
    rate: float
    quant_error: float | None = None


@dataclass
class SdnnReport:
    """Per layer rows, the overall rate, and per output the quantization error."""

    layers: list[LayerRow]
    steps: int
    outputs: dict[str, float | None] = field(default_factory=dict)
    #: per output the exponent ``k`` of its decoder: the netlist's sigma output (units of
    #: ``2^-18``) is ``2^k`` times the model's value (see :func:`netlist_outputs`)
    output_exp: dict[str, int] = field(default_factory=dict)

    @property
    def rate(self) -> float:
        """Messages per neuron and step over all layers (1.0 = dense)."""
        n = sum(r.neurons for r in self.layers)
        return sum(r.rate * r.neurons for r in self.layers) / max(n, 1)

    @property
    def quant_error(self) -> float | None:
        """The largest relative output error of the fixed-point run (None: not measured)."""
        errs = [e for e in self.outputs.values() if e is not None]
        return max(errs) if errs else None

    def table(self) -> str:
        """A text table, one row per layer, then the totals."""
        rows = [f"{'layer':<30}{'neurons':>9}{'threshold':>11}{'rate':>9}{'quant err':>11}"]
        for r in self.layers:
            q = "" if r.quant_error is None else f"{100 * r.quant_error:>10.2f}%"
            rows.append(f"{r.name:<30}{r.neurons:>9}{r.threshold:>11.5g}"
                        f"{100 * r.rate:>8.2f}%{q}")
        for name, e in self.outputs.items():
            q = "" if e is None else f"{100 * e:>10.2f}%"
            rows.append(f"{'output ' + name:<30}{'':>9}{'':>11}{'':>9}{q}")
        rows.append(f"{'all layers':<30}{sum(r.neurons for r in self.layers):>9}{'':>11}"
                    f"{100 * self.rate:>8.2f}%  of dense, over {self.steps} steps")
        for name, k in self.output_exp.items():
            rows.append(f"netlist output {name}: the model's value is the output / 2^{18 + k}")
        return "\n".join(rows)


def _threshold(g: Graph, node: Any) -> float:
    th = node.threshold
    return float(np.max(g.params[th.name])) if isinstance(th, ParamRef) else float(th)


def _record(g: Graph, names: list[str]) -> tuple[Graph, dict[str, str]]:
    extra = [ops.Output(name=g.unique_name(f"rec_{n}"), inputs=(n,), shape=g[n].shape,
                        dtype=g[n].dtype) for n in names]
    return g.replace(nodes=[*g, *extra]), {n: e.name for n, e in zip(names, extra)}


def _float_run(g: Graph, names: list[str], x: torch.Tensor) -> dict[str, np.ndarray]:
    rec, key = _record(g, names)
    got = interpret(rec, x)
    if not isinstance(got, dict):
        got = {rec.outputs[0].name: got}
    outs = {n.name: got[n.name].detach().numpy() for n in g.outputs}
    return {**{n: got[key[n]].detach().numpy() for n in names}, **outs}


def _rel(a: np.ndarray, b: np.ndarray) -> float:
    """max |a − b| at the last step, relative to max |b| there."""
    a, b = a[..., -1], b[..., -1]
    return float(np.max(np.abs(a - b)) / max(float(np.max(np.abs(b))), 1e-12))


def netlist_outputs(g: Graph) -> tuple[Graph, dict[str, int]]:
    """``g`` without its output decoders, as a netlist holds it; and per output their ``k``.

    A converted model's output synapse is scaled by ``2^k`` to use the top of the 8-bit weight
    mantissa, and a ``tensor.affine{scale=2^-k}`` after the ``dendrite.sigma`` gives the model's
    value back.  A netlist ends at the sigma, so its output is ``2^k·2^18`` times the model's.
    """
    nodes, exps, drop = dict(g.nodes), {}, set()
    for out in g.outputs:
        dec = g[out.inputs[0]]
        src = g.nodes.get(dec.inputs[0]) if dec.inputs else None
        if dec.OP != "tensor.affine" or src is None or src.OP != "dendrite.sigma" or \
                float(dec.bias) != 0.0 or len(g.users(dec.name)) != 1:  # type: ignore
            continue
        k = -float(np.log2(float(dec.scale)))  # type: ignore[attr-defined]
        if k != round(k):
            continue
        exps[out.name] = int(round(k))
        drop.add(dec.name)
        nodes[out.name] = out.replace(inputs=(src.name,))
    if not drop:
        return g, {}
    return g.replace(nodes=[n for name, n in nodes.items() if name not in drop]), exps


def sdnn_report(graph: Graph, x: Any, compiled: Graph | None = None,
                target: str | None = "loihi2") -> SdnnReport:
    """Measure ``graph`` (float) and ``compiled`` (fixed point, optional) on ``x`` ``[N, *S,
    T]`` (see the module docstring)."""
    x = torch.as_tensor(np.asarray(x, np.float32))
    names = [n.name for n in graph if n.OP in LAYER_OPS]
    flt = _float_run(graph, names, x)
    fixed: dict[str, np.ndarray] = {}
    exps: dict[str, int] = {}
    if compiled is not None:
        compiled, exps = netlist_outputs(compiled)
        keep = [n for n in names if n in compiled.nodes and compiled[n].OP == graph[n].OP]
        fixed = simulate(compiled, x.numpy(), record=keep, target=target)
    rows = []
    for n in names:
        msgs = flt[n]
        rate = float(np.mean(msgs != 0))
        q = None
        if n in fixed:
            q = _rel(np.cumsum(fixed[n] / MESSAGE, -1), np.cumsum(msgs, -1))
        rows.append(LayerRow(n, int(np.prod(graph[n].shape)), _threshold(graph, graph[n]),
                             rate, q))
    outs: dict[str, float | None] = {}
    for o in graph.outputs:
        outs[o.name] = None
        if compiled is not None and o.name in fixed:
            scale = SIGMA * 2.0 ** exps.get(o.name, 0)
            outs[o.name] = _rel(fixed[o.name] / scale, flt[o.name])
    return SdnnReport(rows, int(x.shape[-1]), outs, exps)


def settle_steps(g: Graph) -> int:
    """Steps after which a static input has settled: the most one-step holds on a path, +3."""
    depth: dict[str, int] = {}
    for n in g:
        d = max((depth[i] for i in n.inputs), default=0)
        depth[n.name] = d + (n.OP == "axon.shift")
    return max(depth.values(), default=0) + 3


def compile_report(traced: Graph, compiled: Graph, steps: int | None = None,
                   samples: int = 4) -> SdnnReport:
    """The report ``slayerc compile model.onnx`` prints: on a seeded uniform [0, 1) input (the
    importer's default calibration data) held static for ``steps`` (default: until settled),
    with the fixed-point columns when ``compiled`` is quant-legal."""
    gen = torch.Generator().manual_seed(0)
    steps = steps or settle_steps(traced)
    xs = {n.name: torch.rand((samples, *n.shape, 1), generator=gen).repeat(  # type: ignore
        *([1] * (len(n.shape) + 1)), steps) for n in traced.inputs}  # type: ignore[arg-type]
    x = next(iter(xs.values())) if len(xs) == 1 else xs
    try:
        return sdnn_report(traced, x, compiled)
    except SlayerError:  # not legalized for loihi2 (-p '' or --target slayerc): float only
        return sdnn_report(traced, x)
