"""Parser of the ``.sir`` text form (see :mod:`slayerc.ir.printer`).

Errors are :class:`~slayerc.errors.ParseError` with ``file:line:col``.  ``#`` starts a comment.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Mapping
from typing import Any

import numpy as np

from slayerc.errors import ParseError
from slayerc.ir import ops as _ops  # noqa: F401  (fills the op registry)
from slayerc.ir.core import OPS, Graph, Loc, Op, ParamRef
from slayerc.ir.printer import DTYPE_NAMES

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


def _number(tok: Tok) -> int | float:
    t = tok.text
    if re.fullmatch(r"[-+]?\d+", t):
        return int(t)
    return float(t)


def _value(ln: _Line) -> Any:
    tok = ln.next(what="a value")
    if tok.kind == "number":
        return _number(tok)
    if tok.kind == "string":
        return json.loads(tok.text)
    if tok.kind == "param":
        return ParamRef(tok.text[1:])
    if tok.kind == "ident" and tok.text in ("true", "false", "none"):
        return {"true": True, "false": False, "none": None}[tok.text]
    if tok.kind == "punct" and tok.text == "[":
        items: list[Any] = []
        if ln.accept("]"):
            return ()
        while True:
            items.append(_value(ln))
            if ln.accept("]"):
                return tuple(items)
            ln.next("punct", ",", what="',' or ']'")
    raise ln.error(f"expected a value, got '{tok.text}'", tok)


def _dict(ln: _Line) -> dict[str, tuple[Any, Tok]]:
    out: dict[str, tuple[Any, Tok]] = {}
    if not ln.accept("{"):
        return out
    if ln.accept("}"):
        return out
    while True:
        key = ln.next("ident", what="an attribute name")
        ln.next("punct", "=")
        if key.text in out:
            raise ln.error(f"attribute '{key.text}' given twice", key)
        out[key.text] = (_value(ln), key)
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
            dims.append(int(d.text))
            if ln.accept("]"):
                break
            ln.next("punct", ",", what="',' or ']'")
    return tuple(dims), tok.text


# ------------------------------------------------------------------------------------ statements


def _header(ln: _Line) -> tuple[str, frozenset[str], str | None]:
    tok = ln.peek()
    if tok is None or tok.text != "slayerc.graph":
        raise ln.error("a .sir file starts with 'slayerc.graph @NAME'", tok)
    ln.next()
    name = ln.next("param", what="the graph name (@main)").text[1:]
    attrs = _dict(ln)
    ln.done()
    facts: Any = attrs.pop("facts", ((), None))[0]
    side: Any = attrs.pop("params", (None, None))[0]
    for key, (_, ktok) in attrs.items():
        raise ln.error(f"unknown graph attribute '{key}' (known: facts, params)", ktok)
    if not isinstance(facts, tuple) or not all(isinstance(f, str) for f in facts):
        raise ln.error("facts must be a list of strings")
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
    size = int(np.prod(shape)) if shape else 1
    if start is not None and start.text == "splat":
        ln.next()
        ln.next("punct", "(")
        value = _value(ln)
        ln.next("punct", ")")
        ln.done()
        if isinstance(value, tuple) or value is None:
            raise ln.error("splat(...) takes one number", start)
        return name, np.full(shape, value, dtype=NP_DTYPES[dt])
    values = _value(ln)
    ln.done()
    if not isinstance(values, tuple):
        raise ln.error("an inline parameter is a flat list [v, v, ...] or splat(v)", start)
    if len(values) != size:
        raise ln.error(f"@{name} has type {dt}{list(shape)} ({size} values) but the literal "
                       f"holds {len(values)}", start)
    return name, np.array(values, dtype=NP_DTYPES[dt]).reshape(shape)


def _loc(ln: _Line) -> Loc:
    ln.next("ident", "loc")
    ln.next("punct", "(")
    tok = ln.next(what="a module string or _")
    if tok.kind == "string":
        module = json.loads(tok.text)
    elif tok.text == "_":
        module = None
    else:
        raise ln.error("loc(...) starts with a module string or _", tok)
    file = line = None
    nxt = ln.peek()
    if nxt is not None and nxt.kind == "string":
        file = json.loads(ln.next().text)
        if ln.accept(":"):
            num = ln.next("number", what="a line number")
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
    attrs = _dict(ln)
    fields = {f.name for f in dataclasses.fields(cls)} - {"name", "inputs", "shape", "dtype", "loc"}
    for key, (_, ktok) in attrs.items():
        if key not in fields:
            known = ", ".join(sorted(fields)) or "none"
            raise ln.error(f"{op_tok.text} has no attribute '{key}' (attributes: {known})", ktok)
    shape = dtype = None
    if ln.accept(":"):
        if ln.peek() is not None and ln.toks[ln.i + 1:ln.i + 2] and ln.toks[ln.i + 1].text == "[":
            shape, dtype = _type(ln)
            dtype = None if dtype == "_" else dtype
        else:
            dtype = ln.next("ident", what="a type").text
    loc = _loc(ln) if ln.peek() is not None else None
    ln.done()
    return cls(name=name, inputs=tuple(inputs), shape=shape, dtype=dtype, loc=loc,
               **{k: v for k, (v, _) in attrs.items()})


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
    for raw in text.splitlines():
        if raw.strip() and not raw.lstrip().startswith("#"):
            m = re.search(r'params\s*=\s*("(?:[^"\\]|\\.)*")', raw)
            return json.loads(m.group(1)) if m else None
    return None
