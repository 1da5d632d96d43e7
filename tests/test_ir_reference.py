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
