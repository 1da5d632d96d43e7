"""netx netlist (as a dict tree) → IR graph, reproducing Lava's timing explicitly.

Each hdf5 layer ``K`` becomes nodes named ``layerK`` (the layer's output) and ``layerK_*``
helpers, all with ``loc = Loc("layer/K", <file>)``; see the package docstring for the shapes.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from typing import Any

import numpy as np

from slayerc.backends.hdf5 import schema as s
from slayerc.backends.hdf5.schema import Where
from slayerc.errors import BackendError, VerifyError
from slayerc.ir import ops
from slayerc.ir.core import Graph, GraphBuilder, Loc, ParamRef
from slayerc.ir.shapes import infer_shapes
from slayerc.ir.target import LOIHI2
from slayerc.ir.verify import verify


class _Reader:
    """State while turning one file's layers into nodes."""

    def __init__(self, path: str, input_shape: tuple[int, ...] | None):
        self.path, self.input_shape = path, input_shape
        self.b = GraphBuilder(facts=())
        self.prev: str | None = None  # the node the next layer reads
        self.checks: list[tuple[str, tuple[int, ...], bool, Where]] = []
        self.quant_ok = True
        self.delays_ok = True

    def loc(self, k: str | None) -> Loc:
        return Loc(module=None if k is None else f"layer/{k}", file=self.path)

    def add(self, cls: type[ops.Op], name: str, inputs: list[str], k: str | None,
            **attrs: Any) -> str:
        assert name not in self.b.nodes, name
        return self.b.add(cls, name, inputs, loc=self.loc(k), **attrs)

    def param(self, name: str, array: np.ndarray) -> ParamRef:
        self.b.params[name] = array
        return ParamRef(name)

    def ensure_input(self, shape: tuple[int, ...] | None, w: Where, what: str) -> str:
        """The node the first layer reads: the input layer, or a new ``io.input``."""
        if self.prev is not None:
            return self.prev
        given = tuple(int(d) for d in self.input_shape) if self.input_shape else None
        if given is not None and shape is not None and given != shape:
            raise w.error(None, f"input_shape={list(given)} does not match the {what}, which "
                          f"expects {list(shape)}")
        shape = given or shape
        if shape is None:
            raise w.error(None, f"the first layer is {what} and there is no input layer: pass "
                          "input_shape=(C, H, W) (slayer order) to read()")
        self.prev = self.add(ops.Input, "inp", [], None, shape=shape, dtype="f32")
        return self.prev


# --------------------------------------------------------------------------------- neurons


def _neuron_keys(r: _Reader, ngrp: dict, w: Where, role: str) -> tuple[type[ops.Op], tuple]:
    ntype = s.as_str(s.dataset(ngrp, "type", w, label="neuron/type"), "neuron/type", w)
    nt = s.NEURON_TYPES.get(ntype)
    if nt is None:
        raise w.error("neuron/type", f"unknown neuron type {ntype!r}; known: "
                      f"{', '.join(s.NEURON_TYPES)}")
    if nt.name != "SDNN":
        return nt.op, nt.keys
    if role == "input":
        return ops.Delta, s.SDNN_INPUT_KEYS
    if "sigma_output" in ngrp:  # netx tests presence, not the value
        label = "neuron/sigma_output"
        s.as_bool(s.dataset(ngrp, "sigma_output", w, label=label), label, w)
        return ops.Sigma, s.SDNN_OUTPUT_KEYS
    return nt.op, nt.keys


def _key_value(r: _Reader, key: s.Key, ngrp: dict, w: Where, channels: int,
               pname: str) -> Any:
    label = f"neuron/{key.h5}"
    v = s.dataset(ngrp, key.h5, w, key.required, label)
    if v is None:
        return key.default
    if key.kind == "bool":
        return s.as_bool(v, label, w)
    if key.kind == "str":
        text = s.as_str(v, label, w)
        if text not in ops.ACTIVATIONS:
            raise w.error(label, f"unknown activation {text!r}; known: "
                          f"{', '.join(ops.ACTIVATIONS)}")
        return text
    if key.kind == "const":  # validated, not kept
        _ = (s.as_bool(v, label, w) if isinstance(key.default, bool)
             else s.as_int(v, label, w, (), key.lo, key.hi))
        return None
    ints = s.as_int(v, label, w, ((), (1,), (channels,)), key.lo, key.hi)
    if key.h5 == "vThMant":  # Loihi 2 holds 17 bits: a larger one needs legalize-quant
        r.quant_ok &= bool(ints.size == 0 or ints.max() <= LOIHI2.threshold_max)
    unit = 64 if key.unit == s.SCALE else key.unit
    if ints.size == 1 and ints.shape != (channels,):
        return float(ints.reshape(-1)[0]) / unit
    return r.param(f"{pname}.{key.attr}", ints.astype(np.float64) / unit)


@functools.cache
def _field_names(cls: type[ops.Op]) -> frozenset[str]:
    return frozenset(f.name for f in dataclasses.fields(cls))


def _neuron(r: _Reader, ngrp: Any, w: Where, k: str, inputs: list[str], channels: int,
            role: str = "hidden", bias: ParamRef | None = None) -> str:
    if not isinstance(ngrp, dict):
        raise w.error("neuron", "expected a group")
    op, keys = _neuron_keys(r, ngrp, w, role)
    fields = _field_names(op)
    attrs = {}
    for key in keys:
        value = _key_value(r, key, ngrp, w, channels, f"layer{k}")
        if key.attr in fields:
            attrs[key.attr] = value
    if bias is not None:
        if "bias" not in fields:
            raise w.error("bias", f"a bias on a {op.OP} layer is not supported (netx's "
                          "Sigma output has no bias)")
        attrs["bias"] = bias
    return r.add(op, f"layer{k}", inputs, k, **attrs)


# ---------------------------------------------------------------------------------- layers


def _read_input(r: _Reader, k: str, grp: dict, w: Where) -> None:
    if r.prev is not None:
        raise w.error("type", "an input layer must be the first layer (layer/0)")
    shape = tuple(int(d) for d in s.as_int(s.dataset(grp, "shape", w), "shape", w,
                                            ((1,), (3,)), 1, 1 << 24))
    if r.input_shape is not None and tuple(r.input_shape) != shape:
        raise w.error("shape", f"the input layer has shape {list(shape)} but input_shape="
                      f"{list(r.input_shape)} was passed")
    if "neuron" not in grp:
        r.prev = r.add(ops.Input, f"layer{k}", [], k, shape=shape, dtype="f32")
        return
    x = r.add(ops.Input, "inp", [], None, shape=shape, dtype="f32")
    if "weight" in grp or "bias" in grp:
        scale, bias = (_transform(grp, key, w, default)
                       for key, default in (("weight", 64.0), ("bias", 0.0)))
        x = r.add(ops.Affine, f"layer{k}_transform", [x], k, scale=scale / 64, bias=bias / 64)
    r.prev = _neuron(r, grp["neuron"], w, k, [x], shape[0], role="input")


def _transform(grp: dict, key: str, w: Where, default: float) -> float:
    v = s.dataset(grp, key, w, required=False)
    if v is None:
        return default
    if v.size != 1 or v.ndim > 1:
        raise w.error(key, f"expected one number, got {s.describe_value(v)}")
    return float(s.as_weight(v.reshape(1), key, w, 1)[0])


def _weights(r: _Reader, grp: dict, w: Where, k: str, ndim: int,
             kind: s.LayerKind) -> dict[str, Any]:
    """``weight``, ``weight/real`` + ``weight/imag`` or ``weight_csr`` (then ``sparse``) as
    float32 params in slayer units."""
    v = grp.get("weight")
    sparse = s.CSR in grp
    if sparse and v is not None:
        raise w.error(s.CSR, "a layer stores either weight or weight_csr, not both")
    if sparse and kind.name not in s.CSR_KINDS:
        raise w.error(s.CSR, f"only {', '.join(sorted(s.CSR_KINDS))} layers store a CSR weight")
    if sparse:
        arrays = {"weight": s.from_csr(grp[s.CSR], w, ndim)}
    elif v is None:
        raise w.error("weight", "missing")
    elif isinstance(v, dict):
        parts = {"weight": "real", "weight_imag": "imag"}
        arrays = {attr: s.as_weight(s.dataset(v, part, w.at(f"{w.layer}/weight")), part,
                                    w.at(f"{w.layer}/weight"), ndim)
                  for attr, part in parts.items()}
        if arrays["weight"].shape != arrays["weight_imag"].shape:
            raise w.error("weight/imag", "shape differs from weight/real")
    else:
        arrays = {"weight": s.as_weight(v, "weight", w, ndim)}
    r.quant_ok &= all(a.min() >= -256 and a.max() <= 255 for a in arrays.values())
    out: dict[str, Any] = {attr: r.param(f"layer{k}.{attr}", (a / 64).astype(np.float32))
                           for attr, a in arrays.items()}
    return {**out, "sparse": True} if sparse else out


def _pair(grp: dict, key: str, w: Where, lo: int) -> tuple[int, int]:
    a = s.as_int(s.dataset(grp, key, w), key, w, ((2,),), lo, 1 << 16)
    return int(a[0]), int(a[1])


def _geometry(grp: dict, w: Where, kind: s.LayerKind, wshape: tuple[int, ...]) -> dict:
    if not kind.geometry:
        return {}
    attrs = {key: _pair(grp, key, w, 0 if key == "padding" else 1) for key in s.GEOMETRY}
    ksize = _pair(grp, "kernelSize", w, 1)
    if kind.pool:
        attrs["kernel"] = ksize
        if wshape != (1, 1, *ksize):
            raise w.error("weight", f"a {kind.name} kernel must have shape [1, 1, "
                          f"{ksize[0]}, {ksize[1]}], got {list(wshape)}")
    elif tuple(wshape[2:]) != ksize:
        raise w.error("kernelSize", f"{list(ksize)} does not match the weight {list(wshape)}")
    if kind.groups:
        g = int(s.as_int(s.dataset(grp, "groups", w), "groups", w, ((),), 1, 1 << 16))
        attrs["groups"] = g
    return attrs


def _check_counts(grp: dict, w: Where, kind: s.LayerKind, wshape: tuple[int, ...],
                  groups: int) -> None:
    if kind.counts is None:
        return
    for key, want in zip(kind.counts, s.counts_of(kind, wshape, groups)):
        v = s.dataset(grp, key, w, required=False)
        if v is not None and int(s.as_int(v, key, w, ((),))) != want:
            raise w.error(key, f"is {int(v)} but the weight {list(wshape)} implies {want}")


def _bias(r: _Reader, grp: dict, w: Where, k: str) -> ParamRef | None:
    v = s.dataset(grp, "bias", w, required=False)
    if v is None:
        return None
    if v.ndim not in (1, 3):
        raise w.error("bias", f"expected a per-channel array, got {s.describe_value(v)}")
    a = s.as_weight(v, "bias", w, v.ndim)
    if a.ndim == 3:  # per neuron, in netx's (W, H, C) order: the IR's is (C, H, W)
        a = a.transpose(2, 1, 0).copy()
    lo, hi = LOIHI2.bias_range
    r.quant_ok &= bool(a.min() >= lo and a.max() <= hi)
    return r.param(f"layer{k}.bias", a / 64)


def _delay(r: _Reader, grp: dict, w: Where, k: str, cin: int, cout: int,
           dense: bool) -> tuple[str, Any] | None:
    """(``pre`` or ``post``, delay attribute), or None.  netx: out-length first, then in."""
    v = s.dataset(grp, "delay", w, required=False)
    if v is None:
        return None
    d = s.as_int(v, "delay", w, (), 0, 1 << 24)
    if dense:
        r.delays_ok &= bool(d.size == 0 or d.max() <= s.MAX_DELAY)
    if d.ndim == 0:
        return "post", int(d)
    if d.shape == (cout,):
        return "post", r.param(f"layer{k}.delay", d)
    if dense and d.shape == (cin,):
        return "pre", r.param(f"layer{k}.delay", d)
    raise w.error("delay", f"expected a scalar or one delay per output channel ({cout}), got "
                  f"{s.describe_value(v)}")


def _read_synaptic(r: _Reader, k: str, grp: dict, w: Where, kind: s.LayerKind) -> None:
    weights = _weights(r, grp, w, k, 2 if kind.op is ops.Dense else 4, kind)
    wshape = r.b.params[weights["weight"].name].shape
    attrs = {**weights, **_geometry(grp, w, kind, wshape)}
    _check_counts(grp, w, kind, wshape, attrs.get("groups", 1))
    cin, cout = s.counts_of(kind, wshape, attrs.get("groups", 1))
    x = r.ensure_input((wshape[1],) if kind.op is ops.Dense else None, w, f"a {kind.name} layer")
    x = r.add(ops.Shift, f"layer{k}_shift", [x], k, steps=1)
    delay = _delay(r, grp, w, k, cin, cout, kind.op is ops.Dense)
    if delay is not None and delay[0] == "pre":
        x = r.add(ops.Delay, f"layer{k}_delay", [x], k, delay=delay[1])
    bias = _bias(r, grp, w, k)
    if "neuron" not in grp:
        _no_neuron(r, k, grp, w, kind, delay, bias, x, attrs)
        return
    x = r.add(kind.op, f"layer{k}_syn", [x], k, **attrs)
    if kind.name == "dense_rec":
        x = _recurrent(r, k, grp, w, x, weights)
    if delay is not None and delay[0] == "post":
        x = r.add(ops.Delay, f"layer{k}_delay", [x], k, delay=delay[1])
    r.prev = _neuron(r, grp["neuron"], w, k, [x], cout, bias=bias)
    r.checks.append((r.prev, tuple(int(d) for d in s.as_int(
        s.dataset(grp, "shape", w), "shape", w, ((1,), (2,), (3,)), 1, 1 << 24)),
        kind.op is ops.Dense, w))


def _no_neuron(r: _Reader, k: str, grp: dict, w: Where, kind: s.LayerKind, delay: Any,
               bias: Any, x: str, attrs: dict) -> None:
    """A dense layer without a neuron group (slayer ``Affine(dynamics=False)``)."""
    if kind.name != "dense" or delay is not None or bias is not None:
        raise w.error("neuron", "missing (only a plain dense layer without delay or bias may "
                      "leave it out)")
    r.prev = r.add(kind.op, f"layer{k}", [x], k, **attrs)


def _recurrent(r: _Reader, k: str, grp: dict, w: Where, x: str,
               weights: dict[str, Any]) -> str:
    if "weight_imag" in weights:
        raise w.error("weight", "a dense_rec layer cannot have complex weights")
    v = s.dataset(grp, "weight_rec", w)
    a = s.as_weight(v, "weight_rec", w, 2)
    cout = r.b.params[weights["weight"].name].shape[0]
    if a.shape != (cout, cout):
        raise w.error("weight_rec", f"expected shape [{cout}, {cout}], got {list(a.shape)}")
    r.quant_ok &= bool(a.min() >= -256 and a.max() <= 255)
    wrec = r.param(f"layer{k}.weight_rec", (a / 64).astype(np.float32))
    rs = r.add(ops.Shift, f"layer{k}_recshift", [f"layer{k}"], k, steps=1)
    rsyn = r.add(ops.Dense, f"layer{k}_recsyn", [rs], k, weight=wrec)
    return r.add(ops.Add, f"layer{k}_add", [x, rsyn], k)


def _read_flatten(r: _Reader, k: str, grp: dict, w: Where) -> None:
    s.as_int(s.dataset(grp, "shape", w), "shape", w, (), 1, 1 << 31)  # netx ignores it
    x = r.ensure_input(None, w, "a flatten layer")
    r.prev = r.add(ops.Flatten, f"layer{k}", [x], k)


def _read_average(r: _Reader, k: str, grp: dict, w: Where) -> None:
    shape = s.as_int(s.dataset(grp, "shape", w), "shape", w, ((1,), (3,)), 1, 1 << 24)
    x = r.ensure_input(None, w, "an average layer")
    r.prev = r.add(ops.Average, f"layer{k}", [x], k, groups=int(np.prod(shape)))


def _synaptic(kind: s.LayerKind) -> Callable[[_Reader, str, dict, Where], None]:
    return lambda r, k, grp, w: _read_synaptic(r, k, grp, w, kind)


READERS: dict[str, Callable[[_Reader, str, dict, Where], None]] = {
    "input": _read_input, "flatten": _read_flatten, "average": _read_average,
    **{name: _synaptic(kind) for name, kind in s.LAYER_KINDS.items()},
}


# ------------------------------------------------------------------------------------- file


def _layers(tree: dict, where: Where) -> list[tuple[str, dict]]:
    layer = tree.get("layer")
    if not isinstance(layer, dict):
        raise where.error("layer", "missing group 'layer'" if layer is None else
                          "expected a group")
    if not layer:
        raise where.error("layer", "the netlist has no layers")
    want = [str(i) for i in range(len(layer))]
    if sorted(layer, key=lambda n: (len(n), n)) != want:
        got = ", ".join(sorted(layer, key=lambda n: (len(n), n)))
        raise where.error("layer", f"layers must be numbered 0..{len(layer) - 1} without gaps "
                          f"(netx reads them in that order), got {got}")
    for key in want:
        if not isinstance(layer[key], dict):
            raise where.at(f"layer/{key}").error(None, "expected a group, got a dataset")
    return [(key, layer[key]) for key in want]


def _check_version(tree: dict, where: Where) -> None:
    """Refuse files newer than :data:`schema.FORMAT_VERSION`; every older one reads (lava-dl's
    files have no version; version-1 files written before the bump may hold CSR layers too)."""
    v = tree.get("format_version")
    if v is None:
        return
    if isinstance(v, dict):
        raise where.error("format_version", "expected a dataset")
    version = int(s.as_int(v, "format_version", where, ((),), 0, 1 << 31))
    if version > s.FORMAT_VERSION:
        raise where.error("format_version", f"{version} is newer than this slayerc reads "
                          f"(versions up to {s.FORMAT_VERSION}); upgrade slayerc")


def tree_to_graph(tree: dict, path: str, input_shape: tuple[int, ...] | None) -> Graph:
    """The IR graph of a netlist already loaded as a dict tree (see ``h5io.load_tree``)."""
    where = Where(path)
    _check_version(tree, where)
    r = _Reader(path, input_shape)
    for k, grp in _layers(tree, where):
        w = where.at(f"layer/{k}")
        ltype = s.as_str(s.dataset(grp, "type", w), "type", w)
        reader = READERS.get(ltype)
        if reader is None:
            raise w.error("type", f"unknown layer type {ltype!r}; known: {', '.join(READERS)}")
        reader(r, k, grp, w)
    assert r.prev is not None
    r.add(ops.Output, "out", [r.prev], None)
    return _finish(r)


def _finish(r: _Reader) -> Graph:
    facts = {"quant-legal"} if r.quant_ok else set()
    facts |= {"delays-legal"} if r.delays_ok else set()
    g = r.b.build().replace(facts=facts)
    try:
        g = verify(infer_shapes(g))
    except VerifyError as e:
        raise BackendError(f"{r.path}: the netlist is inconsistent: {e}") from e
    for name, shape, flat, w in r.checks:
        got = g[name].shape
        assert got is not None
        if (int(np.prod(shape)) != int(np.prod(got))) if flat else (shape != got):
            raise w.error("shape", f"is {list(shape)} but the layer computes {list(got)}")
    return g
