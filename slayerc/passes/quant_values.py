"""Neuron values on the target's grid, for ``legalize-quant`` (not a pass).

Decays, thresholds and biases (and a delta encoder's threshold) are rounded to the target's units
and range-checked, each distinct scalar once per run; :func:`field_problems` says why a chip
cannot hold a decay that Lava's simulation would run.  Weights (mantissa and exponent) stay in
:mod:`slayerc.passes.legalize_quant`.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from slayerc.errors import PassError
from slayerc.ir import ops
from slayerc.ir.core import Graph, Op, ParamRef
from slayerc.ir.target import Target
from slayerc.passes.rewrite import Rewriter

if TYPE_CHECKING:
    from slayerc.passes.legalize_quant import _Rewriter

WEIGHTED = frozenset({"synapse.dense", "synapse.conv", "synapse.conv_transpose", "synapse.pool",
                      "synapse.unpool"})
DECAYS = ("current_decay", "voltage_decay", "threshold_decay", "refractory_decay")
SIGNED_DECAYS = ("sin_decay", "cos_decay")


def check_finite(node: Op, attr: str, arr: np.ndarray, ref: object) -> None:
    """Refuse NaN and infinity: no grid holds them (inf overflows, NaN compares false)."""
    if not np.isfinite(arr).all():
        raise PassError(f"{node.describe()}: {attr} {float(arr[~np.isfinite(arr)].flat[0]):g}"
                        f"{f' of @{ref.name}' if isinstance(ref, ParamRef) else ''} is not a "
                        "finite number; give it a finite value (check the model or checkpoint)")


def on_grid_values(rw: _Rewriter, node: Op, target: Target) -> Op:
    """Neuron (and delta encoder) parameters rounded to their grids, range-checked."""
    w, d = target.w_scale, target.decay_unit
    bias = ("bias", w, *target.bias_range)
    threshold = ("threshold", w, 0, target.threshold_max)
    if node.OP in WEIGHTED:
        rules = [bias]
    elif node.OP in ops.NEURON_OPS or node.OP == "neuron.li":  # li: the spike-less CUBA
        rules = [(a, d, 0, d) for a in DECAYS] + [(a, d, -d, d) for a in SIGNED_DECAYS]
        rules += [threshold, ("threshold_step", w, 0, target.threshold_max), bias]
    elif node.OP == "axon.delta":
        rules = [threshold]
    else:
        return node
    changes = {}
    for attr, unit, lo, hi in rules:
        value = getattr(node, attr, None)
        if value is None:
            continue
        new = _on_grid(rw, node, attr, value, unit, lo, hi)
        if not _same(new, value):
            changes[attr] = new
    return node.replace(**changes) if changes else node


def _same(new: float | ParamRef, old: object) -> bool:
    """Whether a field keeps its value: the same reference (its array rewritten in place), or
    a float already on the grid (same type, value and sign, so the node stays as it is)."""
    if new is old:
        return True
    return type(new) is float and type(old) is float and new == old and \
        math.copysign(1.0, new) == math.copysign(1.0, old)


def _on_grid(rw: _Rewriter, node: Op, attr: str, value: float | ParamRef, unit: int, lo: int,
             hi: int) -> float | ParamRef:
    if type(value) not in (float, int):  # a ParamRef (its own array) or a stray value
        return _on_grid_once(rw, node, attr, value, unit, lo, hi)
    # the same scalar gives the same result (or the same error, never stored): once per value
    key = (attr, unit, lo, hi, type(value), value, math.copysign(1.0, value))  # (-0.0 ≠ 0.0)
    if key not in rw.grid:
        rw.grid[key] = _on_grid_once(rw, node, attr, value, unit, lo, hi)  # type: ignore
    return rw.grid[key]


def _on_grid_once(rw: Rewriter, node: Op, attr: str, value: float | ParamRef, unit: int,
                  lo: int, hi: int) -> float | ParamRef:
    arr = np.asarray(rw.params[value.name] if isinstance(value, ParamRef) else value,
                     np.float64)
    check_finite(node, attr, arr, value)
    ints = np.rint(arr * unit)
    if attr in DECAYS + SIGNED_DECAYS:
        ints = np.clip(ints, lo, hi)
    if ints.size and (ints.min() < lo or ints.max() > hi):
        bad = float(ints.max() if ints.max() > hi else ints.min()) / unit
        raise PassError(f"{node.describe()}: {attr} {bad:g} is outside [{lo / unit:g}, "
                        f"{hi / unit:g}], the range of the target's {attr} field")
    q = ints / unit
    if isinstance(value, ParamRef):
        dtype = np.asarray(rw.params[value.name]).dtype
        return rw.put(value, f"{node.name}.{attr}", q.astype(dtype if dtype.kind == "f"
                                                              else np.float32))
    return float(q)


def field_problems(g: Graph, node: Op, target: Target) -> list[str]:
    """Why the target's chip cannot hold a decay of ``node`` (as its loader maps it)."""
    decays = {a: g.param(v) if isinstance(v, ParamRef) else v for a in DECAYS + SIGNED_DECAYS
              if (v := getattr(node, a, None)) is not None}
    return [f"{node.describe()}: {m.attr} {m.value:g} loads as {m.field} = {m.field_value:g} "
            f"({m.count} of {m.size} entries), outside the chip's unsigned decay field "
            f"{list(target.decay_field_range or ())}{_MEANING.get(m.attr, '')}; Lava's Python "
            f"simulation runs it, the chip cannot: for hardware keep it in {m.fits}"
            for m in target.decay_misfits(decays)]

_MEANING = {"current_decay": " (0: the current never decays; the slowest the chip holds is du 0)",
            "voltage_decay": " (1: v does not carry over; lava-dl writes it for default neurons)",
            "|(sin_decay, cos_decay)|": " (the resonator does not decay; slayer shortens it)"}
