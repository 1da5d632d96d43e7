"""``lower-pool``: each ``synapse.pool`` becomes the depthwise ``synapse.conv`` it equals.

lava-dl netx 0.6 has no ``pool`` layer (target ``loihi2``), but it loads grouped convolutions.
A sum pool is one ``[1, 1, kH, kW]`` kernel shared by all ``C`` channels, i.e. a conv with
``groups = C`` and the kernel repeated into a ``[C, 1, kH, kW]`` weight (same stride, padding,
dilation); the writer stores it as a ``conv`` layer.  Two details of slayer's pool need care:

* **Remainder padding.**  slayer pads only the bottom/right, by ``r = H mod kH`` rows (and
  ``W mod kW`` columns), before the pool's own symmetric padding ``p``; a netx conv pads both
  sides alike.  The conv gets ``e`` leading all-zero kernel rows and padding ``p + e·dH``: its
  nonzero taps then read exactly the pool's rows (every row at or past ``H`` is zero in both),
  and with the smallest ``e`` that gives the pool's output height (``e ≤ r``, often 0 when no
  window reads the remainder) the outputs are the same.  A dilation can step past every such
  height; then that axis is spread out to dilation 1 (``dH − 1`` zero rows between taps) with
  ``e = r``, which always fits.  So the remainder never blocks the lowering.
* **Channel folding.**  slayer (and so the IR's runtimes) pools all channels as one image of
  ``C·(H + r)`` rows.  That is a per-channel pool only when every window reads rows of one
  channel (or zeros: padding, remainder rows); the pass checks this row by row.  It holds for
  one channel, or without vertical padding when the stride is at least the window extent
  ``dH·(kH − 1) + 1`` and divides ``H + r`` (the usual ``stride = kernel`` pools).  Other
  geometries mix channels (or fail to run), so they have no conv equivalent: a
  :class:`PassError` naming the node.

Weight, ``weight_imag`` and ``mask`` are repeated per channel, a bias (one value for all
channels) becomes a per-channel bias, and the node keeps its name and ``loc``.  The result is
bit-identical in the interpreter and the fixed-point runtime (the same products and sums).
For a target that holds pool layers (``slayerc``) the graph is returned unchanged.

**A pool without a neuron** (NIR's ``LIF → AvgPool2d → Flatten → Linear → LIF``, snnTorch's
usual conv net) would be a netlist layer without a neuron, which netx cannot load.  When the
lowered pool feeds, through one ``tensor.flatten``, a ``synapse.dense`` (each read by nothing
else), it is folded into that dense synapse: ``W' = W·P`` (``P`` the pool's linear map, applied
as the adjoint of its conv to ``W``'s rows) and ``b' = b + W·P(b_pool)``; the flatten then
reads the pool's input.  Exact in real arithmetic (float32 sums are reordered: the interpreter
agrees to rounding); a note names both nodes (``fold=false`` keeps the pool, which the writer
then refuses by name).

Before (``C = 4``, ``H = W = 10``, remainder 2)::

    %p = synapse.pool(%s) {kernel = [4, 4], stride = [4, 4], weight = @p.w} : f32[4, 3, 3]
After::

    %p = synapse.conv(%s) {groups = 4, padding = [2, 2], stride = [4, 4], weight = @p.w}
         : f32[4, 3, 3]                  (@p.w: [4, 1, 6, 6], rows 0-1 and columns 0-1 zero)

Requires ``shapes``; establishes and invalidates nothing (the values on the weight grid are
the pool's own, plus zeros).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from slayerc.errors import PassError
from slayerc.ir import ops
from slayerc.ir.core import Graph, Op
from slayerc.ir.target import get as get_target
from slayerc.passes.report import Note, Report, note
from slayerc.passes.rewrite import Rewriter

NAME = "lower-pool"
SUMMARY = "sum pools as depthwise convolutions, for targets without a pool layer (loihi2)"
REQUIRES = frozenset({"shapes"})
ESTABLISHES: frozenset[str] = frozenset()
INVALIDATES: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Options:
    """``target``: pools are lowered only when its netlist cannot hold a ``pool`` layer;
    ``fold``: fold a lowered pool without a neuron into the dense synapse it feeds."""

    target: str = "loihi2"
    fold: bool = True


def run(g: Graph, opts: Options = Options()) -> Graph:
    """Return ``g`` with every ``synapse.pool`` lowered (see the module docstring)."""
    return run_with_report(g, opts)[0]


def run_with_report(g: Graph, opts: Options = Options()) -> tuple[Graph, Report]:
    """:func:`run`, plus a note per lowered pool."""
    layers = get_target(opts.target, PassError).layers
    if layers is None or "pool" in layers:
        return g, Report(NAME)
    rw, notes = Rewriter(g), []
    pools = [node for node in g if node.OP == "synapse.pool"]
    for node in pools:
        rw.nodes[node.name] = _lower(rw, node, opts.target, notes)
    for node in pools if opts.fold else ():
        _fold_into_dense(rw, node, notes)
    return rw.finish(ESTABLISHES, INVALIDATES), Report(NAME, tuple(notes))


def _pair(v: int | tuple[int, ...]) -> tuple[int, int]:
    return (v, v) if isinstance(v, int) else (int(v[0]), int(v[1]))


def _out(n: int, k: int, s: int, d: int) -> int:
    """Output length of a window ``k`` (dilation ``d``, stride ``s``) over ``n`` padded cells."""
    return (n - d * (k - 1) - 1) // s + 1


@dataclass(frozen=True)
class _Axis:
    """One axis of the conv: tap ``t`` of the pool kernel sits at ``lead + t·step``."""

    lead: int
    step: int
    dilation: int
    padding: int
    size: int


def _axis(n: int, k: int, s: int, p: int, d: int) -> _Axis:
    """The conv axis whose nonzero taps read the pool's cells on the unpadded axis of ``n``.

    With padding ``p + lead·dilation`` the taps read the same cells; ``lead`` is chosen so the
    output length is the pool's (over ``n + n mod k`` cells).
    """
    r = n % k
    want = _out(n + r + 2 * p, k, s, d)
    for e in range(-(-r // d) + 1):
        if _out(n + 2 * (p + e * d), k + e, s, d) == want:
            return _Axis(e, 1, d, p + e * d, k + e)
    return _Axis(r, d, 1, p + r, r + d * (k - 1) + 1)  # dilation 1: any lead is possible


def _lower(rw: Rewriter, node: Op, target: str, notes: list[Note]) -> Op:
    c, h, w = rw.nodes[node.inputs[0]].shape  # type: ignore[misc]
    (kh, kw), (sh, sw) = _pair(node.kernel), _pair(node.stride)  # type: ignore[attr-defined]
    (ph, pw), (dh, dw) = _pair(node.padding), _pair(node.dilation)  # type: ignore[attr-defined]
    if not ops.pool_is_per_channel(c, h, kh, sh, ph, dh):
        raise PassError(
            f"{node.describe()}: target {target} has no pool layer, and this pool has no "
            f"convolution equivalent: lava-dl's pool stacks the {c} channels into one image of "
            f"{c}·{h + h % kh} rows, and with kernel {kh}, stride {sh}, padding {ph}, dilation "
            f"{dh} it is no pool of each channel on its own (windows read rows of two "
            "channels); use no vertical padding and a stride at least the kernel extent that "
            "divides the padded height, or target slayerc")
    ax = [_axis(h, kh, sh, ph, dh), _axis(w, kw, sw, pw, dw)]
    rows = ax[0].lead + ax[0].step * np.arange(kh)
    cols = ax[1].lead + ax[1].step * np.arange(kw)
    changes = {}
    for attr in ("weight", "weight_imag", "mask"):
        ref = getattr(node, attr)
        if ref is not None:
            k = rw.params[ref.name]
            spread = np.zeros((c, 1, ax[0].size, ax[1].size), k.dtype)
            spread[:, :, rows[:, None], cols[None, :]] = k
            changes[attr] = rw.put(ref, f"{node.name}.{attr}", spread)
    if node.bias is not None:  # type: ignore[attr-defined]
        b = rw.params[node.bias.name]  # type: ignore[attr-defined]
        changes["bias"] = rw.put(node.bias, f"{node.name}.bias", np.repeat(b, c))  # type: ignore
    conv = ops.Conv(name=node.name, inputs=node.inputs, shape=node.shape, dtype=node.dtype,
                    loc=node.loc, stride=(sh, sw), padding=(ax[0].padding, ax[1].padding),
                    dilation=(ax[0].dilation, ax[1].dilation), groups=c,
                    sparse=node.sparse, **changes)  # type: ignore[attr-defined]
    notes.append(note(f"lowered {node.describe()} to a depthwise synapse.conv (groups = {c}, "
                      f"weight {[c, 1, ax[0].size, ax[1].size]}){_remainder_note(ax)}"))
    return conv


def _remainder_note(ax: list[_Axis]) -> str:
    """What the report says about the remainder padding ("" when no zero taps were needed)."""
    if not (ax[0].lead or ax[1].lead):
        return ""
    spread = [a for a, x in zip(("rows", "columns"), ax) if x.step > 1]
    return (f"; slayer's bottom/right remainder padding became {ax[0].lead} leading zero kernel "
            f"row(s), {ax[1].lead} column(s) and padding {[ax[0].padding, ax[1].padding]}"
            + (f", with the dilated {' and '.join(spread)} spread out to dilation 1"
               if spread else ""))


# ---------------------------------------------------------------- a pool without a neuron


def _fold_into_dense(rw: Rewriter, pool: Op, notes: list[Note]) -> None:
    """Fold the lowered ``pool`` into ``flatten → dense`` after it (see the docstring)."""
    conv = rw.nodes[pool.name]
    flat = rw.only_user(conv.name)
    dense = rw.only_user(flat.name) if flat is not None and flat.OP == "tensor.flatten" else None
    if dense is None or dense.OP != "synapse.dense" or dense.inputs != (flat.name,) or any(
            getattr(n, a) is not None for n in (conv, dense)
            for a in ("weight_imag", "quant_scale")):
        return  # a neuron (or something else) follows: a layer of its own
    k, w = _masked_weight(rw, conv), _masked_weight(rw, dense)
    src = rw.nodes[conv.inputs[0]]
    gy = w.reshape(w.shape[0], *conv.shape)  # type: ignore[misc]
    folded = conv_adjoint(gy, k, src.shape, conv).reshape(w.shape[0], -1)  # type: ignore
    dtype = rw.params[dense.weight.name].dtype  # type: ignore[union-attr]
    changes = {"weight": rw.put(dense.weight, f"{dense.name}.weight", folded.astype(dtype)),
               "mask": None}
    if conv.bias is not None:  # type: ignore[attr-defined]
        b = np.asarray(rw.params[conv.bias.name], np.float64)  # type: ignore[attr-defined]
        extra = gy.reshape(*gy.shape[:2], -1).sum(-1) @ b
        old = 0.0 if dense.bias is None else rw.params[dense.bias.name]  # type: ignore
        changes["bias"] = rw.put(dense.bias, f"{dense.name}.bias",  # type: ignore[attr-defined]
                                 (old + extra).astype(dtype))
    rw.nodes[dense.name] = dense.replace(**changes)
    rw.nodes[flat.name] = flat.replace(shape=(int(np.prod(src.shape)),))  # type: ignore
    rw.bypass(conv.name)
    notes.append(note(f"folded {pool.describe()} (no neuron after it: no netlist layer of its "
                      f"own) into {dense.describe()}: weight {list(w.shape)} -> "
                      f"{list(folded.shape)}"))


def _masked_weight(rw: Rewriter, syn: Op) -> np.ndarray:
    w = np.asarray(rw.params[syn.weight.name], np.float64)  # type: ignore[attr-defined]
    mask = syn.mask  # type: ignore[attr-defined]
    return w if mask is None else w * np.asarray(rw.params[mask.name], np.float64)


def conv_adjoint(gy: np.ndarray, k: np.ndarray, in_shape: tuple[int, ...], conv: Op
                 ) -> np.ndarray:
    """``gy [O, Cout, Ho, Wo]`` through the transpose of ``conv`` (kernel ``k``): ``[O, C, H, W]``.

    Row ``o`` of the result is the input-side weight of ``x ↦ Σ gy[o] · conv(x)``.
    """
    (sh, sw), (ph, pw) = _pair(conv.stride), _pair(conv.padding)  # type: ignore[attr-defined]
    (dh, dw), groups = _pair(conv.dilation), conv.groups  # type: ignore[attr-defined]
    c, h, w = in_shape
    n, (cout, cig, kh, kw), (ho, wo) = gy.shape[0], k.shape, gy.shape[2:]
    og = cout // groups
    gyg = gy.reshape(n, groups, og, ho, wo)
    kg = k.reshape(groups, og, cig, kh, kw)
    x = np.zeros((n, c, h + 2 * ph, w + 2 * pw))
    for a in range(kh):
        for b in range(kw):
            part = np.einsum("ngqij,gqc->ngcij", gyg, kg[..., a, b]).reshape(n, c, ho, wo)
            x[:, :, a * dh:a * dh + sh * (ho - 1) + 1:sh, b * dw:b * dw + sw * (wo - 1) + 1:sw] \
                += part
    return x[:, :, ph:ph + h, pw:pw + w]
