"""``lower-kwta``: the KWTA lateral connection as the dense synapse it computes (exact)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from slayerc.backends.files import save
from slayerc.driver import run_netlist
from slayerc.frontend.trace import trace
from slayerc.ir.parser import parse
from slayerc.passes import PassManager
from slayerc.passes.pipelines import default_pipeline
from slayerc.runtime.interpreter import interpret

BIASED = """slayerc.graph @bias {facts = ["shapes"]}
param @w : f32[5, 4] = splat(0.5)
%x = io.input() : f32[4]
%d = synapse.dense(%x) {weight = @w} : f32[5]
%fb = axon.shift(%n) : f32[5]
%lat = synapse.kwta(%fb) {num_winners = 1, self_excitation = 0.25, threshold = 8.0} : f32[5]
%sum = tensor.add(%d, %lat) : f32[5]
%n = neuron.cuba(%sum) {threshold = 0.5, current_decay = 0.5, voltage_decay = 0.25} : f32[5]
%y = io.output(%n) : f32[5]
"""


def _spikes(shape, seed=0) -> torch.Tensor:
    return (torch.rand(shape, generator=torch.Generator().manual_seed(seed)) < 0.3).float()


def test_lowered_kwta_with_a_bias_computes_the_same_spikes():
    g = parse(BIASED)  # b = 8·(5 − 2)/5/64 = 0.075 -> 0.0625 on the grid
    out = PassManager.from_string("lower-kwta").run(g)
    assert out["lat"].OP == "synapse.dense" and out["lat"].bias is not None
    x = _spikes((3, 4, 40))
    want = interpret(g, x)
    assert 0 < want.mean() < 1
    assert torch.equal(interpret(out, x), want)


def test_recurrent_kwta_example_compiles_to_a_netlist_that_runs_as_the_model(tmp_path: Path):
    from examples.models import RecurrentKWTA

    torch.manual_seed(0)
    model = RecurrentKWTA()
    x = _spikes((2, 20, 30))
    g = trace(model, x)
    lowered = PassManager.from_string("lower-kwta").run(g)
    assert not any(n.OP == "synapse.kwta" for n in lowered)
    want = interpret(g, x)
    assert want.sum() > 0
    assert torch.equal(interpret(lowered, x), want)
    path = tmp_path / "rk.net"
    save(PassManager.from_string(default_pipeline("loihi2")).run(g), path)
    np.testing.assert_array_equal(run_netlist(path, x.numpy()), want.numpy())
