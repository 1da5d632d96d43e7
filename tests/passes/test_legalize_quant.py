"""Semantic tests of ``legalize-quant`` and of the default pipeline on a float-trained conv net."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from examples.models import TorchCNN
from slayerc.frontend.trace import trace
from slayerc.ir import ops
from slayerc.ir.core import GraphBuilder
from slayerc.passes import REGISTRY, PassManager
from slayerc.passes.legalize_quant import layer_errors
from slayerc.passes.pipelines import default_pipeline
from slayerc.runtime.agreement import latencies, quant_report
from slayerc.runtime.fixed import simulate
from slayerc.runtime.interpreter import interpret


def _dense(weights: np.ndarray, threshold: float):
    b = GraphBuilder(facts={"shapes"})
    x = b.add(ops.Input, "x", shape=(weights.shape[1],))
    fc = b.add(ops.Dense, "fc", [x], weight=b.param("w", weights.astype(np.float32)))
    n = b.add(ops.Cuba, "n", [fc], threshold=threshold, current_decay=0.25, voltage_decay=0.125)
    b.add(ops.Output, "y", [n])
    return PassManager.from_string("shape-infer").run(b.build())


def _spikes(shape, seed=0):
    return (np.random.default_rng(seed).random(shape) < 0.3).astype(np.float32)


def test_on_grid_graph_is_unchanged():
    w = np.random.default_rng(0).integers(-128, 128, (6, 10)) / 32
    g = _dense(w, 1.25)
    out = PassManager.from_string("legalize-quant").run(g)
    assert np.array_equal(out.param("w"), g.param("w")) and out["n"] == g["n"]


def test_power_of_two_exponent_is_exact_in_float():
    w = np.random.default_rng(1).integers(-128, 128, (6, 10)) / 32 * 4  # needs exponent +2
    g = _dense(w, 4.0)
    out = PassManager.from_string("legalize-quant").run(g)
    assert layer_errors(g, out)["fc"] == (2, 0.0, 0.0)
    x = _spikes((2, 10, 50))
    assert torch.equal(interpret(g, x), interpret(out, x))
    assert np.array_equal(simulate(out, x)["y"], interpret(out, x).numpy())


def test_float_weights_get_a_finer_grid_and_fixed_point_follows_float():
    w = np.random.default_rng(2).normal(0, 0.2, (16, 20))
    g = _dense(w, 0.5)
    out = PassManager.from_string("legalize-quant").run(g)
    e, max_err, _ = layer_errors(g, out)["fc"]
    assert e < 0 and max_err <= 2 / 64 * 2.0 ** e / 2 + 1e-9
    x = _spikes((4, 20, 60))
    assert np.array_equal(simulate(out, x)["y"], interpret(out, x).numpy())  # on the grid


needs_p1 = pytest.mark.skipif(not {"canonicalize", "fold-batchnorm",
                                   "sparsify-masks"} <= set(REGISTRY),
                              reason="the default pipeline needs P1's passes")


@needs_p1
def test_float_trained_cnn_with_batchnorm_default_pipeline():
    torch.manual_seed(0)
    model = TorchCNN()
    with torch.no_grad():
        for bn in (model.bn1, model.bn2):
            bn.running_mean.uniform_(-0.2, 0.2)
            bn.running_var.uniform_(0.5, 2.0)
            bn.weight.uniform_(0.5, 1.5)
            bn.bias.uniform_(-0.1, 0.1)
    model.eval()
    x = (torch.rand(4, 2, 16, 16, 50, generator=torch.Generator().manual_seed(1)) < 0.2).float()
    g = trace(model, x)
    pm = PassManager.from_string(default_pipeline("loihi2"))
    out = pm.run(g)
    assert {"bn-folded", "delays-legal", "quant-legal"} <= out.facts
    assert not any(n.OP == "norm.batch" for n in out)
    values = next(r for r in pm.reports if r.pass_name == "legalize-quant").values
    assert {"conv1.max_err", "conv2.rms_err", "fc.exp"} <= set(values)
    lat = latencies(next(r for r in pm.reports if r.pass_name == "legalize-layers").values)
    assert lat == {"lif1": 1, "lif2": 2, "lif3": 3, "output": 3}
    report = quant_report(g, out, x, values, lat, pm.inputs["legalize-quant"])
    assert set(report.agreement) == {"lif1", "lif2", "lif3"}
    # quantization alone: fixed point vs the float interpreter on the same (Lava-form) graph
    assert report.total_quant >= 0.99, report.table()
    # end to end vs the traced model: the folded BatchNorm biases on a decaying current become
    # steady-state neuron biases (legalize-layers warns), which costs about 1 % here
    assert 0.97 <= report.total < report.total_quant, report.table()
