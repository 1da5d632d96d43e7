"""Progress of long compiles: every stage (read or trace, each pass, the write) is reported, in
order, with a fixed total; the CLI draws it as a bar on a terminal and not otherwise."""

from __future__ import annotations

import io
import sys
from pathlib import Path

import pytest
import torch

from slayerc.driver import compile_file, compile_model
from slayerc.errors import SlayerError
from slayerc.passes.manager import parse_pipeline
from slayerc.passes.pipelines import default_pipeline

ROOT = Path(__file__).resolve().parents[1]
NETLIST = ROOT / "tests" / "data" / "lava-dl" / "cuba_dense.net"


def _recorder():
    calls: list[tuple[int, int, str]] = []
    return calls, lambda done, total, what: calls.append((done, total, what))


def _check_sequence(calls: list[tuple[int, int, str]]) -> None:
    totals = {t for _, t, _ in calls}
    assert len(totals) == 1, "the total must not change during one compile"
    total = totals.pop()
    assert [d for d, _, _ in calls] == list(range(total + 1))
    assert calls[-1][2] == "done"


def test_compile_file_reports_read_each_pass_and_write(tmp_path: Path) -> None:
    calls, progress = _recorder()
    out = tmp_path / "net.net"
    compile_file(NETLIST, output=out, progress=progress)
    _check_sequence(calls)
    passes = [s.name for s in parse_pipeline(default_pipeline("loihi2", True))]
    whats = [w for _, _, w in calls]
    assert whats[0] == f"reading {NETLIST}"
    assert whats[1:-2] == [f"pass {i + 1}/{len(passes)}: {n}" for i, n in enumerate(passes)]
    assert whats[-2] == f"writing {out}"
    assert out.exists()


def test_compile_model_reports_trace_passes_quant_report() -> None:
    from slayerc import slayer

    model = torch.nn.Sequential(slayer.block.cuba.Dense(
        {"threshold": 1.0, "current_decay": 0.25, "voltage_decay": 0.03}, 6, 4))
    calls, progress = _recorder()
    compile_model(model, torch.zeros(1, 6, 8), pipeline="shape-infer,canonicalize", quant=False,
                  progress=progress)
    _check_sequence(calls)
    assert [w for _, _, w in calls] == ["tracing the model", "pass 1/2: shape-infer",
                                        "pass 2/2: canonicalize", "done"]


def test_failed_pass_stops_the_count_before_done(tmp_path: Path) -> None:
    calls, progress = _recorder()
    with pytest.raises(SlayerError, match="no-such-pass"):
        compile_file(NETLIST, pipeline="shape-infer,no-such-pass", progress=progress)
    assert calls == []  # the pipeline is checked before anything is read


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize("quiet", [False, True])
def test_cli_bar_only_on_a_terminal_and_not_quiet(tmp_path: Path, monkeypatch,
                                                   quiet: bool) -> None:
    from slayerc.cli import main

    err = _Tty()
    monkeypatch.setattr(sys, "stderr", err)
    args = ["compile", str(NETLIST), "-o", str(tmp_path / "o.net")] + (["-q"] if quiet else [])
    assert main(args) == 0
    drawn = err.getvalue()
    if quiet:
        assert "pass 1/" not in drawn
    else:
        assert "reading" in drawn and "pass 1/" in drawn and "legalize-quant" in drawn


def test_cli_opt_bar_and_error_after_closed_bar(tmp_path: Path, monkeypatch) -> None:
    from slayerc.cli import _BARS, main

    err = _Tty()
    monkeypatch.setattr(sys, "stderr", err)
    assert main(["opt", str(NETLIST), "-p", "shape-infer,canonicalize",
                 "-o", str(tmp_path / "o.sir")]) == 0
    assert "pass 2/2: canonicalize" in err.getvalue()
    # a failing compile: the bar is closed (cleared) before the one-line error is printed
    err = _Tty()
    monkeypatch.setattr(sys, "stderr", err)
    bad = tmp_path / "bad.net"
    bad.write_bytes(b"not hdf5")
    assert main(["compile", str(bad), "-o", str(tmp_path / "x.net")]) == 1
    assert not _BARS
    # what the terminal shows on the last line: the text after its last carriage return
    shown = err.getvalue().rstrip("\n").rsplit("\n", 1)[-1].rsplit("\r", 1)[-1]
    assert shown.startswith("slayerc: error:") and "bad.net" in shown
