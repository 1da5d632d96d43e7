"""The ``.sir`` text form: one line per parameter and per node, deterministic.

::

    slayerc.graph @main {facts = ["shapes"]}
    param @fc.weight : f32[3, 4] = [0.5, -0.25, ...]
    param @conv.weight : f32[8, 2, 3, 3] = external
    %x = io.input() : f32[4]
    %fc = synapse.dense(%x) {weight = @fc.weight} : f32[3] loc("fc" "net.py":42)

Attributes equal to their default are left out; the rest print sorted by name.  Numbers print
exactly (floats as Python's shortest round-trip ``repr``), so ``parse(print(g)) == g``.
Arrays whose entries are all equal print as ``splat(v)``.
Other parameters with more than ``inline_limit`` elements print as ``external``: their arrays travel
in a side file (``save`` writes them to ``NAME.npz`` next to ``NAME.sir``).
"""

from __future__ import annotations

import dataclasses
import json
import math
from typing import Any

import numpy as np

from slayerc.ir.core import Graph, Loc, Op, ParamRef

DTYPE_NAMES = {
    "float16": "f16", "float32": "f32", "float64": "f64", "int8": "i8", "int16": "i16",
    "int32": "i32", "int64": "i64", "uint8": "u8", "uint16": "u16", "uint32": "u32",
    "uint64": "u64", "bool": "bool", "complex64": "c64", "complex128": "c128",
}
#: Parameters up to this many elements print inline by default.
INLINE_LIMIT = 16


def format_value(v: Any) -> str:
    """Print one attribute value (int, float, bool, str, None, @param, Loc-free tuple)."""
    if v is None:
        return "none"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return format_float(v)
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, ParamRef):
        return f"@{v.name}"
    if isinstance(v, (tuple, list)):
        return "[" + ", ".join(format_value(x) for x in v) + "]"
    raise TypeError(f"cannot print attribute value {v!r} of type {type(v).__name__}")


def format_float(x: float) -> str:
    """Shortest exact text of a float, always distinguishable from an int."""
    if math.isnan(x):
        return "nan"
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    return repr(float(x))


def format_type(shape: tuple[int, ...], dtype: str) -> str:
    """``f32[3, 4]``."""
    return f"{dtype}[{', '.join(str(d) for d in shape)}]"


def format_loc(loc: Loc) -> str:
    """``loc("module" "file":line)``; ``_`` stands for a missing module."""
    parts = [json.dumps(loc.module) if loc.module is not None else "_"]
    if loc.file is not None:
        parts.append(json.dumps(loc.file) + (f":{loc.line}" if loc.line is not None else ""))
    return f"loc({' '.join(parts)})"


def _is_splat(a: np.ndarray) -> bool:
    flat = a.reshape(-1)
    return a.size > 1 and a.dtype.kind in "biuf" and bool(np.all(flat == flat[0])) and (
        a.dtype.kind != "f" or bool(np.all(np.signbit(flat) == np.signbit(flat[0]))))


def _array_literal(a: np.ndarray) -> str:
    flat = a.reshape(-1)
    if _is_splat(a):
        return f"splat({_array_literal(flat[:1])[1:-1]})"
    if a.dtype.kind == "b":
        return "[" + ", ".join("true" if x else "false" for x in flat) + "]"
    if a.dtype.kind in "iu":
        return "[" + ", ".join(str(int(x)) for x in flat) + "]"
    if a.dtype.kind == "f":
        return "[" + ", ".join(format_float(float(x)) for x in flat) + "]"
    raise TypeError(f"cannot print an array of dtype {a.dtype} inline")


def dtype_name(dtype: np.dtype) -> str:
    """Short dtype name used in the text form (``f32``, ``i64`` ...)."""
    name = DTYPE_NAMES.get(np.dtype(dtype).name)
    if name is None:
        raise TypeError(f"parameter dtype {dtype} is not supported by the text form")
    return name


def format_node(node: Op) -> str:
    """One line for a node."""
    args = ", ".join(f"%{i}" for i in node.inputs)
    text = f"%{node.name} = {node.OP}({args})"
    defaults = {f.name: f.default for f in dataclasses.fields(node)}
    attrs = {k: v for k, v in node.attrs().items() if not _same(v, defaults[k])}
    if attrs:
        text += " {" + ", ".join(f"{k} = {format_value(attrs[k])}" for k in sorted(attrs)) + "}"
    if node.shape is not None:
        text += " : " + format_type(node.shape, node.dtype or "_")
    elif node.dtype is not None:
        text += f" : {node.dtype}"
    if node.loc is not None:
        text += " " + format_loc(node.loc)
    return text


def _same(a: Any, b: Any) -> bool:
    return type(a) is type(b) and a == b


def print_graph(g: Graph, inline_limit: float = math.inf, params_file: str | None = None) -> str:
    """The text form of ``g``; parameters larger than ``inline_limit`` print as ``external``."""
    header = {}
    if g.facts:
        header["facts"] = format_value(sorted(g.facts))
    if params_file is not None:
        header["params"] = format_value(params_file)
    head = f"slayerc.graph @{g.name}"
    if header:
        head += " {" + ", ".join(f"{k} = {v}" for k, v in header.items()) + "}"
    lines = [head]
    for name in sorted(g.params):
        a = g.params[name]
        line = f"param @{name} : {format_type(a.shape, dtype_name(a.dtype))}"
        external = (a.size > inline_limit or a.dtype.kind == "c") and not _is_splat(a)
        lines.append(line + (" = external" if external else f" = {_array_literal(a)}"))
    lines.extend(format_node(n) for n in g)
    return "\n".join(lines) + "\n"


def external_params(g: Graph, inline_limit: float = INLINE_LIMIT) -> dict[str, np.ndarray]:
    """The parameters ``print_graph(g, inline_limit)`` leaves to the side file."""
    return {k: a for k, a in g.params.items()
            if (a.size > inline_limit or a.dtype.kind == "c") and not _is_splat(a)}

