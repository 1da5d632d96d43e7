"""ONNX out: the IR as an ONNX model that Netron and other ONNX tools show, read back exactly.

``slayerc.save(g, "net.onnx")`` is :func:`write`.  One ONNX node per IR node, named after it,
whose output tensor has the IR node's name:

* standard operators where they mean the same per time step: ``synapse.dense`` (real, no mask)
  → ``Gemm`` (``transB = 1``), ``synapse.conv`` (real, no mask) → ``Conv``, ``tensor.flatten``
  → ``Flatten``, ``tensor.add`` → ``Sum``, ``tensor.concat`` → ``Concat`` (axis + 1: ONNX
  tensors have the batch first), ``io.output`` → ``Identity`` feeding the graph output;
* every other op (neurons, axons, dendrites, pools, norms, ...) → a node of the ``slayerc``
  domain whose ``op_type`` is the IR op (``neuron.sigma_delta``), its attributes as ONNX
  attributes and its parameters as extra inputs (initializers);
* ``io.input`` → a graph input ``[N, *shape]``; parameters → initializers (float32 etc. kept).

Time is implicit: an ONNX tensor is one step ``[N, *shape]``; stateful ops (neurons, delays)
carry state between steps, which only the ``slayerc`` domain knows.  A graph with a cycle
(through an ``axon.delay``) is written in the IR's order, which ONNX checkers reject.

For an exact round trip every node also carries its whole IR record (op, inputs, attributes,
shape, dtype, loc) as JSON in its ``metadata_props`` (key ``slayerc``), and the model's
``metadata_props`` hold the graph's name, facts, node order and parameter names.  A ``slayerc``
domain node without that record is read from its ONNX attributes.
:func:`from_model` reads such a model back (the ONNX importer calls it for models that import
the ``slayerc`` domain): ``from_model(to_model(g)) == g``.
"""

from __future__ import annotations

import json
import math
import os
from typing import Any

import numpy as np

from slayerc.errors import BackendError
from slayerc.ir import ops
from slayerc.ir.core import OPS, Graph, Loc, Op, ParamRef
from slayerc.ir.fileio import atomic_write

__all__ = ["DOMAIN", "from_model", "read", "to_model", "write"]

DOMAIN = "slayerc"
OPSET = 17
KEY = "slayerc"


# ------------------------------------------------------------------------------ values


def _enc(v: Any) -> Any:
    """An attribute value as JSON data (tuples and parameter references tagged)."""
    if isinstance(v, ParamRef):
        return {"@": v.name}
    if isinstance(v, tuple):
        return {"t": [_enc(e) for e in v]}
    if isinstance(v, (bool, int, float, str)) or v is None:
        return v
    raise BackendError(f"cannot write attribute value {v!r} ({type(v).__name__}) to ONNX")


def _dec(v: Any) -> Any:
    if isinstance(v, dict) and "@" in v:
        return ParamRef(v["@"])
    if isinstance(v, dict) and "t" in v:
        return tuple(_dec(e) for e in v["t"])
    return v


def _loc(loc: Loc | None) -> list | None:
    return None if loc is None else [loc.module, loc.file, loc.line]


def _record(n: Op) -> str:
    return json.dumps({
        "op": n.OP, "inputs": list(n.inputs),
        "attrs": {k: _enc(v) for k, v in n.attrs().items()},
        "shape": None if n.shape is None else list(n.shape), "dtype": n.dtype,
        "loc": _loc(n.loc)}, sort_keys=True)


def _from_record(name: str, text: str) -> Op:
    r = json.loads(text)
    cls = OPS.get(r["op"])
    if cls is None:
        raise BackendError(f"ONNX node '{name}': unknown slayerc op {r['op']!r}")
    loc = None if r.get("loc") is None else Loc(*r["loc"])
    shape = None if r.get("shape") is None else tuple(r["shape"])
    attrs = {k: _dec(v) for k, v in r.get("attrs", {}).items()}
    try:
        return cls(name=name, inputs=tuple(r["inputs"]), shape=shape, dtype=r.get("dtype"),
                   loc=loc, **attrs)
    except TypeError as e:
        raise BackendError(f"ONNX node '{name}' ({r['op']}): {e}") from e


# ------------------------------------------------------------------------------ writing


def _onnx_attrs(n: Op) -> dict[str, Any]:
    """Display attributes of a ``slayerc`` domain node (exact values are in the record)."""
    out: dict[str, Any] = {}
    for k, v in n.attrs().items():
        if isinstance(v, ParamRef):
            out[k] = f"@{v.name}"
        elif isinstance(v, bool) or isinstance(v, int):
            out[k] = int(v)
        elif isinstance(v, float):
            out[k] = v if math.isfinite(v) else repr(v)
        elif isinstance(v, str):
            out[k] = v
        elif isinstance(v, tuple) and v and all(isinstance(e, int) for e in v):
            out[k] = list(v)
    return out


def _pairs(v: Any) -> list[int]:
    return [int(v), int(v)] if isinstance(v, int) else [int(e) for e in v]


def _standard(n: Op, pname: dict[str, str]) -> tuple[str, list[str], dict[str, Any]] | None:
    """``(op_type, inputs, attributes)`` of a standard ONNX node for ``n``, or None."""
    real = getattr(n, "weight_imag", None) is None and getattr(n, "mask", None) is None
    if n.OP == "synapse.dense" and real and isinstance(n.weight, ParamRef):
        ins = [*n.inputs, pname[n.weight.name]]
        if n.bias is not None:
            ins.append(pname[n.bias.name])
        return "Gemm", ins, {"transB": 1}
    if n.OP == "synapse.conv" and real and isinstance(n.weight, ParamRef):
        ins = [*n.inputs, pname[n.weight.name]]
        if n.bias is not None:
            ins.append(pname[n.bias.name])
        pad = _pairs(n.padding)
        return "Conv", ins, {"strides": _pairs(n.stride), "dilations": _pairs(n.dilation),
                             "pads": pad + pad, "group": int(n.groups)}
    if n.OP == "tensor.flatten":
        return "Flatten", list(n.inputs), {"axis": 1}
    if n.OP == "tensor.add":
        return "Sum", list(n.inputs), {}
    if n.OP == "tensor.concat":
        return "Concat", list(n.inputs), {"axis": int(n.axis) + 1}
    if n.OP == "io.output":
        return "Identity", list(n.inputs), {}
    return None


def _value_info(n: Op) -> Any:
    from onnx import TensorProto, helper

    elem = TensorProto.COMPLEX64 if n.dtype == "c32" else TensorProto.FLOAT
    # an unknown shape (before shape inference) shows as [N, ?]; the record keeps None
    shape = ["N", "?"] if n.shape is None else ["N", *n.shape]
    return helper.make_tensor_value_info(n.name, elem, shape)


def to_model(g: Graph) -> Any:
    """The ONNX ``ModelProto`` of ``g`` (see the module docstring)."""
    import onnx
    from onnx import helper, numpy_helper

    names = set(g.nodes)
    pname = {p: (p if p not in names else f"param:{p}") for p in g.params}
    inits = []
    for p, arr in g.params.items():
        t = numpy_helper.from_array(np.ascontiguousarray(arr), pname[p])
        inits.append(t)
    nodes, inputs, outputs, infos = [], [], [], []
    for n in g:
        if n.OP == "io.input":
            inputs.append(_value_info(n))
            continue
        std = _standard(n, pname)
        if std is not None:
            op_type, ins, attrs = std
            node = helper.make_node(op_type, ins, [n.name], name=n.name, **attrs)
        else:
            refs = [pname[r.name] for _, r in n.param_refs()]
            node = helper.make_node(n.OP, [*n.inputs, *refs], [n.name], name=n.name,
                                    domain=DOMAIN, **_onnx_attrs(n))
        entry = node.metadata_props.add()
        entry.key, entry.value = KEY, _record(n)
        nodes.append(node)
        (outputs if n.OP == "io.output" else infos).append(_value_info(n))
    graph = helper.make_graph(nodes, g.name, inputs, outputs, inits, value_info=infos)
    model = helper.make_model(graph, producer_name="slayerc", opset_imports=[
        helper.make_opsetid("", OPSET), helper.make_opsetid(DOMAIN, 1)])
    model.ir_version = 8
    meta = {"name": g.name, "facts": sorted(g.facts), "order": list(g.nodes),
            "params": {v: k for k, v in pname.items()},
            "inputs": {n.name: _record(n) for n in g.inputs}}
    entry = model.metadata_props.add()
    entry.key, entry.value = KEY, json.dumps(meta, sort_keys=True)
    del onnx
    return model


def write(g: Graph, path: str | os.PathLike, **options: Any) -> None:
    """Write ``g`` as an ONNX file (atomically); ``options`` are accepted and ignored."""
    model = to_model(g)
    data = model.SerializeToString()
    atomic_write(path, lambda tmp: open(tmp, "wb").write(data))


# ------------------------------------------------------------------------------ reading


def _meta(props: Any) -> str | None:
    return next((p.value for p in props if p.key == KEY), None)


def _typed(node: Any, pnames: dict[str, str]) -> Op:
    """A ``slayerc`` domain node without a record, from its ONNX attributes."""
    from onnx import helper

    cls = OPS.get(node.op_type)
    if cls is None:
        raise BackendError(f"ONNX node '{node.name}': unknown slayerc op {node.op_type!r}")
    fields = {f: None for f in cls.__dataclass_fields__}
    attrs: dict[str, Any] = {}
    for a in node.attribute:
        if a.name not in fields:
            raise BackendError(f"ONNX node '{node.name}' ({node.op_type}): unknown attribute "
                               f"'{a.name}'")
        v = helper.get_attribute_value(a)
        v = v.decode() if isinstance(v, bytes) else v
        if isinstance(v, str) and v.startswith("@"):
            v = ParamRef(pnames.get(v[1:], v[1:]))
        elif isinstance(v, list):
            v = tuple(v)
        elif isinstance(v, str) and v in ("inf", "-inf", "nan"):
            v = float(v)
        elif isinstance(v, int) and isinstance(getattr(cls, a.name, None), bool):
            v = bool(v)
        attrs[a.name] = v
    n_data = len(node.input) - sum(isinstance(v, ParamRef) for v in attrs.values())
    return cls(name=node.output[0], inputs=tuple(node.input[:n_data]), **attrs)


def from_model(model: Any, path: str = "<onnx>") -> Graph:
    """The IR graph of a model written by :func:`to_model` (see the module docstring)."""
    from onnx import numpy_helper

    text = _meta(model.metadata_props)
    meta = json.loads(text) if text else {}
    pnames = meta.get("params", {})
    params = {pnames.get(t.name, t.name): numpy_helper.to_array(t).copy()
              for t in model.graph.initializer}
    nodes: dict[str, Op] = {}
    for name, rec in meta.get("inputs", {}).items():
        nodes[name] = _from_record(name, rec)
    for vi in model.graph.input:
        if vi.name not in nodes and vi.name not in pnames and vi.name not in params:
            dims = [d.dim_value for d in vi.type.tensor_type.shape.dim][1:]
            nodes[vi.name] = ops.Input(name=vi.name, shape=tuple(dims), dtype="f32")
    for node in model.graph.node:
        rec = _meta(node.metadata_props)
        name = node.output[0]
        if rec is not None:
            nodes[name] = _from_record(name, rec)
        elif node.domain == DOMAIN:
            nodes[name] = _typed(node, pnames)
        else:
            raise BackendError(f"{path}: ONNX node '{node.name}' ({node.op_type}) has no "
                               "slayerc record; a model that imports the slayerc domain must "
                               "be written by slayerc.save (or use slayerc nodes only)")
    order = [n for n in meta.get("order", []) if n in nodes]
    order += [n for n in nodes if n not in set(order)]
    return Graph(nodes={n: nodes[n] for n in order}, params=params,
                 facts=frozenset(meta.get("facts", ())), name=meta.get("name", model.graph.name))


def read(path: str | os.PathLike) -> Graph:
    """Read an ONNX file written by :func:`write`."""
    import onnx

    try:
        model = onnx.load(os.fspath(path))
    except Exception as e:
        raise BackendError(f"{os.fspath(path)}: not an ONNX model ({e})") from e
    return from_model(model, os.fspath(path))
