"""``legalize-quant``: put every weight, decay, threshold and bias on the target's integer grid.

Per weighted synapse (``synapse.dense``/``conv``/…): the weights become an 8-bit signed
mantissa ``m`` times ``2/64`` (lava-dl's ``quantize_8bit`` grid: netlist integers even, in
[-256, 254]) times a per-layer power of two ``2^e``.  netx stores no weight exponent, so ``e`` is
folded into the layer: the weights are stored as ``m·2/64`` and the threshold, the neuron bias
and the synapse bias of the one ``neuron.cuba`` (not graded) the synapse feeds are divided by
``2^e``.  That is exact in real arithmetic (``u``, ``v`` scale by ``2^-e``, the strict compare and
the reset to 0 do not care) and only changes where fixed-point decays truncate.

* ``e = 0`` when the weights are already on the grid and in range (lava-dl trained weights:
  exact, nothing changes).
* Otherwise ``e`` is the smallest exponent whose mantissas hold the largest weight, which gives
  the least rounding error: weights over ±127·2/64 get ``e > 0``; small float-trained weights
  ``e < 0`` (finer steps), as long as the threshold keeps two bits of headroom under
  ``vThMant``'s maximum and the bias fits (``scale_up=false`` keeps ``e ≥ 0``).
* Synapses not feeding one plain CUBA neuron keep ``e = 0`` (scaling a sigma-delta or graded
  neuron would change what it sends on), and weights that do not fit are a :class:`PassError`
  naming the node and the value; so is an ``e`` outside the target's exponent range.
* Sigma-delta dense synapses (feeding ``neuron.sigma_delta`` or ``dendrite.sigma``) whose
  weights fit the mantissa on the finer ``1/64`` grid (integers in [-128, 127]) keep that grid:
  netx's ``optimize_weight_bits`` gives such a matrix the exponent −1 with the same 8 bits, so
  small weights get twice the resolution.  Conv layers keep ``2/64``: netx hands their raw
  integers to Lava with exponent 0, where the 8-bit mixed-sign mantissa holds even values only.

Neurons: decays are rounded to ``1/4096`` (clamped to [0, 1]; sin/cos to [-1, 1]), thresholds
(and ``threshold_step``) to ``1/64`` (``vThMant``, at most ``2^17 − 1``), biases to ``1/64``
(``bias_mant``, 13 bits signed); the delta encoder's threshold to ``1/64``.  Out-of-range values
are a :class:`PassError` naming node and value.

The report gives per weighted synapse its exponent and the largest and RMS error of the
effective weights (``m·2/64·2^e − w``, slayer units); see :func:`layer_errors`.  It warns (not
an error: Lava's Python simulation runs them) about decays the target's chip fields cannot hold.

Before::

    %fc = synapse.dense(%x) {weight = @w} : f32[2]         (@w = [[0.30, -0.11], ...])
    %n = neuron.cuba(%fc) {threshold = 0.5, current_decay = 0.3, ...}
After (``e = -3``: mantissas ``round(w·32·8)``)::

    %fc = synapse.dense(%x) {weight = @w} : f32[2]         (@w = [[2.40625, -0.875], ...])
    %n = neuron.cuba(%fc) {threshold = 4.0, current_decay = 0.300048828125, ...}

Requires ``shapes``; establishes ``quant-legal``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from slayerc.errors import PassError
from slayerc.ir.core import Graph, Op, ParamRef
from slayerc.ir.target import Target
from slayerc.ir.target import get as get_target
from slayerc.passes.quant_values import (  # noqa: F401  (DECAYS, SIGNED_DECAYS: public names)
    DECAYS,
    SIGNED_DECAYS,
    WEIGHTED,
    check_finite,
    field_problems,
    on_grid_values,
)
from slayerc.passes.report import Note, Report, note, warning
from slayerc.passes.rewrite import Rewriter

NAME = "legalize-quant"
SUMMARY = "weights to 8-bit mantissa + per-layer exponent, decays/thresholds/biases to the grid"
REQUIRES = frozenset({"shapes"})
ESTABLISHES = frozenset({"quant-legal"})
INVALIDATES: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Options:
    """``target``: whose grid; ``scale_up``: allow negative exponents (finer weight steps)."""

    target: str = "loihi2"
    scale_up: bool = True


def run(g: Graph, opts: Options = Options()) -> Graph:
    """Return ``g`` with every value on the target's grid (see the module docstring)."""
    return run_with_report(g, opts)[0]


def run_with_report(g: Graph, opts: Options = Options()) -> tuple[Graph, Report]:
    """:func:`run`, plus per-layer exponent and weight errors (``values``: ``<node>.exp``,
    ``<node>.max_err``, ``<node>.rms_err``)."""
    target, rw = get_target(opts.target, PassError), _Rewriter(g)
    for node in g:
        if node.OP in WEIGHTED:
            _synapse(rw, node, target, opts.scale_up)
    for name, node in list(rw.nodes.items()):
        new = on_grid_values(rw, node, target)
        if new is not node:  # (each store re-indexes the node: skip the unchanged ones)
            rw.nodes[name] = new
    out = rw.finish(ESTABLISHES, INVALIDATES)
    notes: list[Note] = []
    values: dict[str, float] = {}
    for name, (e, max_err, rms) in layer_errors(g, out).items():
        values.update({f"{name}.exp": e, f"{name}.max_err": max_err, f"{name}.rms_err": rms})
        notes.append(note(f"{g[name].describe()}: exponent {e:+d}, weight error max "
                          f"{max_err:.3g}, rms {rms:.3g}"))
    notes += [warning(text) for node in out if target.holds_neuron(node.OP)
              for text in field_problems(out, node, target)]
    return out, Report(NAME, tuple(notes), values)


def layer_errors(before: Graph, after: Graph) -> dict[str, tuple[int, float, float]]:
    """Per weighted synapse in both graphs: (exponent, max and RMS error of effective weights).

    The exponent is recovered as the power of two between the largest weights before and after.
    """
    out = {}
    for node in before:
        other = after.nodes.get(node.name)
        if node.OP not in WEIGHTED or other is None or not isinstance(node.weight, ParamRef):
            continue
        w0 = np.asarray(before.param(node.weight), np.float64)
        w1 = np.asarray(after.param(other.weight), np.float64)  # type: ignore[attr-defined]
        a0, a1 = float(np.abs(w0).max(initial=0)), float(np.abs(w1).max(initial=0))
        e = round(math.log2(a0 / a1)) if a0 > 0 and a1 > 0 else 0
        err = w1 * 2.0 ** e - w0
        rms = float(np.sqrt(np.mean(err ** 2))) if err.size else 0.0
        out[node.name] = (e, float(np.abs(err).max(initial=0)), rms)
    return out


# ------------------------------------------------------------------------------ synapses


class _Rewriter(Rewriter):
    """A :class:`Rewriter` whose user and parameter-use lookups are precomputed (O(1) each).

    This pass never changes edges, so the maps stay valid; it keeps 500-layer graphs linear.
    """

    def __init__(self, g: Graph):
        super().__init__(g)
        self._users: dict[str, list[str]] = {}
        #: scalar field values already put on the grid (a deep netlist repeats a handful)
        self.grid: dict[tuple[object, ...], float] = {}
        self._count: dict[str, int] = {}
        for n in g:
            for i in dict.fromkeys(n.inputs):
                self._users.setdefault(i, []).append(n.name)
            for _, ref in n.param_refs():
                self._count[ref.name] = self._count.get(ref.name, 0) + 1

    def users(self, name: str) -> list[Op]:
        return [self.nodes[u] for u in self._users.get(name, ())]

    def _uses(self, pname: str) -> int:
        return self._count.get(pname, 0)


def _fed_neuron(rw: Rewriter, syn: Op) -> Op | None:
    """The plain CUBA neuron that only this synapse feeds (through axon.delay), if any."""
    user = rw.only_user(syn.name)
    while user is not None and user.OP == "axon.delay":
        user = rw.only_user(user.name)
    ok = (user is not None and user.OP == "neuron.cuba" and not getattr(user, "graded", True)
          and getattr(syn, "weight_imag", None) is None)
    return user if ok else None


def _sigma_delta_dense(rw: Rewriter, syn: Op) -> bool:
    """Whether ``syn`` is a dense synapse feeding only a sigma-delta neuron or sigma decoder
    (through delays or one-step holds): graded, with no exponent (see the module docstring)."""
    if syn.OP != "synapse.dense" or getattr(syn, "weight_imag", None) is not None:
        return False
    user = rw.only_user(syn.name)
    while user is not None and user.OP in ("axon.delay", "axon.shift"):
        user = rw.only_user(user.name)
    return user is not None and user.OP in ("neuron.sigma_delta", "dendrite.sigma")


def _synapse(rw: Rewriter, syn: Op, target: Target, scale_up: bool) -> None:
    w = np.asarray(rw.params[syn.weight.name], np.float64)  # type: ignore[union-attr]
    check_finite(syn, "weight", w, syn.weight)
    neuron = _fed_neuron(rw, syn)
    e = _exponent(rw, syn, w, neuron, target, scale_up) if neuron is not None else 0
    half = 1 << (target.weight_bits - 1)  # the mantissa on the 1/64 grid (netx: exponent -1)
    fine = target.weight_step == 2 and _sigma_delta_dense(rw, syn) and \
        _fit(w, 0, 1 / target.w_scale, -half, half - 1)
    q = (np.rint(w * target.w_scale) / target.w_scale).astype(np.float32) if fine else \
        _mantissas(syn, "weight", w, e, target)
    attrs = {"weight": rw.put(syn.weight, f"{syn.name}.weight", q)}  # type: ignore[attr-defined]
    if getattr(syn, "weight_imag", None) is not None:
        wi = np.asarray(rw.params[syn.weight_imag.name], np.float64)  # type: ignore[union-attr]
        check_finite(syn, "weight_imag", wi, syn.weight_imag)  # type: ignore[attr-defined]
        attrs["weight_imag"] = rw.put(syn.weight_imag, f"{syn.name}.weight_imag",
                                      _mantissas(syn, "weight_imag", wi, 0, target))
    if e and getattr(syn, "bias", None) is not None:
        attrs["bias"] = _scaled(rw, syn.bias, f"{syn.name}.bias", e)  # type: ignore[attr-defined]
    if any(v is not getattr(syn, k) for k, v in attrs.items()):  # (weights rewritten in place)
        rw.nodes[syn.name] = syn.replace(**attrs)
    if e and neuron is not None:
        changes = {k: _scaled(rw, getattr(neuron, k), f"{neuron.name}.{k}", e)
                   for k in ("threshold", "bias") if getattr(neuron, k) is not None}
        rw.nodes[neuron.name] = neuron.replace(**changes)


def _mantissas(syn: Op, attr: str, w: np.ndarray, e: int, target: Target) -> np.ndarray:
    """``w`` on the grid ``step·2^e`` (slayer units, scaled by ``2^-e``), range-checked."""
    step = target.weight_step / target.w_scale
    m = np.rint(w / (step * 2.0 ** e))
    lo, hi = (v // target.weight_step for v in target.weight_range)
    if m.size and (m.min() < lo or m.max() > hi):
        bad = float(w.flat[int(np.argmax(np.abs(w)))])
        raise PassError(f"{syn.describe()}: weight {bad:g} of @{getattr(syn, attr).name} does "
                        f"not fit the {target.weight_bits}-bit weight mantissa of target "
                        f"{target.name} (largest {hi * step:g} without an exponent; only a "
                        "synapse feeding one plain neuron.cuba gets a per-layer exponent); "
                        "scale the weights down or retrain with slayer's 8-bit quantization")
    return (m * step).astype(np.float32)


def _exponent(rw: Rewriter, syn: Op, w: np.ndarray, neuron: Op, target: Target,
              scale_up: bool) -> int:
    step = target.weight_step / target.w_scale
    lo_m, hi_m = (v // target.weight_step for v in target.weight_range)
    if not w.size or not np.any(w) or (_fit(w, 0, step, lo_m, hi_m)
                                       and np.array_equal(w / step, np.rint(w / step))):
        return 0
    need = max(float(w.max()) / hi_m if w.max() > 0 else 0.0, float(w.min()) / lo_m)
    e = math.ceil(math.log2(need / step))  # the smallest exponent whose mantissas hold w
    while not _fit(w, e, step, lo_m, hi_m):
        e += 1
    e = e if scale_up else max(e, 0)
    while e < 0 and not _fits(rw, neuron, e, target):
        e += 1
    lo, hi = target.weight_exp_range
    if e > hi:
        raise PassError(f"{syn.describe()}: weight {float(np.abs(w).max()):g} needs exponent "
                        f"{e}, above the largest {hi} of target {target.name}; scale the "
                        "weights down")
    return max(e, lo)


def _fit(w: np.ndarray, e: int, step: float, lo: int, hi: int) -> bool:
    m = np.rint(w / (step * 2.0 ** e))
    return bool(m.min() >= lo and m.max() <= hi)


def _fits(rw: Rewriter, neuron: Op, e: int, target: Target) -> bool:
    """Whether threshold (with two bits of headroom) and bias fit after scaling by ``2^-e``."""
    th = _max_abs(rw, neuron.threshold) * 2.0 ** -e * target.w_scale  # type: ignore[attr-defined]
    bias = _max_abs(rw, getattr(neuron, "bias", None)) * 2.0 ** -e * target.w_scale
    return th <= target.threshold_max / 4 and bias <= target.bias_range[1]


def _max_abs(rw: Rewriter, value: float | ParamRef | None) -> float:
    if value is None:
        return 0.0
    if isinstance(value, ParamRef):
        return float(np.abs(rw.params[value.name]).max(initial=0))
    return abs(float(value))


def _scaled(rw: Rewriter, value: float | ParamRef, base: str, e: int) -> float | ParamRef:
    if isinstance(value, ParamRef):
        arr = np.asarray(rw.params[value.name])
        return rw.put(value, base, (arr * 2.0 ** -e).astype(arr.dtype))
    return float(value) * 2.0 ** -e


# -------------------------------------------------------------------------------- values
