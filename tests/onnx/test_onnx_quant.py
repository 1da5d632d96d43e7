"""ONNX in (issue 14): the loihi2 grids and scales, batch norm after a ReLU, clipped ReLU."""

from __future__ import annotations

import warnings

import numpy as np
import onnx
import pytest
import torch
from onnx_models import _bn, export
from torch import nn

import slayerc
from slayerc.driver import compile_file
from slayerc.errors import FrontendError
from slayerc.frontend.onnx import sdnn_report
from slayerc.frontend.onnx.scales import _water_fill, weight_step

ort = pytest.importorskip("onnxruntime")


def _export(module: nn.Module, shape, path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(module.eval(), torch.rand(1, *shape), str(path), dynamo=False,
                          input_names=["x"], output_names=["y"],
                          dynamic_axes={"x": {0: "N"}, "y": {0: "N"}})


def _held(x: torch.Tensor, steps: int = 16) -> torch.Tensor:
    return x[..., None].repeat(*([1] * x.dim()), steps)


def _rel(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a - b).max() / np.abs(b).max())


def _ref(path, x: torch.Tensor) -> np.ndarray:
    return ort.InferenceSession(str(path)).run(None, {"x": x.numpy()})[0]


# ------------------------------------------------------------------------ grids and scales


def test_water_fill_shares_evenly_under_prefix_bounds_and_caps():
    assert _water_fill([9.0, 12.0, 15.0], [9.0, 7.0, 7.0]) == pytest.approx([5.0] * 3)
    # a tight first bound: the rest share what is left
    assert _water_fill([2.0, 12.0, 15.0], [9.0, 7.0, 7.0]) == pytest.approx([2.0, 6.5, 6.5])
    # caps bind: every value at its cap
    assert _water_fill([8.0, 20.0, 30.0], [8.0, 7.0, 7.0]) == pytest.approx([8.0, 7.0, 7.0])


@pytest.fixture(scope="module")
def mlp(tmp_path_factory):
    return export("mlp", tmp_path_factory.mktemp("onnxq"))


def test_balanced_plan_gives_input_and_hidden_layers_one_resolution(mlp):
    """Input integers and each hidden dense layer's largest weight (1/64 steps) come out
    alike; the output synapse's largest weight is the mantissa's top step."""
    _, _, path = mlp
    g = slayerc.load(path, ramp="balanced")
    scale = next(n.scale for n in g if n.OP == "tensor.affine" and n.inputs == ("x",))
    dense = [n for n in g if n.OP == "synapse.dense"]
    res = [64 * float(scale)] + [64 * float(np.abs(g.param(n.weight)).max())
                                 for n in dense[:-1]]
    assert max(res) / min(res) < 1.1
    w_out = np.asarray(g.param(dense[-1].weight))
    assert 126 <= float(np.abs(w_out).max()) / weight_step("synapse.dense", w_out) < 127.5


def test_sigma_delta_dense_weights_use_the_1_64_grid(mlp, tmp_path):
    """legalize-quant keeps odd integers for dense layers feeding sigma-delta neurons when
    they fit [-128, 127] (netx then uses exponent -1); conv layers stay on even integers."""
    _, _, path = mlp
    done = compile_file(path, output=tmp_path / "m.net")
    ints = [np.rint(64 * np.asarray(done.graph.param(n.weight))) for n in done.graph
            if n.OP == "synapse.dense"]
    assert any(np.any(w % 2) for w in ints)
    for w in ints:
        assert np.all(np.abs(w) <= 254) and (np.all(w % 2 == 0) or w.min() >= -128 and
                                              w.max() <= 127)
    pil = export("pilotnet", tmp_path)[2]
    conv = compile_file(pil, output=tmp_path / "p.net").graph
    for n in conv:
        if n.OP == "synapse.conv":
            assert np.all(np.rint(64 * np.asarray(conv.param(n.weight))) % 2 == 0)


# ------------------------------------------------------------------ batch norm after relu


def _bn_after_relu_cnn() -> nn.Module:
    torch.manual_seed(4)
    return nn.Sequential(nn.Conv2d(2, 4, 3, padding=1), nn.ReLU(), _bn(4),
                         nn.Conv2d(4, 4, 3, padding=1, groups=2), nn.ReLU(), _bn(4),
                         nn.Conv2d(4, 4, 3, padding=1), nn.ReLU(), _bn(4),
                         nn.Flatten(), nn.Linear(4 * 6 * 6, 3))


def test_batch_norm_after_relu_folds_into_the_next_layers(tmp_path):
    """BN after a ReLU: its scale multiplies the next (padded, grouped) conv's and the dense
    layer's input columns, its shift becomes per-neuron biases; exact, and a netlist."""
    path = tmp_path / "bnr.onnx"
    _export(_bn_after_relu_cnn(), (2, 6, 6), path)
    assert [n.op_type for n in onnx.load(str(path)).graph.node].count("BatchNormalization") == 3
    g = slayerc.load(path)
    assert not any(n.OP == "norm.batch" for n in g)
    x = torch.rand(4, 2, 6, 6, generator=torch.Generator().manual_seed(2))
    y = slayerc.interpret(g, _held(x))[..., -1].detach().numpy()
    assert _rel(y, _ref(path, x)) < 0.01
    exact = slayerc.interpret(slayerc.load(path, threshold=0.0), _held(x))[..., -1]
    assert _rel(exact.detach().numpy(), _ref(path, x)) < 2e-3  # the 1/4096 message grid
    done = compile_file(path, output=tmp_path / "bnr.net")
    report = sdnn_report(done.traced, _held(x), done.graph)
    fixed = slayerc.run_netlist(tmp_path / "bnr.net", _held(x).numpy())[..., -1]
    fixed = fixed / 2.0 ** (18 + report.output_exp["y"])
    assert _rel(fixed, y) <= report.quant_error + 1e-6 < 0.05


def test_batch_norm_after_relu_into_dense(tmp_path):
    torch.manual_seed(5)
    bn = nn.BatchNorm1d(6)
    with torch.no_grad():
        bn.running_mean.uniform_(-0.2, 0.2)
        bn.running_var.uniform_(0.5, 1.5)
        bn.weight.uniform_(-1.5, 1.5)  # negative scales too
    path = tmp_path / "bnd.onnx"
    _export(nn.Sequential(nn.Linear(5, 6), nn.ReLU(), bn, nn.Linear(6, 2)), (5,), path)
    g = slayerc.load(path, threshold=0.0)
    assert not any(n.OP == "norm.batch" for n in g)
    x = torch.rand(4, 5)
    y = slayerc.interpret(g, _held(x, 8))[..., -1].detach().numpy()
    assert _rel(y, _ref(path, x)) < 2e-3  # exact up to the 1/4096 message grid


def test_batch_norm_after_relu_without_a_next_layer_is_one_line(tmp_path):
    path = tmp_path / "bnrelu.onnx"
    _export(nn.Sequential(nn.Linear(5, 6), nn.ReLU(), nn.BatchNorm1d(6), nn.ReLU(),
                          nn.Linear(6, 2)), (5,), path)
    with pytest.raises(FrontendError) as e:
        slayerc.load(path)
    msg = str(e.value)
    assert "(Relu)" in msg and "BatchNormalization" in msg and "before the ReLU" in msg
    assert "\n" not in msg


def test_saturating_clip_is_refused_naming_the_node(tmp_path):
    """Lava's sigma-delta neuron has relu and identity only: Clip(0, 6) is one clear line."""
    path = tmp_path / "r6.onnx"
    _export(nn.Sequential(nn.Linear(4, 3), nn.ReLU6()), (4,), path)
    with pytest.raises(FrontendError) as e:
        slayerc.load(path)
    msg = str(e.value)
    assert "(Clip)" in msg and "saturating" in msg and "use Relu" in msg and "\n" not in msg


class _MatMulAdd(nn.Module):
    """Dense layers as MatMul + Add (how many exporters write a biased dense layer)."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.w1 = nn.Parameter(torch.randn(16, 32) * 0.25)
        self.b1 = nn.Parameter(torch.randn(32) * 0.1)
        self.w2 = nn.Parameter(torch.randn(32, 4) * 0.2)
        self.b2 = nn.Parameter(torch.randn(4) * 0.1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(x @ self.w1 + self.b1) @ self.w2 + self.b2


def test_balanced_plan_treats_an_add_of_a_constant_as_a_bias(tmp_path):
    path = tmp_path / "mm.onnx"
    _export(_MatMulAdd(), (16,), path)
    assert "Add" in [n.op_type for n in onnx.load(str(path)).graph.node]
    g = slayerc.load(path, ramp="balanced")
    scale = next(n.scale for n in g if n.OP == "tensor.affine" and n.inputs == ("x",))
    hidden = next(n for n in g if n.OP == "synapse.dense")
    assert 64 * float(np.abs(g.param(hidden.weight)).max()) == pytest.approx(64 * scale, rel=0.1)
    x = torch.rand(3, 16)
    y = slayerc.interpret(g, _held(x, 8))[..., -1].detach().numpy()
    assert _rel(y, _ref(path, x)) < 0.01
