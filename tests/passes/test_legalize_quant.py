"""Semantic tests of ``legalize-quant`` and of the default pipeline on a float-trained conv net."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from examples.models import TorchCNN
from slayerc.frontend.trace import trace
from slayerc.ir import ops
from slayerc.ir.core import GraphBuilder
from slayerc.ir.target import LOIHI2, SLAYERC
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
    x = (torch.rand(4, 2, 16, 16, 200, generator=torch.Generator().manual_seed(1)) < 0.2).float()
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
    # steady-state neuron biases (legalize-layers warns); over 200 steps the transient costs
    # about 0.3 % (over 50 steps about 1.4 %: 98.2 %)
    assert 0.99 <= report.total < report.total_quant, report.table()


# ------------------------------------------------------------------ chip decay fields (loihi2)


def _neuron_net(op: type, **attrs):
    """io.input -> dense -> one neuron of ``op`` (complex weights for resonators) -> output."""
    b = GraphBuilder(facts={"shapes"})
    x = b.add(ops.Input, "x", shape=(3,))
    w = {"weight": b.param("w", np.eye(3, dtype=np.float32) / 32)}
    if op in (ops.RF, ops.RFIz):
        w["weight_imag"] = b.param("wi", np.eye(3, dtype=np.float32) / 32)
    fc = b.add(ops.Dense, "fc", [x], **w)
    n = b.add(op, "n", [fc], threshold=1.0, **{k: b.param(k, np.asarray(v, np.float64))
                                                 if np.ndim(v) else v for k, v in attrs.items()})
    b.add(ops.Output, "y", [n])
    return PassManager.from_string("shape-infer").run(b.build())


def _warnings(g, target: str = "loihi2") -> tuple[list[str], object]:
    pm = PassManager.from_string(f"legalize-quant{{target={target}}}")
    out = pm.run(g)
    return [w for r in pm.reports for w in r.warnings], out


def test_decays_netx_loads_outside_the_chip_fields_warn_naming_node_value_and_fix():
    g = _neuron_net(ops.Cuba, current_decay=0.0, voltage_decay=[1.0, 0.5, 1.0])
    warns, out = _warnings(g)
    assert len(warns) == 2
    assert warns[0].startswith("%n (neuron.cuba): current_decay 0 loads as du = -1 (1 of 1 "
                               "entries), outside the chip's unsigned decay field [0, 4095]")
    assert "the current never decays" in warns[0] and "[1/4096, 4096/4096]" in warns[0]
    assert warns[1].startswith("%n (neuron.cuba): voltage_decay 1 loads as dv = 4096 (2 of 3 "
                               "entries)")
    assert "Lava's Python simulation runs it" in warns[1] and "[0/4096, 4095/4096]" in warns[1]
    # a warning, not a change: netx and Lava's Python simulation run these values as they are
    assert out["n"] == g["n"] and np.array_equal(out.param("voltage_decay"), [1.0, 0.5, 1.0])
    assert _warnings(g, "slayerc")[0] == []  # no chip behind slayerc's own runtime


def test_decays_at_the_chip_field_limits_do_not_warn():
    g = _neuron_net(ops.Cuba, current_decay=[1 / 4096, 1.0, 0.5], voltage_decay=4095 / 4096)
    assert _warnings(g)[0] == []


def test_resonator_decays_outside_the_fields_warn():
    g = _neuron_net(ops.RF, sin_decay=[0.9, 0.1, -0.1], cos_decay=0.9)
    warns, _ = _warnings(g)
    assert len(warns) == 2
    assert warns[0].startswith("%n (neuron.rf): sin_decay -0.100098 loads as sin_decay = -410 "
                               "(1 of 3 entries)")
    assert warns[1].startswith("%n (neuron.rf): |(sin_decay, cos_decay)| 1.27")
    assert "the resonator does not decay" in warns[1] and "[0, 4095/4096]" in warns[1]
    # what slayer exports (vector length at most 4095) is fine
    ok = _neuron_net(ops.RFIz, sin_decay=2607 / 4096, cos_decay=[2607 / 4096, 0.0, 0.5])
    assert _warnings(ok)[0] == []


def test_neurons_the_target_cannot_hold_get_no_field_warning():
    # ALIF (and ADRF) cannot be loaded by netx: the loihi2 writer refuses them, so their
    # threshold/refractory decays have no chip field to fit
    g = _neuron_net(ops.Alif, current_decay=0.0, voltage_decay=1.0, threshold_decay=1.0,
                    refractory_decay=0.0)
    assert _warnings(g)[0] == []


def test_decay_field_limits_live_in_the_target():
    assert LOIHI2.decay_field_range == (0, 4095) and SLAYERC.decay_field_range is None
    (m,) = LOIHI2.decay_misfits({"current_decay": np.zeros(2), "voltage_decay": 0.5})
    assert (m.attr, m.field, m.field_value, m.count, m.size) == ("current_decay", "du", -1, 2, 2)
    wide = LOIHI2.replace(decay_field_range=(-1, 4096))
    assert wide.decay_misfits({"current_decay": 0.0, "voltage_decay": 1.0}) == []
