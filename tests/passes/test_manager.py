"""The pass manager: pipeline strings, registry, fact ordering, verify after each pass."""

from __future__ import annotations

import sys
import types

import numpy as np
import pytest

from slayerc.errors import PassError
from slayerc.ir import GraphBuilder
from slayerc.ir import ops as o
from slayerc.passes import REGISTRY, PassManager, PassSpec, parse_pipeline


def _graph():
    b = GraphBuilder()
    x = b.add(o.Input, "x", shape=(4,), dtype="f32")
    fc = b.add(o.Dense, "fc", [x], weight=b.param("w", np.ones((3, 4), np.float32)))
    b.add(o.Output, "y", [fc])
    return b.build()


def test_parse_pipeline() -> None:
    assert parse_pipeline("a,b{k=v, n=2} , c{}") == [
        PassSpec("a"), PassSpec("b", {"k": "v", "n": "2"}), PassSpec("c")]
    assert parse_pipeline("") == []
    for bad in ("a,,b", "a{k}", "A", "a{k=1", "a b"):
        with pytest.raises(PassError):
            parse_pipeline(bad)


@pytest.fixture
def fake_passes(monkeypatch):
    """Register three small passes in a throwaway module."""
    mod = types.ModuleType("fake_passes_mod")

    def make(name, requires=(), establishes=(), invalidates=(), fn=None):
        m = types.ModuleType(f"fake_{name}")
        m.NAME, m.SUMMARY = name, f"fake {name}"
        m.REQUIRES, m.ESTABLISHES = frozenset(requires), frozenset(establishes)
        m.INVALIDATES = frozenset(invalidates)

        from dataclasses import dataclass

        @dataclass(frozen=True)
        class Options:
            k: int = 1
            flag: bool = False

        m.Options = Options
        m.run = fn or (lambda g, opts: g.replace(facts=g.facts | m.ESTABLISHES))
        sys.modules[f"fake_{name}"] = m
        monkeypatch.setitem(REGISTRY, name, f"fake_{name}:run")
        return m

    make("needs-quant", requires={"quant-legal"})
    make("makes-quant", establishes={"quant-legal"})
    make("breaks-quant", invalidates={"quant-legal"})
    make("corrupts", fn=lambda g, opts: g.replace(params={}))
    yield mod


def test_requirements_checked_before_anything_runs(fake_passes) -> None:
    pm = PassManager.from_string("shape-infer,needs-quant")
    with pytest.raises(PassError, match="pass 'needs-quant' requires the 'quant-legal' fact, "
                                        "which no earlier pass establishes; "
                                        "run ('legalize-quant' or )?'makes-quant'"):
        pm.run(_graph())
    assert pm.timings == []  # nothing ran
    PassManager.from_string("makes-quant,needs-quant").run(_graph())
    with pytest.raises(PassError, match="invalidated after 'makes-quant'"):
        PassManager.from_string("makes-quant,breaks-quant,needs-quant").run(_graph())


def test_options_are_typed_and_checked(fake_passes) -> None:
    PassManager.from_string("makes-quant{k=3,flag=true}").run(_graph())
    with pytest.raises(PassError, match="option k='x' of pass 'makes-quant' must be a int"):
        PassManager.from_string("makes-quant{k=x}").run(_graph())
    with pytest.raises(PassError, match="has no option 'z' \\(options: flag, k\\)"):
        PassManager.from_string("makes-quant{z=1}").run(_graph())


def test_verify_after_each_pass_names_the_pass(fake_passes) -> None:
    with pytest.raises(PassError, match="in corrupts, after shape-infer: .*missing parameter @w"):
        PassManager.from_string("shape-infer,corrupts").run(_graph())
    g = PassManager.from_string("corrupts", verify_each=False).run(_graph())
    assert g.params == {}


def test_print_and_time(fake_passes) -> None:
    printed: list[str] = []
    pm = PassManager.from_string("shape-infer,makes-quant", print_after_all=True,
                                 printer=printed.append)
    g = pm.run(_graph())
    assert {"shapes", "quant-legal"} <= g.facts
    assert len(printed) == 2 and "IR after shape-infer" in printed[0]
    report = pm.timing_report().splitlines()
    assert [r.split()[0] for r in report] == ["pass", "shape-infer", "makes-quant", "total"]


def test_passes_are_pure() -> None:
    g = _graph()
    before = [n for n in g]
    out = PassManager.from_string("shape-infer").run(g)
    assert [n for n in g] == before and all(n.shape is None for n in g if n.OP != "io.input")
    assert out["fc"].shape == (3,)
