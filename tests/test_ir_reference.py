"""docs/ir-reference.md is generated from the op docstrings (tools/gen_ir_reference.py): the
committed page equals a fresh render, and every op has an equation and attribute docs."""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import pytest

from slayerc.ir.core import OPS, Op

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def gen():
    spec = importlib.util.spec_from_file_location("gen_ir_reference",
                                                  ROOT / "tools" / "gen_ir_reference.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_committed_page_is_the_generated_one(gen) -> None:
    page = (ROOT / "docs" / "ir-reference.md").read_text()
    assert page == gen.render(), "docs/ir-reference.md is stale: run " \
        "python tools/gen_ir_reference.py"
    for name in OPS:  # every op has its section and its row in the table of contents
        assert f"### `{name}`" in page and f"(#{name.replace('.', '')})" in page


def test_every_op_has_an_equation_and_attribute_docs(gen) -> None:
    assert gen.problems() == []


def test_page_shows_attributes_types_defaults_and_equations(gen) -> None:
    page = gen.render()
    cuba = page[page.index("### `neuron.cuba`"):page.index("### `neuron.dropout`")]
    assert "`u[t] = (1 − αu) u[t−1] + x[t]`" in cuba
    assert "| `current_decay` | float or @param | `0.0` | `αu = current_decay`" in cuba
    assert "| `threshold` | float or @param | `1.0` |" in cuba
    delay = page[page.index("### `axon.delay`"):page.index("### `axon.delta`")]
    assert "may close a cycle" in delay and "| `max_delay` | int \\| None | `None` |" in delay


@dataclass(frozen=True, slots=True, kw_only=True)
class _Undocumented(Op):
    """``test.bare``: some words, no formula."""

    OP: ClassVar[str] = "test.bare"
    gain: float = 1.0


@dataclass(frozen=True, slots=True, kw_only=True)
class _NoDoc(Op):
    OP: ClassVar[str] = "test.nodoc"


def test_missing_equation_or_attribute_doc_is_reported(gen, monkeypatch, tmp_path) -> None:
    monkeypatch.setitem(OPS, "test.bare", _Undocumented)
    monkeypatch.setitem(OPS, "test.nodoc", _NoDoc)
    found = gen.problems()
    assert any(p.startswith("test.bare (") and "no equation" in p for p in found)
    assert any(p.startswith("test.bare: attribute 'gain'") for p in found)
    assert any(p.startswith("test.nodoc (") for p in found)
    page = tmp_path / "ir-reference.md"
    page.write_text(gen.render())
    monkeypatch.setattr(gen, "PAGE", page)
    assert gen.main(["--check"]) == 1  # the page is current, but two ops lack docs
    monkeypatch.delitem(OPS, "test.bare")
    monkeypatch.delitem(OPS, "test.nodoc")
    assert gen.main(["--check"]) == 1  # docs fine, the page now differs
    page.write_text(gen.render())
    assert gen.main(["--check"]) == 0


@dataclass(frozen=True, slots=True, kw_only=True)
class _OwnInfer(Op):
    """``test.own``: ``y[t] = x[t][0]``."""

    OP: ClassVar[str] = "test.own"

    def infer(self, ins, g):
        return (1,), "f32"


@dataclass(frozen=True, slots=True, kw_only=True)
class _StaleRule(Op):
    """``test.stale``: ``y[t] = x[t]``."""

    OP: ClassVar[str] = "test.stale"
    SHAPE: ClassVar[str] = "the input's shape"


@dataclass(frozen=True, slots=True, kw_only=True)
class _NewInfer(_StaleRule):
    """``test.new``: ``y[t] = 2·x[t]``."""

    OP: ClassVar[str] = "test.new"

    def infer(self, ins, g):
        return (2 * ins[0][0][0],), "f32"


def test_an_op_that_computes_its_shape_must_state_the_rule(gen, monkeypatch) -> None:
    assert gen.shape_rule(_OwnInfer) is None
    assert gen.shape_rule(_NewInfer) is None  # the base's rule predates this infer
    assert gen.shape_rule(_StaleRule) == "the input's shape"
    assert gen.shape_rule(_NoDoc) == gen.SAME_SHAPE  # keeps Op.infer: output = input
    monkeypatch.setitem(OPS, "test.own", _OwnInfer)
    assert any(p.startswith("test.own (") and "output-shape rule" in p for p in gen.problems())
    monkeypatch.delitem(OPS, "test.own")
    page = gen.render()
    conv = page[page.index("### `synapse.conv`"):page.index("### `synapse.conv_transpose`")]
    assert "**Output shape:** `(O, H', W')`" in conv


def _formula(op: str) -> str:
    """The ``H' = ...`` equation of an op's stated shape rule, as Python."""
    rule = OPS[op].SHAPE
    text = next(s for s in rule.split("``") if s.startswith("H' = "))[len("H' = "):]
    for a, b in (("⌊", "("), ("⌋", ")//1"), ("·", "*"), ("−", "-"), (" mod ", "%")):
        text = text.replace(a, b)
    return text.replace("/", "//").replace("////", "//")


@pytest.mark.parametrize("op", ["synapse.conv", "synapse.conv_transpose", "synapse.pool",
                                "synapse.unpool"])
def test_stated_window_formulas_are_what_shape_inference_computes(op: str) -> None:
    """Evaluate the rule printed in the reference and compare it with ``infer`` on a grid."""
    import numpy as np

    from slayerc.ir.core import Graph, ParamRef
    from slayerc.ir.core import ShapeProblem as Problem

    formula, checked = _formula(op), 0
    for h in (4, 7, 12):
        for k in (1, 2, 3):
            for s in (1, 2, 3):
                for p in (0, 1):
                    for d in (1, 2):
                        want = eval(formula, {}, {"H": h, "kH": k, "sH": s, "pH": p, "dH": d})
                        attrs = dict(stride=(s, s), padding=(p, p), dilation=(d, d))
                        params = {}
                        if op in ("synapse.conv", "synapse.conv_transpose"):
                            params["w"] = np.zeros((2, 2, k, k), np.float32)
                            attrs["weight"] = ParamRef("w")
                        else:
                            attrs["kernel"] = (k, k)
                        node = OPS[op](name="n", inputs=("x",), **attrs)
                        g = Graph(name="g", nodes=[], params=params)
                        try:
                            # one channel for the pools: their windows then never cross one
                            c = 1 if "pool" in op else 2
                            (_, hh, ww), _ = node.infer([((c, h, h), "f32")], g)
                        except Problem:
                            assert want < 1, (op, h, k, s, p, d)
                            continue
                        assert hh == ww == want, (op, h, k, s, p, d)
                        checked += 1
    assert checked > 50
