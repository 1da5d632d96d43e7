"""Machine-readable reports (``--report-json FILE``) and the CLI's picture flows.

``slayerc compile``, ``opt`` and ``run`` write one JSON object with what they print as text:

* ``command``, ``slayerc`` (version), ``inputs``/``outputs`` (paths), ``target``;
* ``passes``: per pass run, ``name``, ``seconds``, ``notes`` (``level`` note/warning, ``text``)
  and ``values`` (per-node numbers, e.g. ``fc.max_err``, ``fc.latency``);
* ``layers``: the per-layer table of the result (``node``, ``op``, ``shape``, ``dtype``,
  ``neurons``, ``synapses``, ``params``) and ``totals``;
* ``latency``: per node the steps ``legalize-layers`` added, and ``output_latency``;
* ``quant`` (compile ``--quant-report``): per neuron layer the spike ``agreement`` with the float
  model and with the unquantized graph, ``entries``, per synapse the ``weights`` errors, and the
  totals;
* ``run``: output ``shape``, ``dtype``, ``nonzero`` outputs, ``steps``, ``samples``,
  ``seconds``.

Numbers that are not finite (a NaN total when nothing was measured) are written as ``null``,
so every file is strict JSON.  Files are written atomically.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from slayerc.ir.core import Graph
from slayerc.ir.summary import neurons, param_count, synapses

FORMAT_VERSION = 1


def _clean(value: Any) -> Any:
    """JSON-safe: numpy scalars to Python, non-finite floats to None, tuples to lists."""
    if isinstance(value, Mapping):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if isinstance(value, np.ndarray):
        return _clean(value.tolist())
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def layers(g: Graph) -> list[dict[str, Any]]:
    """One row per node: what ``slayerc inspect``'s table shows."""
    return [{"node": n.name, "op": n.OP, "shape": None if n.shape is None else list(n.shape),
             "dtype": n.dtype, "neurons": neurons(n), "synapses": synapses(g, n),
             "params": param_count(g, n)} for n in g]


def totals(rows: Sequence[Mapping[str, Any]]) -> dict[str, int]:
    """Neurons, synapses and parameters summed over the rows."""
    return {k: int(sum(r[k] for r in rows)) for k in ("neurons", "synapses", "params")}


def passes(pm: Any) -> list[dict[str, Any]]:
    """Per pass run (in order): name, seconds and what it reported (notes, values)."""
    by_name: dict[str, list[Any]] = {}
    for r in pm.reports:
        by_name.setdefault(r.pass_name, []).append(r)
    out = []
    for name, seconds in pm.timings:
        reps = by_name.get(name, [])
        rep = reps.pop(0) if reps else None
        out.append({"name": name, "seconds": seconds,
                    "notes": [{"level": n.level, "text": n.text} for n in rep.notes]
                    if rep else [],
                    "values": dict(rep.values) if rep else {}})
    return out


def quant(report: Any) -> dict[str, Any] | None:
    """A :class:`~slayerc.runtime.agreement.QuantReport` as a dict (None stays None)."""
    if report is None:
        return None
    return {"agreement": dict(report.agreement), "unquantized": dict(report.quant),
            "entries": dict(report.entries), "weights": dict(report.weights),
            "total": report.total, "total_unquantized": report.total_quant}


def graph_report(g: Graph, pm: Any = None, latency: Mapping[str, int] | None = None,
                 output_latency: int = 0, quant_report: Any = None) -> dict[str, Any]:
    """What ``compile``/``opt`` made: passes, layers, latency, quantization."""
    rows = layers(g)
    return {"passes": passes(pm) if pm is not None else [], "layers": rows,
            "totals": totals(rows), "latency": dict(latency or {}),
            "output_latency": output_latency, "quant": quant(quant_report)}


def compiled(done: Any) -> dict[str, Any]:
    """A :class:`~slayerc.driver.Compiled` as a report body."""
    return graph_report(done.graph, done.passes, done.latency, done.output_latency, done.quant)


def write(path: str | os.PathLike, command: str, body: Mapping[str, Any], **meta: Any) -> None:
    """Write ``{"format": 1, "command": ..., "slayerc": version, **meta, **body}`` to ``path``
    as strict JSON, atomically."""
    import slayerc
    from slayerc.ir.fileio import atomic_write

    data = _clean({"format": FORMAT_VERSION, "command": command,
                   "slayerc": slayerc.__version__, **meta, **body})
    text = json.dumps(data, indent=1, allow_nan=False) + "\n"

    def put(tmp: str) -> None:
        with open(tmp, "w") as f:
            f.write(text)
    atomic_write(path, put)


# --------------------------------------------------------------------------- picture flows


def pick_layers(names: Sequence[str], spec: str | None, limit: int = 6) -> list[str]:
    """The recorded layers ``--layers`` asks for: a comma list of ``layerK`` names, bare
    indices ``K`` (negative from the end) or node names; default: up to ``limit`` layers spread
    evenly, the last (output) always included."""
    from slayerc.errors import SlayerError

    if not spec:
        if len(names) <= limit:
            return list(names)
        idx = np.unique(np.linspace(0, len(names) - 1, limit).round().astype(int))
        return [names[i] for i in idx]
    out = []
    for item in (s.strip() for s in spec.split(",") if s.strip()):
        if item in names:
            out.append(item)
            continue
        try:
            out.append(names[int(item)])
        except (ValueError, IndexError):
            raise SlayerError(f"--layers: no layer {item!r}; the netlist has "
                              f"{', '.join(names)} (or give indices 0..{len(names) - 1})"
                              ) from None
    return out


def run_raster(netlist: str | os.PathLike, x: Any, path: str | os.PathLike,
               layers_spec: str | None = None, steps: int | None = None,
               input_shape: tuple[int, ...] | None = None,
               target: str | None = "loihi2") -> int:
    """``slayerc run --plot``: simulate the first sample of ``x`` on ``netlist`` recording every
    layer, and draw the input, the chosen layers and the output; return the panel count."""
    from slayerc.driver import run_netlist
    from slayerc.plot import raster_picture

    first = np.asarray(x[0] if np.ndim(x) >= 3 and _batched(x, netlist, input_shape) else x)
    out, recorded = run_netlist(netlist, first, steps=steps, all_layers=True,
                                input_shape=input_shape, target=target)
    chosen = pick_layers(list(recorded), layers_spec)
    panels = {"input": first, **{k: recorded[k] for k in chosen}}
    if not any(np.array_equal(recorded[k], out) for k in chosen):
        panels["output"] = out
    return raster_picture(panels, path, title=f"{os.path.basename(netlist)}: sample 0")


def _batched(x: Any, netlist: str | os.PathLike, input_shape: tuple[int, ...] | None) -> bool:
    """Whether ``x`` holds a batch: one axis more than the netlist's input ``[*S, T]``."""
    from slayerc.driver import _load_for

    g = _load_for(netlist, x, input_shape)
    return np.ndim(x) == len(g.inputs[0].shape) + 2
