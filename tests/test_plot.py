"""Pictures (slayerc.plot and the CLI flags that draw them): valid PNG/SVG files with the
expected number of boxes and panels, readable sizes, and a clear error without matplotlib."""

from __future__ import annotations

import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("matplotlib")

from slayerc import plot  # noqa: E402
from slayerc.cli import main  # noqa: E402
from slayerc.errors import SlayerError  # noqa: E402
from slayerc.ir import ops as o  # noqa: E402
from slayerc.ir.core import Graph, ParamRef  # noqa: E402
from slayerc.passes.manager import PassManager  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
SVG = "{http://www.w3.org/2000/svg}"


def chain(layers: int, recurrent: bool = True) -> Graph:
    """x → (dense → cuba) × layers → output, with a recurrent dense over a one-step shift
    around the first neuron and per-channel axonal delays 0..3 before the last dense."""
    rng = np.random.default_rng(0)
    nodes: list = [o.Input(name="x", shape=(8,), dtype="f32")]
    params, prev = {}, "x"
    for i in range(layers):
        params[f"w{i}"] = rng.normal(0, 0.5, (8, 8)).astype(np.float32)
        nodes.append(o.Dense(name=f"fc{i}", inputs=(prev,), weight=ParamRef(f"w{i}")))
        drive = f"fc{i}"
        if i == 0 and recurrent:
            params["wr"] = rng.normal(0, 0.5, (8, 8)).astype(np.float32)
            nodes += [o.Shift(name="back", inputs=("lif0",)),
                      o.Dense(name="fc_rec", inputs=("back",), weight=ParamRef("wr")),
                      o.Add(name="sum0", inputs=("fc0", "fc_rec"))]
            drive = "sum0"
        if i == layers - 2:
            params["d"] = (np.arange(8) % 4).astype(np.float32)
        nodes.append(o.Cuba(name=f"lif{i}", inputs=(drive,), current_decay=0.25,
                            voltage_decay=0.03))
        prev = f"lif{i}"
        if i == layers - 2:
            nodes.append(o.Delay(name="dl", inputs=(prev,), delay=ParamRef("d")))
            prev = "dl"
    nodes.append(o.Output(name="y", inputs=(prev,)))
    g = Graph({n.name: n for n in nodes}, params, name="chain")
    return PassManager.from_string("shape-infer").run(g)


def svg_texts(path: Path) -> list[str]:
    """The text content of every ``<text>`` element (the file must be well-formed XML)."""
    root = ET.parse(path).getroot()
    assert root.tag == f"{SVG}svg"
    return ["".join(t.itertext()) for t in root.iter(f"{SVG}text")]


def test_graph_picture_svg_has_one_box_per_layer_and_labels_delays(tmp_path: Path) -> None:
    g = chain(60)
    out = tmp_path / "net.svg"
    boxes = plot.graph_picture(g, out)
    layers = [n.name for n in g if n.OP not in ("axon.shift", "axon.delay")]
    assert boxes == len(layers) == 60 * 2 + 4  # x, y, fc_rec, sum0; the delays are edges
    names = sorted(t.split("\n")[0] for t in svg_texts(out) if t.startswith("%"))
    assert names == sorted(f"%{n}" for n in layers)
    texts = svg_texts(out)
    assert "d=1" in texts  # the recurrent shift
    assert "d=0..3" in texts  # per-channel axonal delays
    assert any("neuron.cuba" in t and "8 neurons" in t for t in texts)


def test_graph_picture_png_is_tall_enough_to_read(tmp_path: Path) -> None:
    import matplotlib.image as mpimg

    out = tmp_path / "net.png"
    plot.graph_picture(chain(50, recurrent=False), out)
    assert out.read_bytes()[:8] == PNG_MAGIC
    height, width = mpimg.imread(out).shape[:2]
    assert height >= 50 * 60  # ≥ 60 px per rank: 8 pt text stays legible
    small = tmp_path / "small.png"
    plot.graph_picture(chain(3, recurrent=False), small)
    assert mpimg.imread(small).shape[0] < height / 5


def test_recurrent_edge_is_drawn_backwards_in_red(tmp_path: Path) -> None:
    boxes, edges = plot.layer_edges(chain(3))
    assert ("lif0", "fc_rec", "d=1") in edges
    assert boxes.index("lif0") > boxes.index("fc_rec")  # a back edge: drawn as a red arc
    out = tmp_path / "rec.svg"
    plot.graph_picture(chain(3), out)
    assert "#c0392b" in out.read_text()


def test_raster_picture_panels_and_heat_map(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    spikes = (rng.random((2, 4, 4, 30)) < 0.2).astype(np.int32)  # [C, H, W, T]
    graded = rng.integers(-50, 50, (6, 30))
    out = tmp_path / "r.svg"
    assert plot.raster_picture({"input": spikes, "hidden": spikes[0], "out": graded}, out) == 3
    titles = [t for t in svg_texts(out) if " neurons, " in t]
    assert [t.split(":")[0] for t in titles] == ["input", "hidden", "out"]
    assert titles[0] == f"input: 32 neurons, {int(spikes.sum())} spikes"
    assert titles[2].startswith("out: 6 neurons, graded")
    png = tmp_path / "r.png"
    plot.raster_picture({"input": spikes}, png)
    assert png.read_bytes()[:8] == PNG_MAGIC


def test_bad_suffix_and_missing_matplotlib_are_clear_errors(tmp_path: Path, monkeypatch) -> None:
    with pytest.raises(SlayerError, match=r"\.png or \.svg"):
        plot.graph_picture(chain(2), tmp_path / "net.pdf")
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(SlayerError, match=r"pip install 'slayerc\[plot\]'"):
        plot.raster_picture({"x": np.zeros((2, 3))}, tmp_path / "r.png")
    assert not (tmp_path / "r.png").exists()


@pytest.fixture(scope="module")
def compiled(tmp_path_factory) -> Path:
    """RecurrentKWTA compiled by the CLI with its quantization chart."""
    d = tmp_path_factory.mktemp("cli")
    rc = main(["compile", f"{ROOT}/examples/models.py:RecurrentKWTA", "--input-shape", "20",
               "--steps", "20", "-o", str(d / "rk.net"), "--quant-report", "--plot",
               str(d / "q.svg"), "-q"])
    assert rc == 0
    return d


def test_cli_compile_quant_plot(compiled: Path, capsys) -> None:
    texts = svg_texts(compiled / "q.svg")
    assert "quantization error per synapse" in texts
    assert any(t.startswith("spike agreement per layer") for t in texts)
    for layer in ("fc_neuron", "rec_neuron", "kwta_neuron", "fc_synapse"):
        assert layer in texts
    rc = main(["compile", f"{ROOT}/examples/models.py:RecurrentKWTA", "--input-shape", "20",
               "--steps", "20", "-o", str(compiled / "x.net"), "--plot", "q.png"])
    assert rc == 1 and "add --quant-report" in capsys.readouterr().err


def test_cli_inspect_graph_and_run_plot(compiled: Path, capsys) -> None:
    net = compiled / "rk.net"
    assert main(["inspect", str(net), "--graph", str(compiled / "g.png")]) == 0
    assert (compiled / "g.png").read_bytes()[:8] == PNG_MAGIC
    x = (np.random.default_rng(0).random((3, 20, 25)) < 0.3).astype(np.float32)
    np.save(compiled / "in.npy", x)
    args = ["run", str(net), "--input", str(compiled / "in.npy"), "--output",
            str(compiled / "o.npy"), "-q"]
    assert main([*args, "--plot", str(compiled / "r.svg")]) == 0
    titles = [t.split(":")[0] for t in svg_texts(compiled / "r.svg") if " neurons, " in t]
    assert titles == ["input", "layer0", "layer1", "layer2"]  # the output is layer2
    assert main([*args, "--plot", str(compiled / "r1.svg"), "--layers", "layer1"]) == 0
    titles = [t.split(":")[0] for t in svg_texts(compiled / "r1.svg") if " neurons, " in t]
    assert titles == ["input", "layer1", "output"]
    assert main([*args, "--plot", str(compiled / "r2.svg"), "--layers", "7"]) == 1
    assert "--layers: no layer '7'" in capsys.readouterr().err
