"""``fold-batchnorm``: fold inference batch norms into the weights and biases around them.

Loihi has no batch-norm unit: a ``norm.batch`` must become part of the synapse before it, and
slayer's mean-only norms a neuron bias (as lava-dl's exporter writes them, spec §2.4).

* ``norm.batch`` directly after a ``synapse.dense``/``synapse.conv`` whose only user it is
  (real weights): with ``k = γ / sqrt(var + eps)`` (``γ = 1`` without affine),
  ``w' = w·k`` per output channel and ``b' = (b − μ)·k + β``.  Computed in float64 and stored
  in the weight's dtype: the synapse output changes by float rounding only (≤ 1e-5 relative).
* ``norm.mean_only`` / ``norm.weight_scale`` (``y = (x − q(μ)) / 2^e``, ``e = 0`` for
  mean-only): the power of two goes into the weights and bias of the synapse before it (exact),
  and the offset ``−q(μ)/2^e`` becomes the ``bias`` of the neuron after it when that acts in
  the same place: a ``neuron.alif`` (slayer adds its bias to the input) or a ``neuron.cuba``
  with ``current_decay`` 1 (its current is its input, so the bias added after the current is
  the same): exact.  Else it becomes the bias of the synapse before it (exact when that synapse
  had no bias, one float rounding otherwise).
* Any other batch norm keeps its node, and the report says why (a warning naming the node).

Before::

    %c  = synapse.conv(%x) {bias = @c.bias, weight = @c.weight}
    %bn = norm.batch(%c) {bias = @bn.bias, mean = @bn.mean, var = @bn.var, weight = @bn.weight}
    %n  = neuron.cuba(%bn)
After::

    %c  = synapse.conv(%x) {bias = @c.bias, weight = @c.weight}   (folded arrays, same names)
    %n  = neuron.cuba(%c)

The surviving synapse or neuron keeps its name and ``loc``.  Requires nothing; establishes
``bn-folded`` (no norm that can be folded is left); invalidates ``quant-legal`` (new weights).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from slayerc.ir.core import Graph, Op, ParamRef
from slayerc.passes.report import Note, Report, note, warning
from slayerc.passes.rewrite import Rewriter, channel_view, quantize_8bit, scaled

NAME = "fold-batchnorm"
SUMMARY = "fold norm.batch into the synapse before it, slayer's mean-only norms into a bias"
REQUIRES: frozenset[str] = frozenset()
ESTABLISHES = frozenset({"bn-folded"})
INVALIDATES = frozenset({"quant-legal"})

SYNAPSES = ("synapse.dense", "synapse.conv")
BIAS_NEURONS = ("neuron.cuba", "neuron.alif")
NORMS = ("norm.batch", "norm.mean_only", "norm.weight_scale")


@dataclass(frozen=True)
class Options:
    """``fold-batchnorm`` has no options."""


def run(g: Graph, opts: Options = Options()) -> Graph:
    """Return ``g`` with every foldable batch norm folded (see the module docstring)."""
    return run_with_report(g, opts)[0]


def run_with_report(g: Graph, opts: Options = Options()) -> tuple[Graph, Report]:
    """Like :func:`run`, plus a note per folded norm and a warning per norm kept."""
    rw = Rewriter(g)
    notes: list[Note] = []
    for name, node in g.nodes.items():
        if node.OP not in NORMS:
            continue
        node = rw.nodes[name]  # inputs may have been rewired by an earlier fold
        fold = _fold_batch if node.OP == "norm.batch" else _fold_mean
        why = fold(rw, node)
        if why is None:
            notes.append(note(f"folded {node.describe()} into %{node.inputs[0]}"
                              if node.OP == "norm.batch" else f"folded {node.describe()}"))
        else:
            notes.append(warning(f"kept {node.describe()}: {why}"))
    return rw.finish(ESTABLISHES, INVALIDATES), Report(NAME, tuple(notes))


def _sole_synapse(rw: Rewriter, norm: Op) -> tuple[Op | None, str]:
    """The real dense/conv synapse feeding ``norm`` and nothing else, or why there is none."""
    src = rw.nodes[norm.inputs[0]]
    if src.OP not in SYNAPSES:
        return None, f"its input {src.describe()} is not a synapse.dense or synapse.conv"
    if src.weight_imag is not None:  # type: ignore[attr-defined]
        return None, f"its input {src.describe()} is a complex synapse"
    others = [u for u in rw.users(src.name) if u.name != norm.name]
    if others:
        return None, f"the output of {src.describe()} is also read by {others[0].describe()}"
    return src, ""


def _fold_batch(rw: Rewriter, bn: Op) -> str | None:
    """Fold ``norm.batch`` into the synapse before it; return why not, or None when done."""
    syn, why = _sole_synapse(rw, bn)
    if syn is None:
        return why
    w = rw.array(syn.weight)  # type: ignore[attr-defined]
    mean = rw.array(bn.mean).astype(np.float64)  # type: ignore[attr-defined, union-attr]
    if mean.shape != (w.shape[0],):  # type: ignore[union-attr]
        return f"{mean.shape[0]} statistics do not match the {w.shape[0]} output channels " \
               f"of {syn.describe()}"  # type: ignore[union-attr]
    var = rw.array(bn.var).astype(np.float64)  # type: ignore[attr-defined, union-attr]
    gamma = _or(rw.array(bn.weight), 1.0)  # type: ignore[attr-defined]
    beta = _or(rw.array(bn.bias), 0.0)  # type: ignore[attr-defined]
    k = gamma / np.sqrt(var + float(bn.eps))  # type: ignore[attr-defined]
    b = _or(rw.array(syn.bias), 0.0)  # type: ignore[attr-defined]
    _set_synapse(rw, syn, w.astype(np.float64) * channel_view(k, w.ndim),  # type: ignore
                 (b - mean) * k + beta)
    rw.bypass(bn.name)
    return None


def _or(a: np.ndarray | None, default: float) -> np.ndarray | float:
    return default if a is None else a.astype(np.float64)


def _set_synapse(rw: Rewriter, syn: Op, w: np.ndarray, b: np.ndarray | None) -> None:
    """Store new weight and bias (None: none) arrays of ``syn`` in its dtypes; update the node."""
    wdtype = rw.array(syn.weight).dtype  # type: ignore[attr-defined, union-attr]
    old_b = rw.array(syn.bias)  # type: ignore[attr-defined]
    bdtype = wdtype if old_b is None else old_b.dtype
    bias = None if b is None else rw.put(syn.bias, f"{syn.name}.bias",  # type: ignore
                                         np.asarray(b).astype(bdtype))
    rw.nodes[syn.name] = syn.replace(
        weight=rw.put(syn.weight, f"{syn.name}.weight", w.astype(wdtype)),  # type: ignore
        bias=bias)


def _bias_neuron(rw: Rewriter, norm: Op) -> Op | None:
    """The neuron after ``norm`` whose bias acts where the norm's offset does: an ALIF (slayer
    adds its bias to the input) or a CUBA whose current is its input (``current_decay`` 1)."""
    user = rw.only_user(norm.name)
    if user is None or user.OP not in BIAS_NEURONS:
        return None
    if user.OP == "neuron.alif":
        return user
    decay = user.current_decay  # type: ignore[attr-defined]
    return user if not isinstance(decay, ParamRef) and float(decay) == 1.0 else None


def _fold_mean(rw: Rewriter, norm: Op) -> str | None:
    """Fold ``norm.mean_only``/``norm.weight_scale``; return why not, or None when done."""
    exp = int(getattr(norm, "weight_exp", 0))
    offset = 0.0 - quantize_8bit(rw.array(norm.mean), int(norm.scale))  # type: ignore
    offset = scaled(offset, 2.0 ** -exp)
    neuron = _bias_neuron(rw, norm)
    syn, why = _sole_synapse(rw, norm)
    if syn is None and (exp != 0 or neuron is None):
        need = "the 2^weight_exp scale needs" if exp != 0 else "the offset needs a cuba/alif " \
            "neuron with current_decay 1 after it, or"
        return f"{need} a synapse before it: {why}"
    if syn is not None:
        w = rw.array(syn.weight)  # type: ignore[attr-defined]
        b = rw.array(syn.bias)  # type: ignore[attr-defined]
        b = None if b is None else scaled(b, 2.0 ** -exp)
        if neuron is None:
            b = offset if b is None else (b + offset).astype(b.dtype)
        if exp != 0 or neuron is None:
            _set_synapse(rw, syn, scaled(w, 2.0 ** -exp), b)  # type: ignore[arg-type]
    if neuron is not None:
        _add_neuron_bias(rw, neuron, offset)
    rw.bypass(norm.name)
    return None


def _add_neuron_bias(rw: Rewriter, neuron: Op, offset: np.ndarray) -> None:
    """``neuron.bias += offset`` (per channel), stored as a parameter."""
    old = neuron.bias  # type: ignore[attr-defined]
    if isinstance(old, ParamRef):
        arr = rw.params[old.name]
        new = (arr + channel_view(offset, max(arr.ndim, 1))).astype(arr.dtype)
    else:
        new = (offset + np.float32(old or 0.0)).astype(np.float32)
    ref = rw.put(old if isinstance(old, ParamRef) else None, f"{neuron.name}.bias", new)
    rw.nodes[neuron.name] = neuron.replace(bias=ref)
