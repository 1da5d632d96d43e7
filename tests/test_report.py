"""``--report-json`` of compile, opt and run: strict JSON holding the pass notes, the per-layer
table, latency, agreement and run figures that the text output shows."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from slayerc import report
from slayerc.cli import main
from slayerc.driver import load
from slayerc.errors import SlayerError
from slayerc.passes.manager import parse_pipeline
from slayerc.passes.pipelines import default_pipeline

ROOT = Path(__file__).resolve().parents[1]
MODEL = f"{ROOT}/examples/models.py:RecurrentKWTA"


def strict(path: Path) -> dict:
    """Parse a file as strict JSON (NaN/Infinity refused)."""
    def refuse(name: str) -> None:
        raise AssertionError(f"{path} holds {name}, not strict JSON")
    return json.loads(path.read_text(), parse_constant=refuse)


@pytest.fixture(scope="module")
def compiled(tmp_path_factory) -> tuple[Path, dict]:
    d = tmp_path_factory.mktemp("report")
    rc = main(["compile", MODEL, "--input-shape", "20", "--steps", "20", "-o", str(d / "rk.net"),
               "--quant-report", "--report-json", str(d / "c.json"), "-q"])
    assert rc == 0
    return d, strict(d / "c.json")


def test_compile_report_holds_passes_layers_latency_and_agreement(compiled) -> None:
    d, data = compiled
    assert data["command"] == "compile" and data["format"] == 1
    assert data["outputs"] == [str(d / "rk.net")] and data["target"] == "loihi2"
    want = [spec.name for spec in parse_pipeline(default_pipeline("loihi2", True))]
    assert [p["name"] for p in data["passes"]] == want
    assert all(p["seconds"] >= 0 for p in data["passes"])
    quant = next(p for p in data["passes"] if p["name"] == "legalize-quant")
    assert any(k.endswith(".rms_err") for k in quant["values"])
    kwta = next(p for p in data["passes"] if p["name"] == "lower-kwta")
    assert kwta["notes"] and {n["level"] for n in kwta["notes"]} <= {"note", "warning"}
    g = load(d / "rk.net")
    assert data["totals"]["neurons"] == 32 + 32 + 16 == sum(r["neurons"] for r in data["layers"])
    assert len(data["layers"]) > len(g.nodes) // 2
    assert {r["op"] for r in data["layers"]} >= {"neuron.cuba", "synapse.dense"}
    q = data["quant"]
    assert set(q["agreement"]) == {"fc_neuron", "rec_neuron", "kwta_neuron"}
    assert all(0.0 <= v <= 1.0 for v in q["agreement"].values())
    assert q["entries"]["fc_neuron"] == 32 * 20  # one sample of 32 neurons x 20 steps
    assert math.isclose(q["total"], sum(q["agreement"][k] * q["entries"][k] for k in
                                        q["entries"]) / sum(q["entries"].values()))
    assert isinstance(data["output_latency"], int) and isinstance(data["latency"], dict)


def test_opt_report_and_nan_becomes_null(tmp_path: Path) -> None:
    out = tmp_path / "o.json"
    rc = main(["opt", f"{ROOT}/examples/conv_net.sir", "-p", "shape-infer,sparsify-masks",
               "-o", str(tmp_path / "n.sir"), "--report-json", str(out)])
    assert rc == 0
    data = strict(out)
    assert [p["name"] for p in data["passes"]] == ["shape-infer", "sparsify-masks"]
    assert data["pipeline"] == "shape-infer,sparsify-masks" and data["quant"] is None
    sparsify = data["passes"][1]
    assert sparsify["values"]["fc1"] == pytest.approx(0.96527, abs=1e-5)  # weight density
    assert any(n["text"].startswith("%fc1 (synapse.dense") for n in sparsify["notes"])
    assert sum(r["synapses"] for r in data["layers"]) == data["totals"]["synapses"] > 0
    assert report._clean({"a": float("nan"), "b": (np.float32(1.5), np.int64(2))}) == \
        {"a": None, "b": [1.5, 2]}


def test_run_report_counts_what_was_written(compiled) -> None:
    d, _ = compiled
    x = (np.random.default_rng(3).random((2, 20, 15)) < 0.3).astype(np.float32)
    np.save(d / "in.npy", x)
    rc = main(["run", str(d / "rk.net"), "--input", str(d / "in.npy"), "--output",
               str(d / "o.npy"), "--report-json", str(d / "r.json"), "-q"])
    assert rc == 0
    run = strict(d / "r.json")["run"]
    y = np.load(d / "o.npy")
    assert run["shape"] == list(y.shape) == [2, 16, 15]
    assert run["nonzero"] == int(np.count_nonzero(y)) and run["dtype"] == "int32"
    assert run["steps"] == 15 and run["seconds"] > 0


def test_pick_layers() -> None:
    names = [f"layer{k}" for k in range(10)]
    assert report.pick_layers(names[:4], None) == names[:4]
    picked = report.pick_layers(names, None)
    assert len(picked) == 6 and picked[0] == "layer0" and picked[-1] == "layer9"
    assert report.pick_layers(names, "layer3, -1,2") == ["layer3", "layer9", "layer2"]
    with pytest.raises(SlayerError, match="no layer 'fc'"):
        report.pick_layers(names, "fc")
