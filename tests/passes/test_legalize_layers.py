"""Semantic tests of ``legalize-layers``: timing in Lava's form, synapse biases onto neurons."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import refcases
import torch

from slayerc.backends.files import load, save
from slayerc.driver import run_netlist
from slayerc.errors import PassError
from slayerc.frontend.trace import trace
from slayerc.ir import ops
from slayerc.ir.core import Graph, GraphBuilder
from slayerc.ir.printer import print_graph
from slayerc.passes import PassManager
from slayerc.passes.pipelines import default_pipeline
from slayerc.runtime.agreement import latencies
from slayerc.runtime.fixed import simulate
from slayerc.runtime.interpreter import interpret

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "backends"))
from test_hdf5_util import assert_same_datasets  # noqa: E402

LIF = {"threshold": 0.5, "current_decay": 0.25, "voltage_decay": 0.125}


def _run(g: Graph, pipeline: str = "legalize-layers") -> tuple[Graph, dict[str, float], list]:
    pm = PassManager.from_string(pipeline)
    out = pm.run(g)
    values = {k: v for r in pm.reports for k, v in r.values.items()}
    return out, values, [line for r in pm.reports for line in r.lines()]


def _spikes(shape, seed=0) -> torch.Tensor:
    return (torch.rand(shape, generator=torch.Generator().manual_seed(seed)) < 0.3).float()


def _pad(x: torch.Tensor, steps: int) -> torch.Tensor:
    return torch.cat([x, torch.zeros(*x.shape[:-1], steps)], -1)


def _rng_w(rng, *shape, scale=0.6):
    return (rng.normal(0, scale, shape)).astype(np.float32)


def _torch_style(bias: bool, decay: float = 0.25) -> Graph:
    """conv → cuba → flatten → dense → cuba → dense → cuba, no steps (a traced torch model)."""
    rng = np.random.default_rng(0)
    b = GraphBuilder(facts={"shapes"})
    lif = {**LIF, "current_decay": decay}
    x = b.add(ops.Input, "x", shape=(2, 6, 6))
    extra = {"bias": b.param("c.b", rng.normal(0, 0.2, 4).astype(np.float32))} if bias else {}
    c = b.add(ops.Conv, "c", [x], weight=b.param("c.w", _rng_w(rng, 4, 2, 3, 3)),
              padding=(1, 1), **extra)
    n1 = b.add(ops.Cuba, "n1", [c], **lif)
    f = b.add(ops.Flatten, "f", [n1])
    extra = {"bias": b.param("d.b", rng.normal(0, 0.2, 12).astype(np.float32))} if bias else {}
    d = b.add(ops.Dense, "d", [f], weight=b.param("d.w", _rng_w(rng, 12, 144, scale=0.3)),
              **extra)
    n2 = b.add(ops.Cuba, "n2", [d], **lif)
    d2 = b.add(ops.Dense, "d2", [n2], weight=b.param("d2.w", _rng_w(rng, 5, 12)))
    n3 = b.add(ops.Cuba, "n3", [d2], **lif)
    b.add(ops.Output, "y", [n3])
    return PassManager.from_string("shape-infer").run(b.build())


def test_bias_free_chain_gets_one_step_per_synapse_exactly():
    g = _torch_style(bias=False)
    out, values, _ = _run(g)
    holds = [n for n in out if n.OP == "axon.shift"]
    assert [out.users(h.name)[0].name for h in holds] == ["c", "d", "d2"]
    assert latencies(values) == {"n1": 1, "n2": 2, "n3": 3, "y": 3}
    x = _spikes((3, 2, 6, 6, 40))
    want = interpret(g, x)
    assert want.sum() > 0
    assert torch.equal(interpret(out, _pad(x, 3))[..., 3:], want)
    assert "layers-legal" in out.facts


def test_synapse_bias_moves_exactly_onto_a_neuron_whose_current_is_its_input():
    # already in Lava's form: only the bias moves, nothing else changes
    rng = np.random.default_rng(3)
    b = GraphBuilder(facts={"shapes"})
    x = b.add(ops.Input, "x", shape=(2, 6, 6))
    s = b.add(ops.Shift, "s", [x])
    c = b.add(ops.Conv, "c", [s], weight=b.param("c.w", _rng_w(rng, 4, 2, 3, 3)),
              bias=b.param("c.b", rng.normal(0, 0.3, 4).astype(np.float32)))
    b.add(ops.Cuba, "n", [c], bias=0.125, **{**LIF, "current_decay": 1.0})
    b.add(ops.Output, "y", ["n"])
    g = PassManager.from_string("shape-infer").run(b.build())
    out, values, lines = _run(g)
    assert out["c"].bias is None and out["n"].bias is not None
    assert values == {}  # no timing change
    assert any("current_decay 1: exact" in line for line in lines)
    x = _spikes((2, 2, 6, 6, 30), seed=1)
    want = interpret(g, x)
    assert 0 < want.mean() < 1
    assert torch.equal(interpret(out, x), want)


def test_per_neuron_decays_give_a_per_neuron_bias():
    rng = np.random.default_rng(4)
    b = GraphBuilder(facts={"shapes"})
    x = b.add(ops.Input, "x", shape=(6,))
    s = b.add(ops.Shift, "s", [x])
    d = b.add(ops.Dense, "d", [s], weight=b.param("w", _rng_w(rng, 3, 6)),
              bias=b.param("b", np.array([0.5, -1.0, 2.0], np.float32)))
    b.add(ops.Cuba, "n", [d], threshold=1.0, voltage_decay=0.0,
          current_decay=b.param("du", np.array([0.5, 0.25, 1.0], np.float32)))
    b.add(ops.Output, "y", ["n"])
    out, _, _ = _run(PassManager.from_string("shape-infer").run(b.build()))
    np.testing.assert_array_equal(out.param(out["n"].bias), [1.0, -4.0, 2.0])


def test_steady_state_bias_is_what_the_float_current_approaches():
    """b/αu: after the transient the moved bias drives the voltage as the synapse bias did."""
    b = GraphBuilder(facts={"shapes"})
    x = b.add(ops.Input, "x", shape=(1,))
    s = b.add(ops.Shift, "s", [x])
    d = b.add(ops.Dense, "d", [s], weight=b.param("w", np.zeros((1, 1), np.float32)),
              bias=b.param("b", np.array([0.25], np.float32)))
    b.add(ops.Cuba, "n", [d], threshold=1000.0, current_decay=0.5, voltage_decay=1.0,
          graded=True)
    b.add(ops.Output, "y", ["n"])
    g = PassManager.from_string("shape-infer").run(b.build())
    out, _, lines = _run(g)
    assert any("steady state" in line and "warning" in line for line in lines)
    assert out.param(out["n"].bias).tolist() == [0.5]
    with pytest.raises(PassError, match="exact=true forbids this"):
        PassManager.from_string("legalize-layers{exact=true}").run(g)


def _input_block_graph() -> Graph:
    """slayer Input block + two Dense blocks with (mean-only norm) biases: x → n0 → shift → …"""
    rng = np.random.default_rng(5)
    b = GraphBuilder(facts={"shapes"})
    x = b.add(ops.Input, "x", shape=(8,))
    prev = b.add(ops.Cuba, "n0", [x], threshold=0.5, current_decay=1.0, voltage_decay=1.0)
    prev = b.add(ops.Shift, "s0", [prev])
    for i, width in enumerate((10, 4), start=1):
        d = b.add(ops.Dense, f"d{i}", [prev], weight=b.param(f"w{i}", _rng_w(rng, width, 8 if
                                                                              i == 1 else 10)))
        n = b.add(ops.Cuba, f"n{i}", [d], bias=b.param(f"b{i}", rng.normal(0, 0.1, width)
                                                       .astype(np.float32)), **LIF)
        prev = b.add(ops.Shift, f"s{i}", [n])
    b.add(ops.Output, "y", [prev])
    return PassManager.from_string("shape-infer").run(b.build())


def test_slayer_blocks_behind_an_input_block_keep_their_biases_exact():
    g = _input_block_graph()
    out, values, lines = _run(g)
    assert not [line for line in lines if line.startswith("warning")]
    assert latencies(values) == {"n0": 0, "n1": 0, "n2": 0, "y": -1}
    x = _spikes((2, 8, 40), seed=2)
    want = interpret(g, x)
    assert want.sum() > 0
    assert torch.equal(interpret(out, x)[..., :-1], want[..., 1:])


def test_lava_dl_mean_only_norm_net_compiles_to_lava_dls_own_netlist(tmp_path: Path):
    """cuba_norm: the written file is lava-dl's export, and it computes spec §7's head-start."""
    net, x = refcases.build("cuba_norm")
    g = trace(net, x)
    out, values, lines = _run(g, default_pipeline("loihi2"))
    assert sum("bias head-start" in line for line in lines) == 2
    assert latencies(values)["output"] == 0
    path = tmp_path / "norm.net"
    save(out, path)
    assert_same_datasets(path, refcases.REF_DIR / "cuba_norm.net")
    # spec §7: Lava's output = slayer's on the input with one zero frame in front
    with torch.no_grad():
        slayer_late = net(torch.cat([torch.zeros(*x.shape[:-1], 1), x], -1))[..., 1:]
    got = run_netlist(path, x[0].numpy())
    assert got.sum() > 0
    np.testing.assert_array_equal(got, slayer_late[0].numpy())
    np.testing.assert_array_equal(interpret(out, x)[0].numpy(), got)


def test_sdnn_and_bias_free_slayer_chains_are_left_alone():
    for case in ("sdnn_dense", "cuba_dense", "cuba_delay"):
        net, x = refcases.build(case)
        g = PassManager.from_string("shape-infer").run(trace(net, x))
        out, values, _ = _run(g)
        assert print_graph(out) == print_graph(g.replace(facts=out.facts)), case
        assert values == {}


def test_a_chain_with_delays_that_needs_new_steps_is_left_with_a_warning():
    b = GraphBuilder(facts={"shapes"})
    x = b.add(ops.Input, "x", shape=(4,))
    d = b.add(ops.Dense, "d", [x], weight=b.param("w", np.eye(4, dtype=np.float32)))
    n = b.add(ops.Cuba, "n", [d], **LIF)
    dl = b.add(ops.Delay, "dl", [n], delay=3)
    d2 = b.add(ops.Dense, "d2", [dl], weight=b.param("w2", np.eye(4, dtype=np.float32)))
    b.add(ops.Cuba, "n2", [d2], **LIF)
    b.add(ops.Output, "y", ["n2"])
    g = PassManager.from_string("shape-infer").run(b.build())
    out, _, lines = _run(g)
    assert any("left the layer timing as it is" in line for line in lines)
    assert "layers-legal" not in out.facts
    assert print_graph(out) == print_graph(g)


def test_fixed_point_of_the_legalized_chain_follows_its_float_interpreter():
    """On the quantization grid, the Lava-form graph runs the same in float and fixed point."""
    g = _torch_style(bias=True, decay=1.0)
    out, _, _ = _run(g, "legalize-layers,legalize-quant")
    x = _spikes((2, 2, 6, 6, 30), seed=3)
    fixed = simulate(out, x)["y"]
    assert fixed.sum() > 0
    np.testing.assert_array_equal(fixed, interpret(out, x).numpy())


def test_torch_cnn_with_batchnorm_compiles_to_a_loihi2_netlist(tmp_path: Path):
    """The BatchNorm conv net writes a netlist whose file runs as the compiled graph does."""
    from examples.models import TorchCNN

    torch.manual_seed(0)
    model = TorchCNN().eval()
    x = _spikes((1, 2, 16, 16, 30), seed=4)
    out, values, _ = _run(trace(model, x), default_pipeline("loihi2"))
    assert latencies(values)["output"] == 3
    assert not any(getattr(n, "bias", None) is not None for n in out if n.OP.startswith("syn"))
    path = tmp_path / "cnn.net"
    save(out, path)
    got = run_netlist(path, x[0].numpy(), input_shape=(2, 16, 16))
    np.testing.assert_array_equal(got, simulate(out, x[0])["output"])
    assert got.sum() > 0
    assert load(path, input_shape=(2, 16, 16)) is not None


@pytest.mark.parametrize("case", ["cuba_input", "cuba_conv", "cuba_delay", "cuba_rec"])
def test_graphs_read_from_netlists_are_already_in_lava_form(case: str):
    from test_hdf5_util import INPUT_SHAPES

    shape = INPUT_SHAPES.get(case)
    g = load(refcases.REF_DIR / f"{case}.net", **({"input_shape": shape} if shape else {}))
    out, values, lines = _run(PassManager.from_string("shape-infer").run(g))
    assert print_graph(out.replace(facts=g.facts)) == print_graph(g.replace(facts=g.facts))
    assert values == {} and not lines


def test_alif_takes_a_synapse_bias_exactly_whatever_its_current_decay():
    """slayer's ALIF adds its bias to the input (where its norm acts), as the synapse did."""
    rng = np.random.default_rng(6)
    b = GraphBuilder(facts={"shapes"})
    x = b.add(ops.Input, "x", shape=(6,))
    s = b.add(ops.Shift, "s", [x])
    d = b.add(ops.Dense, "d", [s], weight=b.param("w", _rng_w(rng, 4, 6)),
              bias=b.param("b", np.array([0.25, -0.5, 0.125, 0.0], np.float32)))
    b.add(ops.Alif, "n", [d], threshold=0.5, current_decay=0.25, voltage_decay=0.125,
          threshold_step=0.25, threshold_decay=0.1, refractory_decay=0.2)
    b.add(ops.Output, "y", ["n"])
    g = PassManager.from_string("shape-infer").run(b.build())
    out, _, lines = _run(g)
    assert any("ALIF adds it to the input: exact" in line for line in lines)
    np.testing.assert_array_equal(out.param(out["n"].bias), [0.25, -0.5, 0.125, 0.0])
    x = _spikes((2, 6, 40), seed=7)
    want = interpret(g, x)
    assert 0 < want.mean() < 1
    assert torch.equal(interpret(out, x), want)


def _sdnn_chain(bias: bool) -> Graph:
    """delta → dense → sigma_delta(bias?) → dense → sigma_delta → sigma: lava-dl's stepless
    SDNN form."""
    rng = np.random.default_rng(1)
    b = GraphBuilder(facts={"shapes"})
    x = b.add(ops.Input, "x", shape=(6,))
    d = b.add(ops.Delta, "enc", [x], threshold=1 / 64)
    s1 = b.add(ops.Dense, "d1", [d], weight=b.param("w1", _rng_w(rng, 8, 6, scale=0.4)))
    extra = {"bias": b.param("n1.b", rng.normal(0, 0.2, 8).astype(np.float32))} if bias else {}
    n1 = b.add(ops.SigmaDelta, "n1", [s1], threshold=1 / 64, **extra)
    s2 = b.add(ops.Dense, "d2", [n1], weight=b.param("w2", _rng_w(rng, 3, 8, scale=0.4)))
    n2 = b.add(ops.SigmaDelta, "n2", [s2], threshold=1 / 64, activation="identity")
    sig = b.add(ops.Sigma, "dec", [n2])
    b.add(ops.Output, "y", [sig])
    return PassManager.from_string("shape-infer").run(b.build())


def test_biased_sdnn_chain_moves_to_lava_form_and_settles_to_the_same_values():
    g = _sdnn_chain(bias=True)
    out, values, lines = _run(g)
    syns = [n for n in out if n.OP == "synapse.dense"]
    assert all(out[s.inputs[0]].OP == "axon.shift" for s in syns)
    assert values["y.latency"] == 2.0 and values["n1.latency"] == 1.0
    assert sum("bias head-start" in line and "%n1" in line for line in lines) == 1
    x = torch.rand(1, 6, 1, generator=torch.Generator().manual_seed(0)).repeat(1, 1, 40)
    want, got = interpret(g, x)[..., -1], interpret(out, x)[..., -1]
    torch.testing.assert_close(got, want, atol=3 / 64, rtol=0)  # a few thresholds: settled
    assert want.abs().max() > 0.1
    plain, _, _ = _run(_sdnn_chain(bias=False))
    assert not any(n.OP == "axon.shift" for n in plain)  # no bias: lava-dl's form stays
