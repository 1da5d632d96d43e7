"""Hard time limits for hostile-input tests: a regression must fail a test, never hang the run.

``time_limit`` interrupts pure-Python work (and blocking system calls) with SIGALRM.  Cases that
could block inside a C library (h5py on a FIFO) run in a child process through ``run_child``,
which the parent kills after its timeout.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


class Hang(Exception):
    """Raised in the test when a case runs past its time limit."""


@contextlib.contextmanager
def time_limit(seconds: int) -> Iterator[None]:
    """Fail with :class:`Hang` if the body runs longer than ``seconds`` (main thread only)."""
    def on_alarm(signum, frame):  # noqa: ARG001
        raise Hang(f"ran longer than {seconds} s")
    old = signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def run_child(code: str, timeout: float = 60, env: dict[str, str] | None = None) -> object:
    """Run ``code`` in a fresh Python; it must print one JSON value last.  A child that runs
    past ``timeout`` is killed and the test fails (the hang is the bug)."""
    try:
        done = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=ROOT,
                              capture_output=True, text=True, timeout=timeout,
                              env={**os.environ, **(env or {})})
    except subprocess.TimeoutExpired:
        pytest.fail(f"the child process hung (killed after {timeout} s)")
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


#: Child-side helper: run each case under an alarm and report (exception class, message).
CHILD_PRELUDE = '''
import json, signal

def outcome(fn, seconds=10):
    def on_alarm(signum, frame):
        raise TimeoutError(f"hung for {seconds} s")
    signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(seconds)
    try:
        fn()
        return ["ok", ""]
    except Exception as e:
        return [type(e).__name__, str(e)]
    finally:
        signal.alarm(0)
'''
