"""Tests of slayer.neuron (and axon.Delay/Delta, dendrite.Sigma) against lava-dl reference data.

The reference layers are checked one neuron at a time: the synaptic input is computed with plain
torch from the stored weights (8-bit quantized as lava-dl does), the block's 1-step delay_shift
is a pad, and the result must equal ``layerK`` of ``*.slayer_layers.npz`` bit for bit.
"""

from __future__ import annotations

import importlib
import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from slayerc.frontend.slayer.axon.delay import Delay
from slayerc.frontend.slayer.neuron import adrf, adrf_iz, alif, cuba, rf, rf_iz, sigma_delta
from slayerc.frontend.slayer.neuron.base import NeuronShapeError
from slayerc.frontend.slayer.neuron.dropout import Dropout
from slayerc.frontend.slayer.neuron.norm import MeanOnlyBatchNorm
from slayerc.runtime.dynamics import leaky_integrator

DATA = Path(__file__).resolve().parents[1] / "data" / "lava-dl"
CUBA = dict(threshold=1.0, current_decay=0.25, voltage_decay=0.03, tau_grad=0.03, scale_grad=3)


def q8(w, ws=64):
    """lava-dl quantize_8bit with a straight-through gradient."""
    q = (torch.round(w / (2 / ws)) * (2 / ws)).clamp(-256 / ws, 254 / ws)
    return w + (q - w).detach()


def _params(block):
    out = {}
    for k, v in (block["neuron_params"] or {}).items():
        if isinstance(v, dict) and "$ref" in v:
            ref = v["$ref"]
            v = MeanOnlyBatchNorm if ref.endswith("MeanOnlyBatchNorm") else F.relu
        out[k] = tuple(v) if isinstance(v, list) else v
    return out


def _weight(sd, k, name="synapse"):
    if f"{k}.{name}.weight" in sd:
        w = sd[f"{k}.{name}.weight"]
    else:
        w = torch._weight_norm(sd[f"{k}.{name}.weight_v"], sd[f"{k}.{name}.weight_g"], 0)
    return q8(w.reshape(w.shape[0], -1))


def _case(name):
    arch = json.loads((DATA / f"{name}.arch.json").read_text())
    sd = torch.load(DATA / f"{name}.state_dict.pt", weights_only=True)
    return arch, sd


def _neuron(block, sd, k):
    mod = importlib.import_module(f"slayerc.frontend.slayer.neuron.{block['family']}")
    n = mod.Neuron(**_params(block))
    n.load_state_dict({key[len(f"{k}.neuron."):]: v for key, v in sd.items()
                       if key.startswith(f"{k}.neuron.")}, strict=True)
    return n


def _synapse(sd, k, x, complex_):
    if complex_:
        return tuple(torch.einsum("oi,nit->not", _weight(sd, k, f"synapse.{p}"), x)
                     for p in ("real", "imag"))
    return torch.einsum("oi,nit->not", _weight(sd, k), x)


def _shift1(s):
    return F.pad(s[..., :-1], (1, 0))


@pytest.mark.parametrize(
    "case", ["cuba_dense", "cuba_graded", "cuba_learn", "cuba_norm", "alif_dense", "rf", "rf_iz",
             "adrf_dense"],
)
def test_reference_layers_bit_exact(case):
    arch, sd = _case(case)
    layers = np.load(DATA / f"{case}.slayer_layers.npz")
    x = torch.tensor(np.load(DATA / f"{case}.input.npy"))[None]
    for k, block in enumerate(arch["blocks"]):
        n = _neuron(block, sd, k)
        if arch["eval"]:
            n.eval()
        with torch.no_grad():
            s = _shift1(n(_synapse(sd, k, x, block["family"] in ("rf", "rf_iz", "adrf"))))
        ref = torch.tensor(layers[f"layer{k}"])
        assert torch.equal(s[0], ref), f"{case} layer{k}: {(s[0] != ref).sum()} differ"
        x = ref[None]


def test_reference_sigma_delta_bit_exact():
    arch, sd = _case("sdnn_dense")
    layers = np.load(DATA / "sdnn_dense.slayer_layers.npz")
    x = torch.tensor(np.load(DATA / "sdnn_dense.input.npy"))[None]
    neurons = [_neuron(b, sd, k) for k, b in enumerate(arch["blocks"])]
    y = neurons[0].delta(neurons[0].quantize_8bit(x))  # sigma_delta.Input
    assert torch.equal(y[0], torch.tensor(layers["layer0"]))
    for k in (1, 2):  # Dense, no delay_shift
        y = neurons[k](_synapse(sd, k, y, False))
        assert torch.equal(y[0], torch.tensor(layers[f"layer{k}"]))
    y = neurons[3].sigma(_synapse(sd, 3, y, False))  # Output
    assert torch.equal(y[0], torch.tensor(layers["layer3"]))


def test_reference_persistent_two_forwards():
    arch, sd = _case("cuba_persistent")
    neurons = [_neuron(b, sd, k) for k, b in enumerate(arch["blocks"])]
    last = [None, None]
    for suffix in ("", "_2"):
        x = torch.tensor(np.load(DATA / f"cuba_persistent.input{suffix}.npy"))[None]
        layers = np.load(DATA / f"cuba_persistent.slayer_layers{suffix}.npz")
        for k, n in enumerate(neurons):
            with torch.no_grad():
                s = n(_synapse(sd, k, x, False))
            first = torch.zeros_like(s[..., :1]) if last[k] is None else last[k]
            last[k] = s[..., -1:].clone()
            x = torch.cat([first, s[..., :-1]], -1)
            assert torch.equal(x[0], torch.tensor(layers[f"layer{k}"]))


@pytest.mark.parametrize("case", ["cuba_learn", "alif_dense"])
def test_reference_gradients(case):
    """Input and weight gradients match lava-dl; decay gradients are −1/4096 of lava-dl's."""
    arch, sd = _case(case)
    grads = np.load(DATA / f"{case}.grads.npz")
    params = {k: v.clone().requires_grad_() for k, v in sd.items() if "synapse" in k}
    neurons = [_neuron(b, sd, k) for k, b in enumerate(arch["blocks"])]
    x = torch.tensor(np.load(DATA / f"{case}.input.npy"))[None].requires_grad_()
    y = x
    for k, n in enumerate(neurons):
        y = _shift1(n(torch.einsum("oi,nit->not", _weight(params, k), y)))
    loss = (y[0] * torch.tensor(grads["loss_weight"])).sum()
    assert torch.allclose(loss, torch.tensor(grads["loss"]), rtol=1e-5)
    loss.backward()
    assert torch.allclose(x.grad[0], torch.tensor(grads["input"]), rtol=1e-4, atol=1e-6)
    for name, p in params.items():
        assert torch.allclose(p.grad, torch.tensor(grads[name]), rtol=1e-4, atol=1e-6), name
    for k, n in enumerate(neurons):
        for name in ("current_decay", "voltage_decay"):
            lava = torch.tensor(grads[f"{k}.neuron.{name}"])
            ours = getattr(n, name).grad
            assert torch.allclose(ours * -4096, lava, rtol=1e-3, atol=1e-5), (k, name)
        if case == "alif_dense":
            assert n.threshold_decay.grad is None or not n.threshold_decay.grad.any()


# ------------------------------------------------------------------ granularity and shapes


def test_per_channel_and_per_neuron_decays():
    x = torch.rand(2, 3, 4, 5, 30) * 0.6
    for kind in ("channel", "neuron"):
        n = cuba.Neuron(threshold=1.0, current_decay=(0.1, 0.5), voltage_decay=(0.0, 0.2),
                        shared_param=False, per_neuron_param=(kind == "neuron"))
        _, v = n.dynamics(x)
        assert n.current_decay.shape == ((3,) if kind == "channel" else (3, 4, 5))
        for c, h, w in [(0, 0, 0), (2, 3, 4), (1, 2, 1)]:
            idx = (c,) if kind == "channel" else (c, h, w)
            one = cuba.Neuron(threshold=1.0, current_decay=0.0, voltage_decay=0.0)
            one.current_decay.data[:] = n.current_decay.data[idx]
            one.voltage_decay.data[:] = n.voltage_decay.data[idx]
            _, v1 = one.dynamics(x[:, c:c + 1, h:h + 1, w:w + 1])
            assert torch.equal(v[:, c, h, w], v1[:, 0, 0, 0])


def test_per_neuron_decay_gradient_shape():
    n = cuba.Neuron(**{**CUBA, "current_decay": (0.1, 0.3)}, shared_param=False,
                    per_neuron_param=True, requires_grad=True, shape=(4, 2, 2))
    u, v = n.dynamics(torch.rand(3, 4, 2, 2, 20))
    (u.sum() + v.sum()).backward()
    assert n.current_decay.grad.shape == (4, 2, 2) and n.voltage_decay.grad.shape == (4, 2, 2)
    assert (n.current_decay.grad < 0).all()  # more decay -> less current


def test_shape_error_names_expected_and_got():
    n = cuba.Neuron(**CUBA)
    n(torch.zeros(1, 5, 10))
    with pytest.raises(NeuronShapeError, match=r"\[batch, 5, time\].*\[1, 6, 10\]"):
        n(torch.zeros(1, 6, 10))
    with pytest.raises(NeuronShapeError, match="at least 3"):
        n(torch.zeros(5, 10))


def test_lazy_params_load_before_forward_and_never_redrawn():
    _, sd = _case("cuba_learn")
    block = {"family": "cuba", "neuron_params": {
        "threshold": 1.0, "current_decay": [0.1, 0.4], "voltage_decay": [0.02, 0.1],
        "requires_grad": True, "shared_param": False}}
    n = _neuron(block, sd, 0)  # load into a never-run neuron: shapes adopted
    n(torch.zeros(1, 16, 5))
    assert torch.equal(n.current_decay.data, sd["0.neuron.current_decay"])
    # lava-dl flow: warm-up forward, then strict load
    m = cuba.Neuron(1.0, (0.1, 0.4), (0.02, 0.1), shared_param=False)
    m(torch.zeros(1, 16, 5))
    m.load_state_dict({"current_decay": sd["0.neuron.current_decay"],
                       "voltage_decay": sd["0.neuron.voltage_decay"]}, strict=True)
    assert torch.equal(m.voltage_decay.data, sd["0.neuron.voltage_decay"])
    # eager shapes: set_shape shapes now (the lower bound), the first forward draws
    e = cuba.Neuron(1.0, (0.1, 0.4), (0.02, 0.1), shared_param=False, shape=(16,))
    assert e.current_decay.shape == (16,) and (e.current_decay >= 409.6 - 1e-3).all()
    e(torch.zeros(1, 16, 5))
    assert float(e.current_decay.std()) > 10 and (e.current_decay <= 1638.4 + 1e-3).all()
    # values set by hand before the first forward are kept
    h = cuba.Neuron(1.0, (0.1, 0.4), (0.02, 0.1), shared_param=False, shape=(16,))
    h.current_decay.data = torch.full((16,), 1000.0)
    h(torch.zeros(1, 16, 5))
    assert torch.equal(h.current_decay.data, torch.full((16,), 1000.0))
    assert float(h.voltage_decay.std()) > 1  # the untouched one is drawn


def test_delay_module_load_and_clamp():
    d = Delay(max_delay=3)
    d.load_state_dict({"delay": torch.tensor([0.0, 2.5, 9.0])})
    y = d(torch.ones(1, 3, 6))
    assert d.delay.tolist() == [0.0, 2.5, 3.0]
    assert y[0].sum(-1).tolist() == [6.0, 4.0, 3.0]
    fresh = Delay()
    fresh.set_channels(4)
    assert fresh.delay.shape == (4,) and fresh.init


# ---------------------------------------------------------------------------- persistence


def _pair(x):
    return (x, x.flip(1) * 0.7)


MAKERS = {
    "cuba": (lambda p: cuba.Neuron(**CUBA, persistent_state=p), lambda x: x),
    "alif": (lambda p: alif.Neuron(1.0, 0.5, 0.25, 0.03, 0.1, 0.1, persistent_state=p),
             lambda x: x),
    "rf": (lambda p: rf.Neuron(0.3, 8, 0.1, persistent_state=p), _pair),
    "rf_iz": (lambda p: rf_iz.Neuron(0.3, 8, 0.1, persistent_state=p), _pair),
    "adrf": (lambda p: adrf.Neuron(0.3, 0.25, 8, 0.05, 0.05, 0.05, persistent_state=p), _pair),
    "adrf_iz": (lambda p: adrf_iz.Neuron(0.3, 0.25, 8, 0.05, 0.05, 0.05, persistent_state=p),
                _pair),
    "sigma_delta": (lambda p: sigma_delta.Neuron(0.1, F.relu, persistent_state=p), lambda x: x),
}


@pytest.mark.parametrize("name", sorted(MAKERS))
def test_persistent_two_calls_equal_one_call(name):
    make, wrap = MAKERS[name]
    g = torch.Generator().manual_seed(0)
    x = (torch.rand(2, 6, 80, generator=g) < 0.3).float() * 0.9
    whole = make(False)(wrap(x))
    split = make(True)
    a, b = split(wrap(x[..., :37])), split(wrap(x[..., 37:]))
    assert whole.sum() > 0
    assert torch.equal(torch.cat([a, b], -1), whole)


def test_persistent_state_resets_on_batch_change():
    n = cuba.Neuron(**CUBA, persistent_state=True)
    x = torch.rand(2, 3, 10)
    n(x)
    assert torch.equal(n(torch.rand(1, 3, 10) * 0 + x[:1]), cuba.Neuron(**CUBA)(x[:1]))


# -------------------------------------------------------------------------- misc behaviour


def test_graded_spike_carries_voltage():
    n = cuba.Neuron(**CUBA, graded_spike=True)
    x = torch.rand(1, 4, 40) * 0.8
    _, v = n.dynamics(x)
    s = n.spike(v)
    fired = v > 1.0
    assert fired.any() and torch.equal(s, v * fired)


def test_adrf_iz_forward_works_and_equals_dynamics_then_spike():
    n = adrf_iz.Neuron(0.3, 0.25, 8, 0.05, 0.05, 0.05, graded_spike=False)
    x = _pair(torch.rand(1, 5, 60))
    s = n(x)
    s2 = n.spike(*n.dynamics(x))
    assert torch.equal(s, s2) and s.sum() > 0


def test_device_params_keys_and_types():
    assert set(cuba.Neuron(**CUBA).device_params) == {
        "type", "iDecay", "vDecay", "vThMant", "refDelay", "gradedSpike"}
    p = cuba.Neuron(**CUBA).device_params
    assert (p["iDecay"], p["vDecay"], p["vThMant"]) == (1024, 123, 64)
    assert isinstance(p["iDecay"], np.integer)
    n = cuba.Neuron(1.0, (0.1, 0.2), 0.03, shared_param=False, shape=(5,))
    assert n.device_params["iDecay"].shape == (5,)
    a = adrf.Neuron(0.5, 1.0, 10, 0.05, 0.05, 0.05).device_params
    assert a["type"] == "ADRF_PHASE" and a["vThStep"] == 64
    period = rf.neuron_params(rf.Neuron(0.5, 8, 0.1).device_params)["period"]
    assert period == pytest.approx(8, 0.01)
    assert sigma_delta.Neuron(0.1, F.relu).device_params == {
        "type": "SDNN", "activation": "relu", "vThMant": 6}


def test_norm_running_mean_and_bias():
    n = cuba.Neuron(**CUBA, norm=MeanOnlyBatchNorm)
    x = torch.rand(4, 3, 10)
    n(x)
    assert n.norm.running_mean.shape == (3,)
    n.eval()
    n.norm.load_state_dict({"running_mean": torch.tensor([0.1, -0.2, 0.0])})
    u = leaky_integrator(x, n.current_decay, None, n.s_scale)
    q = n.quantize_8bit(torch.tensor([0.1, -0.2, 0.0])).reshape(1, 3, 1)
    assert torch.equal(n.dynamics(x)[0], u - q)
    assert n.norm.bias.tolist() == [-6.0, 12.0, 0.0]


def test_dropout_drops_whole_neurons():
    torch.manual_seed(0)
    d = Dropout(0.5)
    y = d(torch.ones(8, 10, 20))
    per_neuron = y.reshape(80, 20)
    assert ((per_neuron == 0).all(1) | (per_neuron == 2).all(1)).all()


def test_requires_grad_clamps_and_learns():
    n = cuba.Neuron(**CUBA, requires_grad=True)
    n.current_decay.data[:] = 5000
    n(torch.rand(1, 2, 5))
    assert n.current_decay.item() == 4096
