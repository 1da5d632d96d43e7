"""Pipelines of passes: parsing ``a,b{k=v}`` strings, ordering checks, running with verify.

A pipeline string is a comma-separated list of pass names, each optionally followed by
``{key=value, ...}`` whose keys are fields of the pass's ``Options`` dataclass.  Before anything
runs, every name and key is checked and each pass's ``REQUIRES`` facts must be established by the
input graph or an earlier pass (and not invalidated since).  After each pass the graph is verified.
"""

from __future__ import annotations

import dataclasses
import importlib
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

from slayerc.errors import PassError, SlayerError
from slayerc.ir.core import Graph
from slayerc.ir.printer import print_graph
from slayerc.ir.verify import is_verified, verify
from slayerc.passes.report import Report


@dataclass(frozen=True)
class PassSpec:
    """One pipeline entry: the pass name and its option values."""

    name: str
    options: dict[str, Any] = field(default_factory=dict)

    def __str__(self) -> str:
        if not self.options:
            return self.name
        return self.name + "{" + ",".join(f"{k}={v}" for k, v in self.options.items()) + "}"


_ENTRY_RE = re.compile(r"\s*([a-z][a-z0-9-]*)\s*(\{[^{}]*\})?\s*(,|$)")


def parse_pipeline(text: str) -> list[PassSpec]:
    """Parse ``"shape-infer,legalize-delay{max=62}"`` into specs (values stay strings)."""
    specs, pos = [], 0
    text = text.strip()
    while pos < len(text):
        m = _ENTRY_RE.match(text, pos)
        if m is None or m.end() == pos:
            raise PassError(f"malformed pipeline at column {pos + 1}: {text[pos:]!r}; "
                            "expected 'pass-name' or 'pass-name{key=value,...}'")
        specs.append(PassSpec(m.group(1), _options(m.group(2), m.group(1))))
        pos = m.end()
    return specs


def _options(body: str | None, name: str) -> dict[str, str]:
    if not body or not body[1:-1].strip():
        return {}
    out = {}
    for item in body[1:-1].split(","):
        key, eq, value = item.partition("=")
        if not eq or not key.strip():
            raise PassError(f"malformed option {item.strip()!r} for pass '{name}'; "
                            "expected key=value")
        out[key.strip()] = value.strip()
    return out


def load_pass(name: str) -> ModuleType:
    """Import the module of a registered pass."""
    from slayerc.passes import REGISTRY

    if name not in REGISTRY:
        raise PassError(f"unknown pass '{name}'; known passes: {', '.join(sorted(REGISTRY))} "
                        "(see `slayerc passes`)")
    return importlib.import_module(REGISTRY[name].partition(":")[0])


def _convert(value: str, default: Any, key: str, name: str) -> Any:
    kind = type(default)
    try:
        if kind is bool:
            if value.lower() not in ("true", "false", "1", "0"):
                raise ValueError(value)
            return value.lower() in ("true", "1")
        if default is None:
            return value
        return kind(value)
    except ValueError:
        raise PassError(f"option {key}={value!r} of pass '{name}' must be a "
                        f"{kind.__name__}") from None


def make_options(mod: ModuleType, spec: PassSpec) -> Any:
    """Build the pass's ``Options`` from a spec, rejecting unknown keys and bad values."""
    opts_cls = getattr(mod, "Options", None)
    fields = {f.name: f for f in dataclasses.fields(opts_cls)} if opts_cls else {}
    unknown = sorted(set(spec.options) - set(fields))
    if unknown:
        known = ", ".join(sorted(fields)) or "none"
        raise PassError(f"pass '{spec.name}' has no option '{unknown[0]}' (options: {known})")
    values = {}
    for key, raw in spec.options.items():
        f = fields[key]
        default = f.default if f.default is not dataclasses.MISSING else None
        values[key] = _convert(raw, default, key, spec.name)
    return opts_cls(**values) if opts_cls else None


@dataclass
class PassManager:
    """Runs a pipeline: checks order first, then runs, verifies, optionally prints and times."""

    pipeline: list[PassSpec]
    verify_each: bool = True
    print_after_all: bool = False
    print_after: frozenset[str] = frozenset()
    time_passes: bool = False
    printer: Callable[[str], None] = print
    timings: list[tuple[str, float]] = field(default_factory=list)
    #: What passes with a ``run_with_report`` reported, in pipeline order.
    reports: list[Report] = field(default_factory=list)
    #: The graph each pass was given, by pass name (first run of that name); graphs are values,
    #: so this costs no copies.  ``slayerc compile --quant-report`` compares against the one
    #: before ``legalize-quant``.
    inputs: dict[str, Graph] = field(default_factory=dict)
    #: Called as ``on_pass(index, count, spec)`` before each pass runs (index from 0), for a
    #: progress display; None: nothing is called.
    on_pass: Callable[[int, int, PassSpec], None] | None = None

    @classmethod
    def from_string(cls, text: str, **kwargs: Any) -> PassManager:
        """A manager for a pipeline string."""
        return cls(parse_pipeline(text), **kwargs)

    def resolve(self) -> list[tuple[PassSpec, ModuleType, Any]]:
        """Every pass's module and options, checked (names, keys, values); needs no graph, so
        a bad pipeline fails before a long read or trace."""
        return [(spec, mod, make_options(mod, spec))
                for spec in self.pipeline for mod in (load_pass(spec.name),)]

    def check(self, facts: frozenset[str]) -> list[tuple[PassSpec, ModuleType, Any]]:
        """Resolve every pass and option and check REQUIRES in order, before running any."""
        plan, have, by = [], set(facts), {f: "the input graph" for f in facts}
        for spec, mod, opts in self.resolve():
            for fact in sorted(getattr(mod, "REQUIRES", frozenset())):
                if fact not in have:
                    raise PassError(self._missing(spec.name, fact, by.get(fact)))
            have -= set(getattr(mod, "INVALIDATES", frozenset()))
            for fact in getattr(mod, "ESTABLISHES", frozenset()):
                have.add(fact)
                by[fact] = f"'{spec.name}'"
            plan.append((spec, mod, opts))
        return plan

    @staticmethod
    def _missing(name: str, fact: str, lost_after: str | None) -> str:
        from slayerc.passes import REGISTRY

        providers = [n for n in REGISTRY
                     if fact in getattr(load_pass(n), "ESTABLISHES", frozenset())]
        hint = f"; run {' or '.join(repr(p) for p in providers)} before it" if providers else ""
        lost = f" (it was invalidated after {lost_after})" if lost_after else ""
        return f"pass '{name}' requires the '{fact}' fact, which no earlier pass " \
               f"establishes{lost}{hint}"

    def run(self, g: Graph) -> Graph:
        """Run the pipeline on ``g`` and return the result."""
        plan = self.check(g.facts)
        done: list[str] = []
        # the last graph verify passed: the next verify re-checks only the nodes a pass changed
        verified = g if is_verified(g) else None
        for index, (spec, mod, opts) in enumerate(plan):
            if self.on_pass is not None:
                self.on_pass(index, len(plan), spec)
            start = time.perf_counter()
            self.inputs.setdefault(spec.name, g)
            try:
                g = self._run_pass(mod, opts, g)
                if self.verify_each:
                    verified = verify(g, since=verified)
            except SlayerError as e:
                after = f", after {', '.join(done)}" if done else ""
                raise PassError(f"in {spec.name}{after}: {e}") from e
            elapsed = time.perf_counter() - start
            self.timings.append((spec.name, elapsed))
            done.append(spec.name)
            if self.print_after_all or spec.name in self.print_after:
                self.printer(f"// -----// IR after {spec} //----- //\n{print_graph(g)}")
        return g

    def _run_pass(self, mod: ModuleType, opts: Any, g: Graph) -> Graph:
        """Run one pass; one with ``run_with_report`` also adds its report to ``reports``."""
        args = (g, opts) if opts is not None else (g,)
        with_report = getattr(mod, "run_with_report", None)
        if with_report is None:
            return mod.run(*args)
        g, report = with_report(*args)
        self.reports.append(report)
        return g

    def timing_report(self) -> str:
        """A table of the time each pass took."""
        total = sum(t for _, t in self.timings) or 1e-12
        rows = [f"{'pass':<28}{'seconds':>12}{'share':>9}"]
        rows += [f"{n:<28}{t:>12.6f}{100 * t / total:>8.1f}%" for n, t in self.timings]
        rows.append(f"{'total':<28}{total:>12.6f}{100.0:>8.1f}%")
        return "\n".join(rows)
