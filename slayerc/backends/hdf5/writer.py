"""IR graph → netx netlist (as a dict tree), exactly as lava-dl's exporters write it.

The graph must be a chain of layers from one ``io.input`` to one ``io.output``.  Each layer is
matched in one of three forms (see the package docstring): Lava's (``shift → synapse → [delay]
→ neuron``), slayer's block form (``synapse → neuron → shift → [delay]``) or an SDNN layer
without a shift (``synapse → neuron``).  Anything else is a :class:`BackendError` naming the node.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from slayerc.backends.hdf5 import schema as s
from slayerc.backends.hdf5.h5io import FixedStr, Str
from slayerc.errors import BackendError, VerifyError
from slayerc.ir import ops
from slayerc.ir import target as ir_target
from slayerc.ir.core import Graph, Op, ParamRef
from slayerc.ir.shapes import infer_shapes
from slayerc.ir.verify import verify
from slayerc.runtime import neurons as families

TARGETS = tuple(ir_target.TARGETS)
NEURONS = frozenset(ops.NEURON_OPS | {"dendrite.sigma"})
INPUT_NEURONS = frozenset(ops.NEURON_OPS | {"axon.delta"})
SDNN_OPS = frozenset({"neuron.sigma_delta", "axon.delta", "dendrite.sigma"})


@dataclass
class Layer:
    """One hdf5 layer matched in the graph."""

    kind: str  # input, flatten, average, or a LayerKind name
    anchor: Op  # the node diagnostics name
    nodes: list[Op] = field(default_factory=list)
    syn: Op | None = None
    neuron: Op | None = None
    transform: Op | None = None
    delay: Op | None = None
    delay_pre: bool = False
    rec: Op | None = None
    form: str = "lava"


def _err(node: Op, key: str | None, message: str) -> BackendError:
    return BackendError(f"{node.describe()}" + (f": key '{key}'" if key else "") + f": {message}")


# ------------------------------------------------------------------------------ matching


def _main_chain(g: Graph) -> list[Op]:
    """io.input, the nodes on the forward path, io.output (recurrent side paths excluded)."""
    if len(g.inputs) != 1 or len(g.outputs) != 1:
        raise BackendError(f"graph @{g.name}: a netlist has exactly one io.input and one "
                           f"io.output, got {len(g.inputs)} and {len(g.outputs)}")
    order = {name: i for i, name in enumerate(g.nodes)}
    node, chain = g.inputs[0], [g.inputs[0]]
    while node.OP != "io.output":
        users = [u for u in g.users(node.name) if order[u.name] > order[node.name]]
        if len(users) != 1:
            raise _err(node, None, f"has {len(users)} forward users; a netlist is a chain of "
                       "layers, each read by the next")
        node = users[0]
        chain.append(node)
    return chain


class _Cursor:
    def __init__(self, body: list[Op], i: int):
        self.body, self.i, self.taken = body, i, []

    def peek(self) -> Op | None:
        return self.body[self.i] if self.i < len(self.body) else None

    def take(self, ok: Any, when: bool = True) -> Op | None:
        node = self.peek()
        if not when or node is None or node.OP not in ok:
            return None
        self.i += 1
        self.taken.append(node)
        return node


def _match_layer(g: Graph, body: list[Op], i: int) -> tuple[Layer, int]:
    c = _Cursor(body, i)
    lead = c.take({"axon.shift"})
    # per-column delays: after the lead shift (Lava form) or, in slayer form, right after a
    # layer that holds no delay (a flatten): ``delay → synapse → neuron → shift``
    pre = c.take({"axon.delay"}, lead is not None or _feeds_synapse(body, c.i))
    syn = c.take(s.KIND_OF_OP)
    if syn is None:
        bad = c.peek() or body[-1]
        raise _err(bad, None, "does not start a netlist layer: expected a synapse "
                   f"({', '.join(s.KIND_OF_OP)}), tensor.flatten or tensor.average, optionally "
                   "after one axon.shift")
    add = c.take({"tensor.add"})
    post = c.take({"axon.delay"}, lead is not None)
    neuron = c.take(NEURONS)
    trail = c.take({"axon.shift"}, lead is None and neuron is not None)
    # a layer with per-column delays leaves its own output delay to the next dense layer,
    # which holds it as its per-column delays (the same delay, on the other side of the axon)
    post = c.take({"axon.delay"}, trail is not None and pre is None) or post
    if pre is not None and post is not None:
        raise _err(post, None, f"a netlist layer holds one delay vector, but this layer also "
                   f"has %{pre.name} before its synapse; move one of them to another layer")
    layer = Layer(kind=s.KIND_OF_OP[syn.OP].name, anchor=neuron or syn, syn=syn, neuron=neuron,
                  delay=pre or post, delay_pre=pre is not None,
                  form="lava" if lead else "slayer" if trail else "noshift")
    layer.nodes = list(c.taken)
    if add is not None:
        layer.rec = _match_rec(g, add, syn, neuron)
        layer.nodes += [g[layer.rec.inputs[0]], layer.rec]
        layer.kind = "dense_rec"
    _check_form(layer, lead, trail)
    return layer, c.i


def _feeds_synapse(body: list[Op], i: int) -> bool:
    """Whether ``body[i]`` is a delay read by the synapse right after it."""
    return (i + 1 < len(body) and body[i].OP == "axon.delay"
            and body[i + 1].OP in s.KIND_OF_OP and body[i + 1].inputs[:1] == (body[i].name,))


def _match_rec(g: Graph, add: Op, syn: Op, neuron: Op | None) -> Op:
    others = [g[n] for n in add.inputs if n != syn.name]
    if neuron is None or syn.OP != "synapse.dense" or len(others) != 1:
        raise _err(add, None, "a recurrent layer is synapse.dense + synapse.dense(axon.shift("
                   "neuron)) → tensor.add → neuron")
    rec = others[0]
    shift = g.nodes.get(rec.inputs[0]) if rec.inputs else None
    ok = (rec.OP == "synapse.dense" and shift is not None and shift.OP == "axon.shift"
          and getattr(shift, "steps", 0) == 1 and shift.inputs == (neuron.name,)
          and len(g.users(rec.name)) == 1 and len(g.users(shift.name)) == 1)
    if not ok:
        raise _err(rec, None, "the recurrent path of a dense_rec layer must be "
                   f"synapse.dense(axon.shift{{steps = 1}}(%{neuron.name}))")
    return rec


def _check_form(layer: Layer, lead: Op | None, trail: Op | None) -> None:
    for shift in (lead, trail):
        if shift is not None and getattr(shift, "steps", 1) != 1:
            raise _err(shift, None, f"steps = {shift.steps}: a netlist layer holds its "
                       "output for exactly one step")
    neuron = layer.neuron
    if neuron is None:
        if layer.form != "lava" or layer.delay is not None:
            raise _err(layer.syn, None, "a layer without a neuron must be axon.shift → "
                       "synapse.dense with no delay")
        return
    if layer.form == "noshift" and neuron.OP not in SDNN_OPS:
        raise _err(neuron, None, "its synapse has no one-step axon.shift before it (Lava form) "
                   "or after the neuron (slayer form); Lava's synapses always hold one step: run "
                   "legalize-layers (in the loihi2 default pipeline) to add it")
    if layer.form != "lava" and getattr(neuron, "bias", None) is not None:
        raise _err(neuron, "bias", "in this block form the bias and the first input arrive "
                   "together, but Lava integrates the bias one step before the input (bias "
                   "head-start, spec §7); run legalize-layers (in the loihi2 default pipeline) "
                   "to put the layer in Lava's form, which reports what that changes")


def _on_input_grid(quant: Op) -> bool:
    steps = float(quant.step) * 64
    return steps >= 1 and steps == int(steps)


def _match_input(g: Graph, inp: Op, body: list[Op], absorb: bool) -> tuple[list[Layer], int]:
    c = _Cursor(body, 0)
    quant = c.take({"tensor.quantize"})  # slayer Input's input quantizer: the host's encoding
    if quant is not None and not _on_input_grid(quant):
        raise _err(quant, "step", f"input quantization step {quant.step!r} is not a multiple of "
                   "1/64: netx input layers take integers x·64")
    transform = c.take({"tensor.affine"})
    neuron = c.take(INPUT_NEURONS)
    if neuron is None:
        if transform is not None:
            raise _err(transform, None, "an input transform must feed the input neuron")
        return ([Layer("input", inp, [inp])] if inp.name == "layer0" else []), 0
    layer = Layer("input", neuron, [inp, *c.taken], neuron=neuron, transform=transform)
    shift = c.take({"axon.shift"}, absorb)  # the slayer Input block's delay_shift
    if shift is not None:
        layer.nodes.append(shift)
    return [layer], c.i


SIMPLE = {"tensor.flatten": "flatten", "tensor.average": "average"}


def match_layers(g: Graph) -> list[Layer]:
    """Split ``g`` into netlist layers; every node must belong to one.

    A shift right after the input neuron starts the next layer in Lava's form; only when that
    reading fails is it taken as a slayer ``Input`` block's own shift (slayer form follows).
    """
    chain = _main_chain(g)
    try:
        return _match_all(g, chain, absorb=False)
    except BackendError as first:
        try:
            return _match_all(g, chain, absorb=True)
        except BackendError:
            raise first from None


def _match_all(g: Graph, chain: list[Op], absorb: bool) -> list[Layer]:
    body = chain[1:-1]
    layers, i = _match_input(g, chain[0], body, absorb)
    while i < len(body):
        if body[i].OP in SIMPLE:
            layers.append(Layer(SIMPLE[body[i].OP], body[i], [body[i]]))
            i += 1
            continue
        layer, i = _match_layer(g, body, i)
        layers.append(layer)
    if not layers:
        raise BackendError(f"graph @{g.name}: nothing to write (no layers)")
    covered = {n.name for layer in layers for n in layer.nodes} | {chain[0].name, chain[-1].name}
    for node in g:
        if node.name not in covered:
            raise _err(node, None, "is not part of any netlist layer")
    return layers


# ------------------------------------------------------------------------------- values


def _ints(g: Graph, node: Op, attr: str, value: Any, unit: float) -> np.ndarray:
    """``value × unit`` as int64, which must be whole (the netlist grid)."""
    if isinstance(value, (int, float)):  # a scalar attribute: no numpy round trip
        x = float(value) * unit
        if abs(x) < 2.0 ** 62 and abs(x - round(x)) <= 1e-6 * max(1.0, abs(x)):
            return np.asarray(round(x), dtype=np.int64)
    a = np.asarray(g.value(value), dtype=np.float64) * unit
    r = np.rint(a)
    if not np.all(np.isfinite(a)) or np.any(np.abs(a - r) > 1e-6 * np.maximum(1.0, np.abs(a))):
        raise _err(node, attr, f"values × {unit:g} are not whole numbers; run legalize-quant "
                   "to put them on the netlist grid")
    return r.astype(np.int64)


def _scale(node: Op | None) -> int:
    return getattr(node, "scale", 64) if node is not None else 64


def _sdnn_source(g: Graph, node: Op) -> Op | None:
    """The sigma-delta neuron whose threshold/activation a Delta/Sigma layer repeats."""
    first = last_before = None
    seen = False
    for n in g:  # one pass: the last one before ``node``, else the first one
        seen |= n.name == node.name
        if n.OP == "neuron.sigma_delta":
            first = first or n
            last_before = last_before if seen else n
    return last_before or first


@functools.cache
def _field_names(cls: type[Op]) -> frozenset[str]:
    return frozenset(f.name for f in dataclasses.fields(cls))


def _key(g: Graph, neuron: Op, key: s.Key) -> Any:
    if key.kind == "const":
        return np.bool_(key.default) if isinstance(key.default, bool) else np.int64(key.default)
    source = neuron if key.attr in _field_names(type(neuron)) else _sdnn_source(g, neuron)
    value = getattr(source, key.attr, None) if source is not None else None
    if key.kind == "bool":
        return np.bool_(value)
    if key.kind == "str":
        return Str(value or key.default)
    unit = _scale(source) if key.unit == s.SCALE else key.unit
    ints = _ints(g, neuron, key.attr, 0.0 if value is None else value, unit)
    return ints if isinstance(value, ParamRef) else np.int64(ints)


def _neuron_group(g: Graph, neuron: Op) -> dict[str, Any]:
    if getattr(neuron, "cum_error", False):
        raise _err(neuron, "cum_error", "cum_error = true cannot be stored in a netlist")
    if neuron.OP in ("axon.delta", "dendrite.sigma"):
        keys = s.SDNN_INPUT_KEYS if neuron.OP == "axon.delta" else s.SDNN_OUTPUT_KEYS
        tname = "SDNN"
    else:
        keys, tname = s.TYPE_OF_OP[neuron.OP].keys, s.TYPE_OF_OP[neuron.OP].name
    return {"type": Str(tname), **{k.h5: _key(g, neuron, k) for k in keys}}


def _weight(g: Graph, syn: Op, attr: str, unit: int) -> np.ndarray:
    w = np.asarray(g.param(getattr(syn, attr)), dtype=np.float64)
    mask = getattr(syn, "mask", None)
    if mask is not None:
        m = g.param(mask)
        if not np.all((m == 0) | (m == 1)):
            raise _err(syn, "mask", "only a 0/1 mask can be folded into netlist weights")
        w = w * m
    return _ints(g, syn, attr, w, unit).astype(np.float32)


def _channels_delay(g: Graph, layer: Layer, cin: int, cout: int) -> np.ndarray:
    d = layer.delay
    value = getattr(d, "delay", 0)
    if isinstance(value, int):
        return np.float32(value)
    arr = g.param(value)
    want = cin if layer.delay_pre else cout
    ambiguous = layer.delay_pre and cin == cout and arr.size > 1 and np.any(arr != arr.flat[0])
    if arr.shape != (want,) or ambiguous:
        raise _err(d, "delay", f"a netlist stores one delay per output channel ({cout}) or, on "
                   f"a dense layer's input side, per input feature ({cin}); got shape "
                   f"{list(arr.shape)}" + (" (with equal counts netx reads it per output)"
                                           if ambiguous else ""))
    return _ints(g, d, "delay", arr, 1).astype(np.float32)


# ------------------------------------------------------------------------------- layers


def _emit_input(g: Graph, layer: Layer) -> dict[str, Any]:
    shape = layer.nodes[0].shape
    out: dict[str, Any] = {"type": FixedStr("input"), "shape": np.asarray(shape, np.int64)}
    if layer.neuron is None:
        return out
    t, unit = layer.transform, _scale(layer.neuron)
    if t is not None:
        out["weight"] = _ints(g, t, "scale", [t.scale], unit).astype(np.float32)
        if t.bias != 0:
            out["bias"] = _ints(g, t, "bias", [t.bias], unit).astype(np.float32)
    out["neuron"] = _neuron_group(g, layer.neuron)
    return out


def _emit_flatten(g: Graph, layer: Layer) -> dict[str, Any]:
    n = layer.anchor.shape[0]
    return {"type": FixedStr("flatten"), "shape": np.asarray([n, 1, 1], np.int64)}


def _emit_average(g: Graph, layer: Layer) -> dict[str, Any]:
    return {"type": FixedStr("average"),
            "shape": np.asarray([layer.anchor.groups, 1, 1], np.int64)}


def _emit_synaptic(g: Graph, layer: Layer) -> dict[str, Any]:
    syn, neuron = layer.syn, layer.neuron
    kind = s.LAYER_KINDS[layer.kind]
    if syn.bias is not None:
        raise _err(syn, "bias", "a synapse bias has no place in a netlist (only the neuron "
                   "bias); run legalize-layers (in the loihi2 default pipeline) to move it "
                   "onto the neuron")
    out_node = neuron or syn
    out: dict[str, Any] = {"type": FixedStr(kind.name),
                           "shape": np.asarray(out_node.shape, np.int64)}
    unit = _scale(neuron)
    weight = _weight(g, syn, "weight", unit)
    groups = getattr(syn, "groups", 1)
    cin, cout = s.counts_of(kind, weight.shape, groups)
    if kind.counts:
        out.update({kind.counts[0]: np.int64(cin), kind.counts[1]: np.int64(cout)})
    out.update(_geometry(syn, kind, weight.shape))
    if syn.weight_imag is not None:
        out["weight"] = {"real": weight, "imag": _weight(g, syn, "weight_imag", unit)}
    else:
        out["weight"] = weight
    if layer.rec is not None:
        out["weight_rec"] = _weight(g, layer.rec, "weight", unit)
    bias = getattr(neuron, "bias", None)
    if bias is not None:
        b = _ints(g, neuron, "bias", bias, unit).astype(np.float32)
        # per neuron of a 3-d layer: netx's neuron order (W, H, C), as its ``shape[::-1]``
        b = b.transpose(2, 1, 0).copy() if b.ndim == 3 else b
        out["bias"] = b if b.ndim else np.full(cout, b, np.float32)
    if layer.delay is not None:
        out["delay"] = _channels_delay(g, layer, cin, cout)
    if neuron is not None:
        out["neuron"] = _neuron_group(g, neuron)
    return out


def _geometry(syn: Op, kind: s.LayerKind, wshape: tuple[int, ...]) -> dict[str, Any]:
    if not kind.geometry:
        return {}
    out = {"kernelSize": np.asarray(syn.kernel if kind.pool else wshape[2:], np.int64)}
    for key in s.GEOMETRY:
        v = getattr(syn, key)
        out[key] = np.asarray((v, v) if isinstance(v, int) else v, np.int64)
    if kind.groups:
        out["groups"] = np.int64(syn.groups)
    return out


EMITTERS: dict[str, Callable[[Graph, Layer], dict[str, Any]]] = {
    "input": _emit_input, "flatten": _emit_flatten, "average": _emit_average,
    **{name: _emit_synaptic for name in s.LAYER_KINDS},
}


# ------------------------------------------------------------------------------ loihi2


def _loihi2_problems(layer: Layer, group: dict[str, Any]) -> Iterator[BackendError]:
    n, why = layer.anchor, "netx 0.6 would"
    if layer.kind not in s.LOIHI2_LAYERS:
        yield _err(n, "type", f"layer type '{layer.kind}' cannot be loaded by netx 0.6 "
                   "(write target='slayerc' for slayerc's own runtime)")
    nt = group.get("neuron", {}).get("type")
    if nt is not None and not s.NEURON_TYPES[str(nt)].loihi2:
        yield _err(n, "neuron/type", f"{nt} neurons cannot be loaded by netx 0.6")
    if group.get("neuron", {}).get("gradedSpike", False):
        yield _err(n, "neuron/gradedSpike", f"{why} ignore it and send binary spikes")
    if layer.neuron is not None and getattr(layer.neuron, "activation", "relu") != "relu":
        yield _err(n, "neuron/activation", f"{why} run it as relu")
    if layer.kind in ("dense", "dense_rec") and layer.neuron is None:
        yield _err(n, "neuron", f"{why} give it a default CUBA neuron that never spikes")
    elif layer.syn is not None and layer.neuron is None:
        yield _err(n, "neuron", f"a {layer.kind} layer without a neuron cannot be loaded by "
                   "netx 0.6 (it reads every synaptic layer's neuron); put a neuron after it, "
                   "or fold it into the next synapse (lower-pool folds a pool that feeds "
                   "flatten → dense)")
    complex_ = isinstance(group.get("weight"), dict)
    if complex_ and layer.kind != "dense":
        yield _err(n, "weight", f"{why} read only real weights on a {layer.kind} layer")
    if complex_ and "bias" in group:
        yield _err(n, "bias", f"{why} ignore the bias of a complex (RF) dense layer")
    yield from _loihi2_delay(layer, group, complex_)
    yield from _loihi2_values(layer, group)


def _extreme(a: np.ndarray, lo: int, hi: int) -> float | None:
    """The value of ``a`` farthest outside ``[lo, hi]``, or None when all fit."""
    a = np.asarray(a, np.float64)
    if a.size == 0 or (a.min() >= lo and a.max() <= hi):
        return None
    return float(a.min() if lo - a.min() > a.max() - hi else a.max())


def _loihi2_values(layer: Layer, group: dict[str, Any]) -> Iterator[BackendError]:
    """Weights, thresholds and biases the loihi2 netlist fields cannot hold (netx would clip
    or wrap them silently): the graph was not legalized for the target."""
    t, n = ir_target.LOIHI2, layer.anchor
    fix = "run legalize-quant{target=loihi2} (in the loihi2 default pipeline) first"
    weights = group.get("weight")
    parts = weights if isinstance(weights, dict) else {"": weights}
    named = {f"weight/{k}" if k else "weight": v for k, v in parts.items()}
    named["weight_rec"] = group.get("weight_rec")
    lo, hi = t.weight_range
    for key, a in named.items():
        v = None if a is None or layer.kind == "input" else _extreme(a, lo, hi)
        if v is not None:
            yield _err(n, key, f"weight {v:.0f} does not fit loihi2's {t.weight_bits}-bit weights "
                       f"[{lo}, {hi}]; {fix}")
    th = group.get("neuron", {}).get("vThMant")
    v = None if th is None else _extreme(th, 0, t.threshold_max)
    if v is not None:
        yield _err(n, "neuron/vThMant", f"{v:.0f} does not fit loihi2's {t.threshold_bits}-bit "
                   f"threshold [0, {t.threshold_max}]; {fix}")
    blo, bhi = t.bias_range
    v = None if "bias" not in group or layer.kind == "input" else \
        _extreme(group["bias"], blo, bhi)
    if v is not None:
        yield _err(n, "bias", f"{v:.0f} does not fit loihi2's {t.bias_bits}-bit bias "
                   f"[{blo}, {bhi}]; {fix}")


def _loihi2_delay(layer: Layer, group: dict[str, Any], complex_: bool) -> Iterator[BackendError]:
    if "delay" not in group:
        return
    n, d = layer.delay or layer.anchor, np.asarray(group["delay"])
    if layer.kind != "dense" or complex_:
        yield _err(n, "delay", f"netx 0.6 ignores delays on {layer.kind} layers"
                   + (" with complex weights" if complex_ else ""))
    elif d.size and d.max() > s.MAX_DELAY:
        yield _err(n, "delay", f"delay {int(d.max())} exceeds netx's maximum of {s.MAX_DELAY} "
                   f"(run legalize-delay{{max={s.MAX_DELAY}}})")


# --------------------------------------------------------------------------------- entry


def _stores_csr(layer: Layer, group: dict[str, Any]) -> bool:
    """Target ``slayerc``: a real weight of a synapse marked ``sparse`` goes in CSR form."""
    return (layer.kind in s.CSR_KINDS and getattr(layer.syn, "sparse", False)
            and isinstance(group.get("weight"), np.ndarray))


def _no_netlist_neuron(g: Graph) -> None:
    """Refuse a neuron family with no netlist neuron type (e.g. the non-spiking neuron.li)."""
    for node in g:
        if node.OP in families.FAMILIES and node.OP.startswith("neuron.") \
                and node.OP not in s.TYPE_OF_OP:
            raise _err(node, None, f"{node.OP} has no netx neuron type (a netlist holds "
                       f"{', '.join(s.NEURON_TYPES)} neurons, which spike); keep the graph in a "
                       ".sir or .nir file (slayerc's runtimes run it), or end the network on a "
                       "spiking neuron")


def graph_to_tree(g: Graph, target: str) -> dict[str, Any]:
    """The dict tree (see ``h5io.dump_tree``) of ``g`` as a netlist for ``target``."""
    ir_target.get(target, BackendError)
    try:
        g = verify(g if "shapes" in g.facts else infer_shapes(g))
    except VerifyError as e:
        raise BackendError(f"graph @{g.name} cannot be written: {e}") from e
    _no_netlist_neuron(g)
    layers = match_layers(g)
    groups = {str(i): EMITTERS[layer.kind](g, layer) for i, layer in enumerate(layers)}
    if target == "slayerc":
        for layer, grp in zip(layers, groups.values()):
            if _stores_csr(layer, grp):
                grp[s.CSR] = s.to_csr(grp.pop("weight"))
    if target == "loihi2":
        problems = [p for layer, grp in zip(layers, groups.values())
                    for p in _loihi2_problems(layer, grp)]
        if problems:
            raise BackendError(f"graph @{g.name} does not fit target loihi2:\n" +
                               "\n".join(f"  {p}" for p in problems)) if len(problems) > 1 \
                else problems[0]
    return {"format_version": np.int64(s.version_of(groups)), "layer": groups}
