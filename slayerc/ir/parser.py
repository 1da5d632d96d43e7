"""Parser of the ``.sir`` text form (see :mod:`slayerc.ir.printer`).

Errors are :class:`~slayerc.errors.ParseError` with ``file:line:col``.  ``#`` starts a comment.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
import re
import types
import typing
from collections.abc import Mapping
from typing import Any

import numpy as np

from slayerc.errors import ParseError
from slayerc.ir import ops as _ops  # noqa: F401  (fills the op registry)
from slayerc.ir.core import BASE_FIELDS, OPS, Graph, Loc, Op, ParamRef
from slayerc.ir.fileio import memory_limit
from slayerc.ir.printer import DTYPE_NAMES, format_value

NP_DTYPES = {v: k for k, v in DTYPE_NAMES.items()}

TOKEN_RE = re.compile(r"""
    (?P<ws>\s+)
  | (?P<comment>\#.*)
  | (?P<string>"(?:[^"\\]|\\.)*")
  | (?P<node>%[A-Za-z_][A-Za-z0-9_]*)
  | (?P<param>@[A-Za-z0-9_][A-Za-z0-9_.]*)
  | (?P<number>[-+]?(?:inf\b|nan\b|\d+\.\d*(?:[eE][-+]?\d+)?|\d+[eE][-+]?\d+
                      |\.\d+(?:[eE][-+]?\d+)?|\d+))
  | (?P<ident>[A-Za-z_][A-Za-z0-9_.]*)
  | (?P<punct>[=(){}\[\],:])
""", re.VERBOSE)


@dataclasses.dataclass
class Tok:
    """One token with its 1-based column."""

    kind: str
    text: str
    col: int


class _Line:
    """Cursor over the tokens of one line."""

    def __init__(self, text: str, lineno: int, filename: str):
        self.lineno, self.filename = lineno, filename
        self.toks = _tokenize(text, lineno, filename)
        self.i = 0

    def error(self, msg: str, tok: Tok | None = None) -> ParseError:
        tok = tok or self.peek()
        col = tok.col if tok else (self.toks[-1].col + len(self.toks[-1].text) if self.toks else 1)
        return ParseError(msg, self.filename, self.lineno, col)

    def peek(self) -> Tok | None:
        return self.toks[self.i] if self.i < len(self.toks) else None

    def next(self, kind: str | None = None, text: str | None = None, what: str = "") -> Tok:
        tok = self.peek()
        if tok is None or (kind and tok.kind != kind) or (text and tok.text != text):
            want = what or (repr(text) if text else kind)
            got = f"'{tok.text}'" if tok else "end of line"
            raise self.error(f"expected {want}, got {got}", tok)
        self.i += 1
        return tok

    def accept(self, text: str) -> bool:
        tok = self.peek()
        if tok is not None and tok.kind == "punct" and tok.text == text:
            self.i += 1
            return True
        return False

    def done(self) -> None:
        tok = self.peek()
        if tok is not None:
            raise self.error(f"unexpected '{tok.text}' at end of statement", tok)


def _tokenize(text: str, lineno: int, filename: str) -> list[Tok]:
    toks, pos = [], 0
    while pos < len(text):
        m = TOKEN_RE.match(text, pos)
        if m is None:
            raise ParseError(f"unexpected character {text[pos]!r}", filename, lineno, pos + 1)
        if m.lastgroup not in ("ws", "comment"):
            toks.append(Tok(m.lastgroup or "", m.group(), pos + 1))
        pos = m.end()
    return toks


# ------------------------------------------------------------------------------------- values

#: Deepest ``[...]`` nesting the parser follows (attribute values are at most two deep).
MAX_NESTING = 32
INT64 = (-(1 << 63), (1 << 63) - 1)
#: Integer literals: int64 and uint64 parameters print every value of their range.
INTEGERS = (-(1 << 63), (1 << 64) - 1)


def _string(tok: Tok, lineno: int, filename: str) -> str:
    """A JSON string literal; bad escapes, control characters and lone surrogates are errors."""
    try:
        value = json.loads(tok.text)
        value.encode("utf-8")
    except json.JSONDecodeError as e:
        why = e.msg.removesuffix(" at")
        raise ParseError(f"invalid string literal: {why} (strings use JSON escapes, e.g. \\n, "
                         "\\\", \\u00e9)", filename, lineno, tok.col + e.pos) from None
    except UnicodeEncodeError:
        raise ParseError("invalid string literal: a \\u escape names a lone surrogate",
                         filename, lineno, tok.col) from None
    assert isinstance(value, str)
    return value


def _number(ln: _Line, tok: Tok) -> int | float:
    t = tok.text
    if re.fullmatch(r"[-+]?\d+", t):
        v = int(t)
        if not INTEGERS[0] <= v <= INTEGERS[1]:
            raise ln.error(f"integer {t} is out of range (at most 64 bits)", tok)
        return v
    v = float(t)
    if math.isinf(v) and "inf" not in t:
        raise ln.error(f"number {t} is out of range for a 64-bit float", tok)
    return v


def _value(ln: _Line, depth: int = 0) -> Any:
    tok = ln.next(what="a value")
    if tok.kind == "number":
        return _number(ln, tok)
    if tok.kind == "string":
        return _string(tok, ln.lineno, ln.filename)
    if tok.kind == "param":
        return ParamRef(tok.text[1:])
    if tok.kind == "ident" and tok.text in ("true", "false", "none"):
        return {"true": True, "false": False, "none": None}[tok.text]
    if tok.kind == "punct" and tok.text == "[":
        if depth >= MAX_NESTING:
            raise ln.error(f"lists nested deeper than {MAX_NESTING}", tok)
        items: list[Any] = []
        if ln.accept("]"):
            return ()
        while True:
            items.append(_value(ln, depth + 1))
            if ln.accept("]"):
                return tuple(items)
            ln.next("punct", ",", what="',' or ']'")
    raise ln.error(f"expected a value, got '{tok.text}'", tok)


def _dict(ln: _Line) -> dict[str, tuple[Any, Tok, Tok]]:
    """``{key = value, ...}`` as ``key -> (value, key token, value token)``."""
    out: dict[str, tuple[Any, Tok, Tok]] = {}
    if not ln.accept("{"):
        return out
    if ln.accept("}"):
        return out
    while True:
        key = ln.next("ident", what="an attribute name")
        ln.next("punct", "=")
        if key.text in out:
            raise ln.error(f"attribute '{key.text}' given twice", key)
        vtok = ln.peek() or key
        out[key.text] = (_value(ln), key, vtok)
        if ln.accept("}"):
            return out
        ln.next("punct", ",", what="',' or '}'")


def _type(ln: _Line) -> tuple[tuple[int, ...], str]:
    tok = ln.next("ident", what="a type such as f32[4]")
    dims: list[int] = []
    ln.next("punct", "[", what="'[' after the element type")
    if not ln.accept("]"):
        while True:
            d = ln.next("number", what="a dimension")
            if not re.fullmatch(r"\d+", d.text):
                raise ln.error(f"dimension must be a non-negative integer, got '{d.text}'", d)
            if int(d.text) > INT64[1]:
                raise ln.error(f"dimension {d.text} is out of range (at most 2^63 - 1)", d)
            dims.append(int(d.text))
            if ln.accept("]"):
                break
            ln.next("punct", ",", what="',' or ']'")
    return tuple(dims), tok.text


# ----------------------------------------------------------------------- attribute types

_NO = object()


@functools.cache
def _hints(cls: type[Op]) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _conform(hint: Any, v: Any) -> Any:
    """``v`` as a value of the annotated type ``hint``, or ``_NO`` when it is not one."""
    if typing.get_origin(hint) in (types.UnionType, typing.Union):
        got = (_conform(alt, v) for alt in typing.get_args(hint))
        return next((x for x in got if x is not _NO), _NO)
    if typing.get_origin(hint) is tuple:
        return _conform_tuple(typing.get_args(hint), v)
    if hint is float:
        return float(v) if type(v) in (int, float) else _NO
    if hint is int:
        return v if type(v) is int and INT64[0] <= v <= INT64[1] else _NO
    if hint in (bool, str, ParamRef, type(None)):
        return v if type(v) is hint else _NO
    return v  # an annotation this checker does not know: the op's own check decides


def _conform_tuple(args: tuple[Any, ...], v: Any) -> Any:
    if type(v) is int and args == (int, int):
        return v  # a square stride/kernel written as one int
    if not isinstance(v, tuple):
        return _NO
    if ... in args:
        args = (args[0],) * len(v)
    if len(v) != len(args):
        return _NO
    items = tuple(_conform(a, x) for a, x in zip(args, v))
    return _NO if _NO in items else items


def _describe_hint(hint: Any) -> str:
    text = str(hint).replace("slayerc.ir.core.", "").replace("<class '", "").replace("'>", "")
    return text.replace("ParamRef", "@param").replace("NoneType", "none")


def _attrs(ln: _Line, cls: type[Op], op_tok: Tok,
           attrs: dict[str, tuple[Any, Tok, Tok]]) -> dict[str, Any]:
    """The attribute values, each checked against the op's field type."""
    fields = {f.name for f in dataclasses.fields(cls)} - BASE_FIELDS
    out = {}
    for key, (value, ktok, vtok) in attrs.items():
        if key not in fields:
            known = ", ".join(sorted(fields)) or "none"
            raise ln.error(f"{op_tok.text} has no attribute '{key}' (attributes: {known})", ktok)
        hint = _hints(cls)[key]
        got = _conform(hint, value)
        if got is _NO:
            raise ln.error(f"attribute '{key}' of {op_tok.text} must be "
                           f"{_describe_hint(hint)}, got {format_value(value)}", vtok)
        out[key] = got
    return out


# ------------------------------------------------------------------------------------ statements


def _header(ln: _Line) -> tuple[str, frozenset[str], str | None]:
    tok = ln.peek()
    if tok is None or tok.text != "slayerc.graph":
        raise ln.error("a .sir file starts with 'slayerc.graph @NAME'", tok)
    ln.next()
    name = ln.next("param", what="the graph name (@main)").text[1:]
    attrs = _dict(ln)
    ln.done()
    facts, _, ftok = attrs.pop("facts", ((), None, None))
    side, _, stok = attrs.pop("params", (None, None, None))
    for key, (_, ktok, _) in attrs.items():
        raise ln.error(f"unknown graph attribute '{key}' (known: facts, params)", ktok)
    if not isinstance(facts, tuple) or not all(isinstance(f, str) for f in facts):
        raise ln.error("facts must be a list of strings", ftok)
    if side is not None and not isinstance(side, str):
        raise ln.error("params must be the side file's name as a string", stok)
    return name, frozenset(facts), side


def _param(ln: _Line, external: Mapping[str, np.ndarray] | None) -> tuple[str, np.ndarray]:
    ln.next("ident", "param")
    name_tok = ln.next("param", what="a parameter name (@name)")
    name = name_tok.text[1:]
    ln.next("punct", ":")
    type_tok = ln.peek()
    shape, dt = _type(ln)
    if dt not in NP_DTYPES:
        raise ln.error(f"unknown element type '{dt}'", type_tok)
    ln.next("punct", "=")
    if ln.peek() is not None and ln.peek().text == "external":  # type: ignore[union-attr]
        tok = ln.next()
        ln.done()
        if external is None or name not in external:
            raise ln.error(f"parameter @{name} is external but no side file provides it", tok)
        arr = np.asarray(external[name])
        if arr.shape != shape or arr.dtype != np.dtype(NP_DTYPES[dt]):
            raise ln.error(f"side file holds @{name} as {arr.dtype}{list(arr.shape)}, "
                           f"the text says {dt}{list(shape)}", tok)
        return name, arr
    start = ln.peek()
    size = math.prod(shape)
    dtype = np.dtype(NP_DTYPES[dt])
    if start is not None and start.text == "splat":
        ln.next()
        ln.next("punct", "(")
        vtok = ln.peek()
        value = _value(ln)
        ln.next("punct", ")")
        ln.done()
        if size * dtype.itemsize > memory_limit():
            raise ln.error(f"@{name} : {dt}{list(shape)} declares {size * dtype.itemsize:,} "
                           f"bytes, more than the {memory_limit():,} bytes this reader allows",
                           type_tok)
        element = _element(ln, value, dtype, vtok or start)
        return name, np.full(shape, element, dtype=dtype)
    values = _value(ln)
    ln.done()
    if not isinstance(values, tuple):
        raise ln.error("an inline parameter is a flat list [v, v, ...] or splat(v)", start)
    if len(values) != size:
        raise ln.error(f"@{name} has type {dt}{list(shape)} ({size} values) but the literal "
                       f"holds {len(values)}", start)
    items = [_element(ln, v, dtype, start) for v in values]
    return name, np.array(items, dtype=dtype).reshape(shape)


def _element(ln: _Line, v: Any, dtype: np.dtype, tok: Tok | None) -> Any:
    """One entry of a parameter literal, checked against the element type."""
    what = f"an entry of a {DTYPE_NAMES[dtype.name]} parameter"
    if dtype.kind == "b":
        if type(v) is not bool:
            raise ln.error(f"{what} must be true or false, got {format_value(v)}", tok)
        return v
    if type(v) not in (int, float):
        raise ln.error(f"{what} must be a number, got {format_value(v)}", tok)
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        if type(v) is not int or not info.min <= v <= info.max:
            raise ln.error(f"{what} must be an integer in [{info.min}, {info.max}], got "
                           f"{format_value(v)}", tok)
        return v
    with np.errstate(over="ignore"):
        fits = not math.isfinite(v) or bool(np.isfinite(dtype.type(v)))  # f32(1e300) is inf
    if not fits:
        raise ln.error(f"{what}: {format_value(v)} is out of range for "
                       f"{DTYPE_NAMES[dtype.name]}", tok)
    return v


def _loc(ln: _Line) -> Loc:
    ln.next("ident", "loc")
    ln.next("punct", "(")
    tok = ln.next(what="a module string or _")
    if tok.kind == "string":
        module = _string(tok, ln.lineno, ln.filename)
    elif tok.text == "_":
        module = None
    else:
        raise ln.error("loc(...) starts with a module string or _", tok)
    file = line = None
    nxt = ln.peek()
    if nxt is not None and nxt.kind == "string":
        file = _string(ln.next(), ln.lineno, ln.filename)
        if ln.accept(":"):
            num = ln.next("number", what="a line number")
            if not re.fullmatch(r"\d+", num.text) or int(num.text) > INT64[1]:
                raise ln.error(f"a line number is a non-negative integer, got '{num.text}'", num)
            line = int(num.text)
    ln.next("punct", ")")
    return Loc(module, file, line)


def _node(ln: _Line) -> Op:
    name = ln.next("node").text[1:]
    ln.next("punct", "=")
    op_tok = ln.next("ident", what="an op name")
    cls = OPS.get(op_tok.text)
    if cls is None:
        raise ln.error(f"unknown op '{op_tok.text}'", op_tok)
    ln.next("punct", "(")
    inputs: list[str] = []
    if not ln.accept(")"):
        while True:
            inputs.append(ln.next("node", what="an input (%name)").text[1:])
            if ln.accept(")"):
                break
            ln.next("punct", ",", what="',' or ')'")
    attrs = _attrs(ln, cls, op_tok, _dict(ln))
    shape = dtype = None
    if ln.accept(":"):
        if ln.peek() is not None and ln.toks[ln.i + 1:ln.i + 2] and ln.toks[ln.i + 1].text == "[":
            shape, dtype = _type(ln)
            dtype = None if dtype == "_" else dtype
        else:
            dtype = ln.next("ident", what="a type").text
    loc = _loc(ln) if ln.peek() is not None else None
    ln.done()
    try:
        return cls(name=name, inputs=tuple(inputs), shape=shape, dtype=dtype, loc=loc, **attrs)
    except (TypeError, ValueError) as e:
        raise ln.error(f"cannot build {op_tok.text}: {e}", op_tok) from None


def parse(text: str, params: Mapping[str, np.ndarray] | None = None,
          filename: str = "<string>") -> Graph:
    """Parse the text form; ``params`` supplies the arrays of ``external`` parameters."""
    name, facts, header_seen = "main", frozenset[str](), False
    nodes: dict[str, Op] = {}
    store: dict[str, np.ndarray] = {}
    for lineno, raw in enumerate(text.splitlines(), 1):
        ln = _Line(raw, lineno, filename)
        first = ln.peek()
        if first is None:
            continue
        if not header_seen:
            name, facts, _ = _header(ln)
            header_seen = True
        elif first.kind == "ident" and first.text == "param":
            pname, arr = _param(ln, params)
            if pname in store:
                raise ln.error(f"parameter @{pname} defined twice", first)
            store[pname] = arr
        elif first.kind == "node":
            node = _node(ln)
            if node.name in nodes:
                raise ln.error(f"node %{node.name} defined twice", first)
            nodes[node.name] = node
        else:
            raise ln.error(f"expected 'param' or a node definition (%name = op(...)), "
                           f"got '{first.text}'", first)
    if not header_seen:
        raise ParseError("empty input: a .sir file starts with 'slayerc.graph @NAME'",
                         filename, 1, 1)
    return Graph(nodes=nodes, params=store, facts=facts, name=name)


def side_file(text: str) -> str | None:
    """The ``params = "..."`` side-file name in a text's header line, if any."""
    at = side_file_at(text)
    return at[0] if at is not None else None


def side_file_at(text: str, filename: str = "<string>") -> tuple[str, int, int] | None:
    """``(name, line, col)`` of the ``params = "..."`` side file in the header line, if any."""
    for lineno, raw in enumerate(text.splitlines(), 1):
        if raw.strip() and not raw.lstrip().startswith("#"):
            m = re.search(r'params\s*=\s*("(?:[^"\\]|\\.)*")', raw)
            if m is None:
                return None
            tok = Tok("string", m.group(1), m.start(1) + 1)
            return _string(tok, lineno, filename), lineno, tok.col
    return None
