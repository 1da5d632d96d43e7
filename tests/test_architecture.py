"""The import arrows of DESIGN.md, checked on every module of the package.

Every ``import``/``from`` statement (also inside functions) and every string that names a
``slayerc`` module (``importlib.import_module("slayerc.x")``, lazy ``"slayerc.x:attr"`` tables)
counts as an import.  Forbidden:

* ``slayerc.ir`` imports nothing of slayerc but ``slayerc.errors``;
* ``slayerc.passes`` imports only ``slayerc.ir`` and ``slayerc.errors``;
* ``slayerc.runtime`` never imports ``slayerc.frontend`` or ``slayerc.backends`` (nor the driver);
* ``slayerc.backends`` never imports ``slayerc.frontend`` or ``slayerc.passes`` (backends run
  no passes; shape inference is the IR function ``slayerc.ir.shapes.infer_shapes``).
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[1] / "slayerc"
NAME = re.compile(r"^slayerc(\.[A-Za-z_][A-Za-z0-9_]*)+")
LAYERS = {p.stem for p in PKG.iterdir() if p.suffix == ".py" or (p / "__init__.py").exists()}
"""The package's top-level modules (a string such as ``"slayerc.graph"``, the text IR's
keyword, names none of them and is no import)."""

ALLOWED = {  # layer -> the slayerc layers it may import (itself always)
    "ir": {"errors"},
    "passes": {"ir", "errors"},
    "runtime": {"ir", "errors"},
}
FORBIDDEN = {"backends": {"frontend", "passes", "driver", "cli"}}


def _module(path: Path) -> str:
    rel = path.relative_to(PKG.parent).with_suffix("")
    parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
    return ".".join(parts)


def _imports(path: Path) -> list[tuple[int, str]]:
    """``(line, module)`` for every slayerc module ``path`` names in code or in a string."""
    tree = ast.parse(path.read_text(), str(path))
    here = _module(path).split(".")
    package = here if path.name == "__init__.py" else here[:-1]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package[: len(package) - node.level + 1] + ([base] if base else []))
            found += [(node.lineno, base)]
            found += [(node.lineno, f"{base}.{a.name}") for a in node.names]
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            m = NAME.match(node.value.split(":")[0].strip())
            if m and " " not in node.value.split(":")[0]:
                found.append((node.lineno, m.group(0)))
    return [(line, name) for line, name in found
            if name.startswith("slayerc.") and name.split(".")[1] in LAYERS]


def _layer(module: str) -> str:
    return module.split(".")[1] if module.count(".") else ""


def violations() -> list[str]:
    """Every forbidden import in the package, as ``file:line: a -> b``."""
    out = []
    for path in sorted(PKG.rglob("*.py")):
        layer = _layer(_module(path))
        for line, name in _imports(path):
            target = name.split(".")[1]
            if target == layer:
                continue
            bad = (layer in ALLOWED and target not in ALLOWED[layer]) or \
                target in FORBIDDEN.get(layer, ())
            if bad:
                out.append(f"{path.relative_to(PKG.parent)}:{line}: {layer} -> {name}")
    return out


def test_no_forbidden_imports():
    assert violations() == []


@pytest.mark.parametrize("source, layer, bad", [
    ("from slayerc.frontend import trace\n", "runtime", True),
    ("import importlib\nimportlib.import_module('slayerc.backends.files')\n", "runtime", True),
    ("TABLE = {'x': 'slayerc.frontend.slayer:Dense'}\n", "backends", True),
    ("from slayerc.ir.core import Graph\n", "passes", False),
    ("def f():\n    from slayerc.runtime import axon\n", "passes", True),
    ("from . import core\n", "ir", False),
])
def test_the_check_sees_every_kind_of_import(tmp_path, monkeypatch, source, layer, bad):
    """The checker finds imports in functions, importlib strings and lazy tables."""
    pkg = tmp_path / "slayerc"
    (pkg / layer).mkdir(parents=True)
    (pkg / layer / "mod.py").write_text(source)
    monkeypatch.setattr(__import__(__name__), "PKG", pkg)
    assert bool(violations()) is bad


def test_error_classes_live_in_errors_py():
    """Every exception class of the package is defined in ``slayerc/errors.py`` (modules import
    them from there, so ``except slayerc.errors.X`` catches what any part raises)."""
    strays = []
    for path in sorted(PKG.rglob("*.py")):
        if path.name == "errors.py" and path.parent == PKG:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ClassDef) and (
                    node.name.endswith(("Error", "Exception"))
                    or any(getattr(b, "id", "").endswith("Error") for b in node.bases)):
                strays.append(f"{path.relative_to(PKG.parent)}:{node.lineno}: {node.name}")
    assert strays == []
