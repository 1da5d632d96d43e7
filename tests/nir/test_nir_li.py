"""NIR's LI and CubaLI (non-spiking leaky integrators) as the IR's ``neuron.li`` family."""

from __future__ import annotations

import numpy as np
import pytest
import torch

nir = pytest.importorskip("nir")

import slayerc  # noqa: E402
from slayerc import driver  # noqa: E402
from slayerc.backends.nir_export import to_nir  # noqa: E402
from slayerc.errors import BackendError  # noqa: E402
from slayerc.frontend.nir_import import from_nir  # noqa: E402
from slayerc.ir import ops  # noqa: E402
from slayerc.ir.core import GraphBuilder  # noqa: E402
from slayerc.passes import PassManager  # noqa: E402

N_IN, N_OUT, STEPS = 10, 6, 60


def _weights(seed=0):
    rng = np.random.default_rng(seed)
    return (rng.integers(-40, 80, size=(N_OUT, N_IN)) / 64).astype(np.float32)


def _spikes(seed=1, n=4):
    rng = np.random.default_rng(seed)
    return (rng.random((n, N_IN, STEPS)) < 0.3).astype(np.float32)


def _graph(neuron):
    return nir.NIRGraph(nodes={
        "in": nir.Input(input_type={"input": np.array([N_IN])}),
        "fc": nir.Linear(weight=_weights()), "li": neuron,
        "out": nir.Output(output_type={"output": np.array([N_OUT])})},
        edges=[("in", "fc"), ("fc", "li"), ("li", "out")])


def _reference(x, w, dt, tau_mem, r, v_leak, tau_syn=None, w_in=1.0, norse=False):
    """NIR's equations, forward Euler at dt, current before voltage, output v (no spike)."""
    n = x.shape[0]
    i = np.zeros((n, w.shape[0]))
    v = np.zeros((n, w.shape[0]))
    out = np.zeros((n, w.shape[0], x.shape[-1]))
    for t in range(x.shape[-1]):
        s = x[:, :, t] @ w.T.astype(np.float64)
        if tau_syn is None:
            i = s
        else:
            i = i - dt / tau_syn * i + (w_in * s if norse else dt / tau_syn * w_in * s)
        v = v + dt / tau_mem * (v_leak - v + r * i)
        out[:, :, t] = v
    return out


def _close(y, ref):
    err = np.abs(y - ref).max()
    scale = np.abs(ref).max()
    assert scale > 1.0
    assert err <= 3e-4 * scale, (err, scale)  # measured: 0.5e-4 .. 1.1e-4


@pytest.mark.parametrize("r,v_leak", [(8.0, 0.0), (3.0, 0.5)])
def test_li_matches_nir_equations(r, v_leak):
    dt, tau = 1e-3, 8e-3  # dt/τ = 1/8: on the 12-bit decay grid
    li = nir.LI(tau=np.full(N_OUT, tau), r=np.full(N_OUT, r), v_leak=np.full(N_OUT, v_leak))
    g = from_nir(_graph(li), dt=dt)
    node = next(n for n in g if n.OP == "neuron.li")
    assert node.current_decay == 1.0 and node.voltage_decay == pytest.approx(1 / 8)
    x = _spikes()
    y = slayerc.interpret(g, torch.tensor(x)).numpy()
    ref = _reference(x.astype(np.float64), _weights(), dt, tau, r, v_leak)
    _close(y, ref)
    # the tolerance sees a 10 % gain error
    off = _reference(x.astype(np.float64), _weights(), dt, tau, 1.1 * r, v_leak)
    assert np.abs(y - off).max() > 3e-4 * np.abs(ref).max()


@pytest.mark.parametrize("convention", ["euler", "norse"])
def test_cuba_li_matches_nir_equations(convention):
    dt, tau_syn, tau_mem, w_in = 1e-3, 4e-3, 16e-3, 2.0
    cl = nir.CubaLI(tau_syn=np.full(N_OUT, tau_syn), tau_mem=np.full(N_OUT, tau_mem),
                    r=np.full(N_OUT, 16.0), v_leak=np.full(N_OUT, -0.25),
                    w_in=np.full(N_OUT, w_in))
    g = from_nir(_graph(cl), dt=dt, convention=convention)
    node = next(n for n in g if n.OP == "neuron.li")
    assert node.current_decay == pytest.approx(0.25)
    x = _spikes(2)
    y = slayerc.interpret(g, torch.tensor(x)).numpy()
    ref = _reference(x.astype(np.float64), _weights(), dt, tau_mem, 16.0, -0.25, tau_syn, w_in,
                     norse=convention == "norse")
    _close(y, ref)


def test_nir_ir_nir_round_trip_of_li_and_cuba_li():
    dt = 1e-4
    li = nir.LI(tau=np.full(N_OUT, 1e-3, np.float32), r=np.full(N_OUT, 10.0, np.float32),
                v_leak=np.linspace(-1, 1, N_OUT).astype(np.float32))
    cl = nir.CubaLI(tau_syn=np.full(N_OUT, 5e-4, np.float32),
                    tau_mem=np.full(N_OUT, 2e-3, np.float32),
                    r=np.full(N_OUT, 20.0, np.float32), v_leak=np.zeros(N_OUT, np.float32),
                    w_in=np.full(N_OUT, 5.0, np.float32))
    for node in (li, cl):
        back = to_nir(from_nir(_graph(node), dt=dt), dt=dt).nodes["li"]
        assert type(back) is type(node)
        for attr in ("tau", "tau_syn", "tau_mem", "r", "v_leak", "w_in"):
            if hasattr(node, attr):
                np.testing.assert_allclose(getattr(back, attr), getattr(node, attr), rtol=1e-5,
                                           atol=1e-6, err_msg=attr)


def _ir_li(current_decay, voltage_decay, bias):
    b = GraphBuilder()
    x = b.add(ops.Input, "x", shape=(N_IN,))
    fc = b.add(ops.Dense, "fc", [x], weight=b.param("fc.weight", _weights()))
    v = b.add(ops.LI, "li", [fc], current_decay=current_decay, voltage_decay=voltage_decay,
              bias=bias)
    b.add(ops.Output, "out", [v])
    return PassManager.from_string("shape-infer").run(b.build())


@pytest.mark.parametrize("du,dv,bias", [(1.0, 0.125, None), (0.25, 0.0625, 0.5)])
def test_ir_nir_ir_round_trip_of_li(du, dv, bias):
    g = _ir_li(du, dv, bias)
    back = from_nir(to_nir(g, dt=1e-3))
    li = back["li"]
    assert li.OP == "neuron.li"
    assert (li.current_decay, li.voltage_decay) == pytest.approx((du, dv))
    assert (li.bias or 0.0) == pytest.approx(bias or 0.0)
    x = torch.tensor(_spikes(3))
    torch.testing.assert_close(slayerc.interpret(back, x), slayerc.interpret(g, x))


def test_to_module_trains_through_li():
    g = _ir_li(0.5, 0.125, None)
    x = torch.tensor(_spikes(4, n=8))
    target = torch.linspace(-1, 2, N_OUT)[None, :, None].expand(8, N_OUT, STEPS)
    m = slayerc.to_module(g, learn_neuron=True)
    opt = torch.optim.Adam(m.parameters(), lr=0.02)
    losses = []
    for _ in range(15):
        opt.zero_grad()
        loss = torch.nn.functional.mse_loss(m(x), target)
        loss.backward()
        grads = {n: p.grad for n, p in m.named_parameters()}
        opt.step()
        losses.append(loss.item())
    assert set(grads) == {"fc.weight", "li.current_decay", "li.voltage_decay"}
    assert all(g_ is not None and g_.abs().sum() > 0 for g_ in grads.values()), grads
    assert losses[-1] < 0.5 * losses[0]
    tuned = slayerc.from_module(m)
    assert tuned["li"].voltage_decay != 0.125
    assert to_nir(tuned).nodes["li"].__class__ is nir.CubaLI


def test_netlist_writer_refuses_li_by_name(tmp_path):
    li = nir.LI(tau=np.full(N_OUT, 1e-3), r=np.full(N_OUT, 10.0), v_leak=np.zeros(N_OUT))
    nir.write(tmp_path / "li.nir", _graph(li))
    for target in ("loihi2", "slayerc"):
        with pytest.raises(BackendError, match=r"%li \(neuron.li.*no netx neuron type"):
            driver.compile_file(tmp_path / "li.nir", output=tmp_path / "li.net", target=target)
        assert not (tmp_path / "li.net").exists()
    driver.compile_file(tmp_path / "li.nir", output=tmp_path / "li.sir", target="slayerc")
    assert slayerc.load(tmp_path / "li.sir")["li"].OP == "neuron.li"


# ------------------------------------------------------------------------ fixed point


def _li_graphs():
    """NIR LI and CubaLI read-outs: unit gain, gain 0.4 (a tensor.affine after the li), off
    the decay grid (exact_decays)."""
    n = N_OUT
    return {
        "li": nir.LI(tau=np.full(n, 8e-4), r=np.full(n, 8.0), v_leak=np.full(n, 0.25)),
        "li_gain": nir.LI(tau=np.full(n, 1e-3), r=np.full(n, 4.0), v_leak=np.zeros(n)),
        "cuba_li": nir.CubaLI(tau_syn=np.full(n, 5e-4), tau_mem=np.full(n, 1e-3),
                              r=np.full(n, 10.0), v_leak=np.full(n, -0.5), w_in=np.full(n, 5.0)),
    }


@pytest.mark.parametrize("name", sorted(_li_graphs()))
def test_fixed_point_li_equals_the_float_dynamics_on_the_grid(name):
    """On a quant-legal graph the fixed-point kernel is the float dynamics' integer form: equal
    value for value (the voltage in 2**-12 units); the unquantised import differs from it only
    by the grid rounding of weights, decays and bias."""
    from slayerc.runtime.fixed.simulator import simulate

    g = _read_out_li(from_nir(_graph(_li_graphs()[name])))
    assert any(n.OP == "tensor.affine" for n in from_nir(_graph(_li_graphs()[name]))) == \
        (name == "li_gain")
    legal = PassManager.from_string("legalize-quant").run(g)
    x = _spikes(4)
    out = simulate(legal, x, target="slayerc")["out"]
    assert out.shape == x.shape[:1] + (N_OUT, STEPS) and out.dtype == np.int32
    fixed = out / 4096.0
    float_v = slayerc.interpret(legal, torch.tensor(x)).numpy()
    assert np.abs(fixed).max() > 5.0
    np.testing.assert_array_equal(fixed, float_v)
    exact = slayerc.interpret(g, torch.tensor(x)).numpy()
    err = np.abs(fixed - exact).max() / np.abs(exact).max()
    print(f"{name}: fixed vs unquantised float: {err:.4%} of the range")
    assert 0 < err <= 0.02, err  # measured 1.1 .. 1.3 % (8-bit weights)


def _read_out_li(g):
    """``g`` with its output reading the ``neuron.li`` voltage (the IR's units, before NIR's
    gain ``G``)."""
    li = next(n for n in g if n.OP == "neuron.li")
    nodes = {k: n for k, n in g.nodes.items() if n.OP != "tensor.affine"}
    nodes["out"] = g["out"].replace(inputs=(li.name,))
    return g.replace(nodes=nodes)


def test_slayerc_run_simulates_li_in_fixed_point(tmp_path):
    """``slayerc compile x.nir -o x.sir`` then ``slayerc run x.sir``: the read-out voltage in
    2**-12 units, equal to the interpreter on the compiled (quant-legal) graph."""
    from slayerc.cli import main

    li = nir.LI(tau=np.full(N_OUT, 1e-3), r=np.full(N_OUT, 10.0), v_leak=np.zeros(N_OUT))
    nir.write(tmp_path / "li.nir", _graph(li))
    sir, inp, out = tmp_path / "li.sir", tmp_path / "x.npy", tmp_path / "y.npy"
    driver.compile_file(tmp_path / "li.nir", output=sir, target="slayerc")
    x = _spikes(5)
    np.save(inp, x)
    assert main(["run", str(sir), "--input", str(inp), "--output", str(out), "--target",
                 "slayerc", "-q"]) == 0
    y = np.load(out)
    assert y.dtype == np.int32 and np.abs(y).max() > 4096
    ref = slayerc.interpret(slayerc.load(sir), torch.tensor(x)).numpy()
    np.testing.assert_array_equal(y / 4096.0, ref)
