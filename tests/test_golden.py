"""Golden text tests: each ``tests/golden/**/*.sir`` has a ``# RUN:`` line and ``# CHECK:`` lines.

The RUN command runs through the ``slayerc`` CLI (``%s`` is the file) and its output is matched
with FileCheck (the PyPI ``filecheck`` package).  A RUN line ending in ``2>&1`` matches stderr
(pass notes and warnings) followed by stdout.
"""

from __future__ import annotations

import shlex
import subprocess
import sys
from pathlib import Path

import pytest

GOLDEN = Path(__file__).parent / "golden"
CASES = sorted(GOLDEN.rglob("*.sir"))


def _run_line(path: Path) -> list[str]:
    for line in path.read_text().splitlines():
        if line.startswith("# RUN:"):
            return shlex.split(line[len("# RUN:"):].replace("%s", str(path)))
    raise AssertionError(f"{path} has no '# RUN:' line")


def test_there_are_golden_cases() -> None:
    assert len(CASES) >= 3


@pytest.mark.parametrize("path", CASES, ids=[str(p.relative_to(GOLDEN)) for p in CASES])
def test_golden(path: Path) -> None:
    cmd = _run_line(path)
    assert cmd[0] == "slayerc", cmd
    merge = cmd[-1] == "2>&1"
    run = subprocess.run([sys.executable, "-m", "slayerc.cli", *cmd[1:len(cmd) - merge]],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    check = subprocess.run([sys.executable, "-m", "filecheck", str(path)],
                           input=run.stderr + run.stdout if merge else run.stdout,
                           capture_output=True, text=True, timeout=60)
    assert check.returncode == 0, f"{check.stdout}{check.stderr}\n--- output ---\n{run.stdout}"
