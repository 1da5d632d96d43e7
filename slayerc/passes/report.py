"""What a pass has to say besides the graph it returns: per-node notes and per-layer numbers.

A pass stays a pure ``run(g, opts) -> Graph``.  A pass that has something to report also
defines ``run_with_report(g, opts) -> (Graph, Report)`` (and ``run`` returns its first half);
:class:`~slayerc.passes.manager.PassManager` calls it when present and collects the reports in
``PassManager.reports``, so passes that only return a graph keep working unchanged.

Every note names its node with ``node.describe()`` (STYLE §19).  ``level`` is ``"note"`` (what the
pass did) or ``"warning"`` (what it could not do and why).  ``values`` holds numbers per node
name, e.g. the weight density of each synapse for ``sparsify-masks``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Note:
    """One message of a pass: ``level`` is ``"note"`` or ``"warning"``."""

    level: str
    text: str


@dataclass(frozen=True)
class Report:
    """Everything one pass reported in one run."""

    pass_name: str
    notes: tuple[Note, ...] = ()
    values: Mapping[str, float] = field(default_factory=dict)

    @property
    def warnings(self) -> list[str]:
        """The texts of the warnings."""
        return [n.text for n in self.notes if n.level == "warning"]

    def lines(self, warnings_only: bool = False) -> list[str]:
        """One ``level: pass: text`` line per note."""
        return [f"{n.level}: {self.pass_name}: {n.text}" for n in self.notes
                if not warnings_only or n.level == "warning"]


def note(text: str) -> Note:
    """A note about something the pass did."""
    return Note("note", text)


def warning(text: str) -> Note:
    """A warning about something the pass could not do, and why."""
    return Note("warning", text)
