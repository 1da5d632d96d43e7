"""Semantic tests of ``legalize-delay``: equal spikes before and after, float and fixed point."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import slayerc.slayer as slayer
from slayerc.backends import hdf5
from slayerc.driver import run_netlist
from slayerc.errors import PassError
from slayerc.frontend.trace import trace
from slayerc.ir import ops
from slayerc.ir.core import GraphBuilder, ParamRef
from slayerc.passes import PassManager
from slayerc.runtime.fixed import simulate
from slayerc.runtime.interpreter import interpret

P = {"threshold": 0.5, "current_decay": 0.25, "voltage_decay": 0.125}


def _long_delay_net(delays: np.ndarray):
    """cuba Dense 8→6 (axonal delays) → Dense 6→4, traced, with ``delays`` on the first block."""
    torch.manual_seed(0)
    net = torch.nn.Sequential(slayer.block.cuba.Dense(P, 8, 6, weight_scale=4, delay=True),
                              slayer.block.cuba.Dense(P, 6, 4, weight_scale=4))
    x = (torch.rand(3, 8, 260, generator=torch.Generator().manual_seed(1)) < 0.3).float()
    g = trace(net, x)
    return g.replace(params={**g.params, "0.delay": delays.astype(np.float64)}), x


def test_150_step_delay_keeps_spikes_and_writes_for_loihi2(tmp_path):
    g, x = _long_delay_net(np.array([2, 30, 60, 100, 150, 149]))
    out = PassManager.from_string("legalize-delay{max=62}").run(g)
    assert "delays-legal" in out.facts
    assert max(int(np.max(out.param(n.delay))) if not isinstance(n.delay, int) else n.delay
               for n in out if n.OP == "axon.delay") <= 62
    name = g.outputs[0].name
    before = simulate(g, x.numpy())[name]
    after = simulate(out, x.numpy())[name]
    assert before.sum() > 0 and np.array_equal(before, after)
    assert torch.equal(interpret(g, x), interpret(out, x))
    path = tmp_path / "long.net"
    hdf5.write(out, path, target="loihi2")
    assert np.array_equal(run_netlist(path, x.numpy()), after)


def test_float_delays_are_floored():
    g, x = _long_delay_net(np.array([0.5, 1.9, 2.2, 3.0, 61.99, 0.0]))
    out = PassManager.from_string("legalize-delay").run(g)
    assert np.array_equal(out.param("0.delay"), [0, 1, 2, 3, 61, 0])


def test_short_channel_is_rejected():
    g, _ = _long_delay_net(np.array([1, 150, 0, 0, 0, 0]))
    with pytest.raises(PassError, match="some channel has delay 0"):
        PassManager.from_string("legalize-delay").run(g)


def _conv_net(delay, lava_dense: bool):
    """conv → cuba → shift → delay → flatten → [shift] → dense → cuba (→ shift)."""
    rng = np.random.default_rng(3)
    b = GraphBuilder(facts={"shapes"})
    x = b.add(ops.Input, "x", shape=(1, 4, 4))
    k = b.param("k", (rng.integers(-4, 8, (2, 1, 3, 3)) / 4).astype(np.float32))
    c = b.add(ops.Conv, "c", [x], weight=k, padding=(1, 1))
    cn = b.add(ops.Cuba, "cn", [c], threshold=0.5, current_decay=0.5, voltage_decay=0.25)
    cs = b.add(ops.Shift, "cs", [cn])
    cd = b.add(ops.Delay, "cd", [cs], delay=b.param("cd.delay", np.asarray(delay, np.float32)))
    f = b.add(ops.Flatten, "f", [cd])
    if lava_dense:
        f = b.add(ops.Shift, "fs", [f])
    w = b.param("w", (rng.integers(-8, 16, (3, 32)) / 16).astype(np.float32))
    fc = b.add(ops.Dense, "fc", [f], weight=w)
    n = b.add(ops.Cuba, "n", [fc], threshold=0.5, current_decay=0.5, voltage_decay=0.25)
    if not lava_dense:
        n = b.add(ops.Shift, "ns", [n])
    b.add(ops.Output, "y", [n])
    g = PassManager.from_string("shape-infer").run(b.build())
    xin = (np.random.default_rng(4).random((2, 1, 4, 4, 40)) < 0.4).astype(np.float32)
    return g, xin


@pytest.mark.parametrize("delay,lava", [([3.0, 3.0], False), ([3.0, 3.0], True),
                                        ([1.0, 4.0], True)])
def test_conv_delays_move_to_the_dense_layer(delay, lava):
    g, x = _conv_net(delay, lava)
    out = PassManager.from_string("legalize-delay").run(g)
    assert all(n.OP != "axon.delay" or n.inputs[0] not in ("cs",) for n in out)
    assert np.array_equal(simulate(g, x)["y"], simulate(out, x)["y"])
    assert simulate(g, x)["y"].sum() > 0
    assert torch.equal(interpret(g, x), interpret(out, x))


def test_unequal_conv_delays_become_columns_of_a_slayer_form_dense(tmp_path):
    """conv → cuba → shift → delay [1, 4] → flatten → dense → cuba → shift (slayer blocks): the
    per-channel delays become the dense layer's per-column delays right before it; exact in
    fixed point and float, and the netlist (netx: one delay per input column) runs the same."""
    g, x = _conv_net([1.0, 4.0], lava_dense=False)
    out = PassManager.from_string("legalize-delay").run(g)
    moved = out["cd"]
    assert moved.inputs == ("f",) and [u.name for u in out.users("cd")] == ["fc"]
    assert np.array_equal(out.param(moved.delay), np.repeat([1.0, 4.0], 16))
    want = simulate(g, x)["y"]
    assert want.sum() > 0 and np.array_equal(simulate(out, x)["y"], want)
    undelayed, _ = _conv_net([0.0, 0.0], lava_dense=False)
    assert not np.array_equal(simulate(undelayed, x)["y"], want)  # the delays matter
    assert torch.equal(interpret(g, x), interpret(out, x))
    path = tmp_path / "cols.net"
    hdf5.write(PassManager.from_string("legalize-quant").run(out), path, target="loihi2")
    written = hdf5.read(path, input_shape=(1, 4, 4))
    delay = next(n for n in written if n.OP == "axon.delay")
    assert written.users(delay.name)[0].OP == "synapse.dense"
    assert np.array_equal(written.param(delay.delay), np.repeat([1, 4], 16))
    assert np.array_equal(run_netlist(path, x[0], input_shape=(1, 4, 4)), want[0])


def test_an_equal_own_delay_of_the_dense_layer_joins_the_columns(tmp_path):
    """The dense layer's own output delay of 2 (equal for every output) is 2 more steps on
    every input column: it merges into the moved column delays, one vector, exact."""
    g, x = _conv_net([1.0, 4.0], lava_dense=False)
    g = _own_delay(g, 2)
    out = PassManager.from_string("legalize-delay").run(g)
    assert "nd" not in out.nodes
    assert np.array_equal(out.param(out["cd"].delay), np.repeat([3.0, 6.0], 16))
    want = simulate(g, x)["y"]
    assert want.sum() > 0 and np.array_equal(simulate(out, x)["y"], want)
    path = tmp_path / "merged.net"
    hdf5.write(PassManager.from_string("legalize-quant").run(out), path, target="loihi2")
    assert np.array_equal(run_netlist(path, x[0], input_shape=(1, 4, 4)), want[0])


def _own_delay(g, delay):
    """The slayer-form dense layer of ``_conv_net`` with a delay of its own after its shift."""
    from slayerc.passes import shape_infer

    nodes, params = dict(g.nodes), dict(g.params)
    if not isinstance(delay, int):
        params["nd.delay"] = np.asarray(delay, np.float32)
        delay = ParamRef("nd.delay")
    nodes["nd"] = ops.Delay(name="nd", inputs=("ns",), delay=delay)
    nodes["y"] = g["y"].replace(inputs=("nd",))
    nodes["y"] = nodes.pop("y")  # keep the output last
    return shape_infer.run(g.replace(nodes=nodes, params=params))


@pytest.mark.parametrize("case,match", [
    ("own", r"but it carries a delay of its own that differs per output \(%nd \(axon.delay\)\), "
            r"a netlist layer holds one delay vector, and that one cannot go to the next "
            r"layer's input columns instead: %nd \(axon.delay\) does not feed a dense layer "
            r"directly; make the delays equal, remove them or use target slayerc"),
    ("square", r"but it has as many input as output features \(32\)"),
])
def test_unequal_conv_delays_without_a_column_form_are_refused_by_name(case, match):
    g, _ = _conv_net([1.0, 4.0], lava_dense=False)
    if case == "own":
        g = _own_delay(g, [3.0, 0.0, 1.0])
    else:
        w = np.full((32, 32), 0.25, np.float32)  # 32 → 32: netx would read 32 delays per row
        g = g.replace(params={**g.params, "w": w},
                      nodes=[n.replace(shape=(32,)) if n.name in ("fc", "n", "ns", "y") else n
                             for n in g])
    with pytest.raises(PassError, match=r"%cd \(axon.delay\): target loihi2 cannot hold a "
                                        r"delay on a synapse.conv layer .*per-column input "
                                        r"delays of the next dense layer %fc, " + match):
        PassManager.from_string("legalize-delay").run(g)
    out = PassManager.from_string("legalize-delay{target=slayerc}").run(g)
    assert out["cd"].max_delay == 62


def _pool_conv_net():
    """Pool → Conv(delays) → Pool → Flatten → Dense(delays) → Dense, as NMNIST models are."""
    torch.manual_seed(0)
    p = {"threshold": 0.5, "current_decay": 0.25, "voltage_decay": 0.125}
    return torch.nn.Sequential(
        slayer.block.cuba.Pool(p, 2),
        slayer.block.cuba.Conv(p, 2, 6, 3, padding=1, weight_scale=3, delay=True),
        slayer.block.cuba.Pool(p, 2),
        slayer.block.cuba.Flatten(),
        slayer.block.cuba.Dense(p, 96, 8, weight_scale=3, delay=True),
        slayer.block.cuba.Dense(p, 8, 4, weight_scale=3))


def _with_delays(conv_delay, dense_delay):
    g = trace(_pool_conv_net(), torch.zeros(1, 2, 16, 16, 160))
    return g.replace(params={**g.params, "1.delay": np.asarray(conv_delay, np.float64),
                             "4.delay": np.asarray(dense_delay, np.float64)})


def _up_to_legalize_delay(g):
    from slayerc.passes.pipelines import default_pipeline

    full = default_pipeline("loihi2", True)
    return PassManager.from_string(full[:full.index("legalize-delay")].rstrip(",")).run(g)


def test_conv_delay_moves_through_pools_exactly_and_compiles_for_loihi2(tmp_path):
    """A conv block's delay commutes with the sum pool after it (a per-channel linear op, as a
    depthwise conv after lower-pool), so it reaches the dense layer: the result is exact and
    writes a loihi2 netlist; the dense layer's own delays up to 130 get relays (the same net
    runs in netx + Lava equal to slayerc: tools/lavaref_check.py)."""
    from slayerc.driver import save

    g = _up_to_legalize_delay(_with_delays(np.full(6, 7.0),
                                           [9, 2, 22, 106, 85, 119, 65, 130]))
    after = PassManager.from_string("legalize-delay{max=62,target=loihi2}").run(g)
    assert not [n for n in after if n.OP == "axon.delay" and after.users(n.name)
                and after.users(n.name)[0].OP == "synapse.conv"]
    x = (torch.rand(2, 2, 16, 16, 160, generator=torch.Generator().manual_seed(1)) < 0.3).float()
    want = interpret(g, x)
    assert want.sum() > 0 and torch.equal(interpret(after, x), want)
    final = PassManager.from_string("legalize-quant{target=loihi2}").run(after)
    save(final, tmp_path / "pool_delay.net")
    assert (tmp_path / "pool_delay.net").stat().st_size > 0


def test_per_channel_conv_delays_pass_a_pool_onto_dense_columns_exactly(tmp_path):
    """Pool → Conv(a different delay per channel) → Pool → Flatten → Dense → Dense, slayer blocks
    (the dense block's own delays all 0, which canonicalize drops): the conv delays pass the
    pool block and the flatten and become the dense layer's 96 column delays.  Fixed point and
    float agree before and after, and so does the written netlist (Lava too:
    tools/lavaref_check.py --only 'compile Pool-Conv(per-channel')."""
    conv = np.array([0, 3, 7, 1, 12, 5], np.float64)
    g = _up_to_legalize_delay(_with_delays(conv, np.zeros(8)))
    after = PassManager.from_string("legalize-delay{max=62,target=loihi2}").run(g)
    (moved,) = [n for n in after if n.OP == "axon.delay"]
    assert after[moved.inputs[0]].OP == "tensor.flatten"
    assert [u.OP for u in after.users(moved.name)] == ["synapse.dense"]
    assert np.array_equal(after.param(moved.delay), np.repeat(conv, 16))
    x = (torch.rand(2, 2, 16, 16, 160, generator=torch.Generator().manual_seed(1)) < 0.3).float()
    want = simulate(g, x.numpy())
    name = g.outputs[0].name
    assert want[name].sum() > 0 and np.array_equal(simulate(after, x.numpy())[name], want[name])
    assert torch.equal(interpret(after, x), interpret(g, x))
    flat = _up_to_legalize_delay(_with_delays(np.zeros(6), np.zeros(8)))
    assert not np.array_equal(simulate(flat, x.numpy())[name], want[name])  # delays matter
    final = PassManager.from_string("legalize-quant{target=loihi2}").run(after)
    path = tmp_path / "pool_channels.net"
    hdf5.write(final, path, target="loihi2")
    got = run_netlist(path, x[0].numpy(), input_shape=(2, 16, 16))
    assert np.array_equal(got, simulate(final, x[0].numpy())[final.outputs[0].name])


def test_per_channel_conv_delays_beside_the_dense_layers_own_per_output_delays(tmp_path):
    """Pool → Conv(a delay per channel) → Pool → Flatten → Dense(its own delay per output) →
    Dense: the conv delays become the first dense layer's column delays, so its own delays
    (the same wait on its output axons) go to the next dense layer's input columns in the
    netlist.  Float, fixed point and the written netlist agree with the graph before the pass;
    without either delay the output differs."""
    conv = np.array([0, 3, 7, 1, 12, 5], np.float64)
    own = np.array([4, 0, 9, 2, 30, 1, 6, 11], np.float64)
    g = _up_to_legalize_delay(_with_delays(conv, own))
    after = PassManager.from_string("legalize-delay{max=62,target=loihi2}").run(g)
    x = (torch.rand(2, 2, 16, 16, 160, generator=torch.Generator().manual_seed(1)) < 0.3).float()
    name = g.outputs[0].name
    want = simulate(g, x.numpy())[name]
    assert want.sum() > 0 and np.array_equal(simulate(after, x.numpy())[name], want)
    assert torch.equal(interpret(after, x), interpret(g, x))
    for c, o in ((np.zeros(6), own), (conv, np.zeros(8))):
        other = _up_to_legalize_delay(_with_delays(c, o))
        assert not np.array_equal(simulate(other, x.numpy())[name], want)  # both delays matter
    final = PassManager.from_string("legalize-quant{target=loihi2}").run(after)
    path = tmp_path / "pool_channels_own.net"
    hdf5.write(final, path, target="loihi2")
    import h5py

    with h5py.File(path) as f:  # the own delays sit in the next dense layer, one per column
        delays = {k: f[f"layer/{k}/delay"][()] for k in f["layer"] if "delay" in f[f"layer/{k}"]}
    assert sorted(len(v) for v in delays.values()) == [8, 96]
    assert any(np.array_equal(v, own) for v in delays.values())
    got = run_netlist(path, x[0].numpy(), input_shape=(2, 16, 16))
    assert np.array_equal(got, simulate(final, x[0].numpy())[final.outputs[0].name])
    assert np.array_equal(got, want[0])


def test_per_neuron_delays_that_differ_within_a_channel_do_not_pass_a_pool():
    g = _up_to_legalize_delay(_with_delays(np.full(6, 3.0), np.zeros(8)))
    d = np.zeros((6, 8, 8))
    d[0, 0, 0] = 5  # one neuron of channel 0 waits longer: pooling would mix it
    node = next(n for n in g if n.OP == "axon.delay" and n.shape == (6, 8, 8))
    g = g.replace(params={**g.params, node.delay.name: d})
    with pytest.raises(PassError, match="differ within a channel"):
        PassManager.from_string("legalize-delay{max=62,target=loihi2}").run(g)
