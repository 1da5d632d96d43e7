"""Blocks and synapses of slayerc.slayer: lava-dl API, shapes, state_dict keys, errors."""

from __future__ import annotations

import importlib

import pytest
import torch

import slayerc.slayer as slayer_module
from slayerc.errors import SlayerError

CUBA = {"threshold": 1.0, "current_decay": 0.25, "voltage_decay": 0.03}
RF = {"threshold": 0.5, "period": 8, "decay": 0.1}
ALIF = {"threshold": 1.0, "threshold_step": 0.5, "current_decay": 0.25, "voltage_decay": 0.03,
        "threshold_decay": 0.1, "refractory_decay": 0.1}
SDNN = {"threshold": 0.1, "activation": torch.nn.functional.relu}


@pytest.fixture(scope="module")
def slayer():
    """``import slayerc.slayer as slayer``."""
    return slayer_module


def test_drop_in_module_and_aliases(slayer):
    import slayerc.slayer.block.cuba as cuba

    assert cuba is slayer.block.cuba
    assert importlib.import_module("slayerc.slayer.neuron.norm") is slayer.neuron.norm
    for name in ("neuron", "synapse", "axon", "dendrite", "block", "spike", "loss", "classifier",
                 "io", "utils"):
        assert hasattr(slayer, name)
    for fam in ("cuba", "sigma_delta", "rf", "rf_iz", "alif", "adrf", "adrf_iz"):
        assert hasattr(slayer.block, fam)
    assert slayer.neuron.norm.MeanOnlyBatchNorm.__name__ == "MeanOnlyBatchNorm"


def test_dense_state_dict_keys_and_shapes(slayer):
    b = slayer.block.cuba.Dense(CUBA, 5, 3, delay=True)
    sd = b.state_dict()
    assert list(sd) == ["neuron.current_decay", "neuron.voltage_decay", "delay.delay",
                        "synapse.weight"]
    assert sd["synapse.weight"].shape == (3, 5, 1, 1, 1) and sd["delay.delay"].shape == (3,)
    assert b(torch.zeros(2, 5, 7)).shape == (2, 3, 7)
    wn = slayer.block.cuba.Dense(CUBA, 5, 3, weight_norm=True).state_dict()
    assert {"synapse.weight_g", "synapse.weight_v"} <= set(wn) and "synapse.weight" not in wn


def test_recurrent_and_kwta_state_dict_keys(slayer):
    rec = slayer.block.cuba.Recurrent(CUBA, 4, 3)
    assert list(rec.state_dict()) == ["spike_state", "neuron.current_decay",
                                      "neuron.voltage_decay", "input_synapse.weight",
                                      "recurrent_synapse.weight"]
    kwta = slayer.block.cuba.KWTA(CUBA, 4, 3, num_winners=1)
    assert list(kwta.state_dict())[:2] == ["self_excitation", "spike_state"]
    params = dict(CUBA)
    slayer.block.cuba.Recurrent(params, 4, 3)
    assert params == CUBA  # the caller's dict is not edited


def test_complex_synapse_blocks(slayer):
    for fam in ("rf", "rf_iz"):
        b = getattr(slayer.block, fam).Dense(RF, 4, 3)
        assert {"synapse.real.weight", "synapse.imag.weight"} <= set(b.state_dict())
        assert b.synapse.pre_hook_fx == b.neuron.quantize_8bit
        assert b(torch.rand(1, 4, 10)).shape == (1, 3, 10)
        a = getattr(slayer.block, fam).Affine(RF, 4, 3)
        assert a(torch.rand(1, 4, 10)).shape == (1, 3, 10)


@pytest.mark.parametrize("fam,params", [("cuba", CUBA), ("alif", ALIF), ("rf_iz", RF),
                                        ("sigma_delta", SDNN)])
def test_conv_pool_convt_unpool_shapes(slayer, fam, params):
    blocks = getattr(slayer.block, fam)
    x = torch.rand(2, 2, 9, 8, 5)
    y = blocks.Conv(params, 2, 4, 3, stride=(2, 1), padding=1)(x)
    assert y.shape == (2, 4, 5, 8, 5)
    assert blocks.Pool(params, 2)(y).shape == (2, 4, 3, 4, 5)  # H 5 padded by 5 % 2 = 1
    assert blocks.ConvT(params, 4, 3, 2, stride=2)(y).shape == (2, 3, 10, 16, 5)
    assert blocks.Unpool(params, 2)(y).shape == (2, 4, 10, 16, 5)


def test_pool_is_a_sum_pool_with_quantized_weight(slayer):
    pool = slayer.synapse.Pool(2, weight_scale=1.01, pre_hook_fx=lambda w: torch.round(w))
    x = torch.arange(16.0).reshape(1, 1, 4, 4, 1)
    y = pool(x)
    assert y[0, 0, :, :, 0].tolist() == [[10.0, 18.0], [42.0, 50.0]]


def test_dense_matches_conv3d_form(slayer):
    torch.manual_seed(0)
    syn = slayer.synapse.Dense(6, 4)
    x = torch.rand(3, 6, 7)
    ref = torch.nn.functional.conv3d(x.reshape(3, 6, 1, 1, 7), syn.weight).reshape(3, 4, 7)
    torch.testing.assert_close(syn(x), ref)
    x5 = torch.rand(3, 6, 2, 2, 7)
    assert syn(x5).shape == (3, 4, 2, 2, 7)  # pointwise on NCHWT, as lava-dl


def test_shape_mismatch_errors_name_expected_and_got(slayer):
    b = slayer.block.cuba.Dense(CUBA, 5, 3)
    with pytest.raises(SlayerError, match=r"expects 5 input channels.*got 4"):
        b(torch.zeros(1, 4, 6))
    with pytest.raises(SlayerError, match="NCHWT"):
        slayer.block.cuba.Conv(CUBA, 2, 3, 3)(torch.zeros(1, 2, 6))
    with pytest.raises(SlayerError, match="dict of neuron parameters"):
        slayer.block.cuba.Dense(None, 5, 3)
    with pytest.raises(SlayerError, match="mask"):
        slayer.block.cuba.Dense(CUBA, 5, 3, mask=torch.ones(2, 2))(torch.zeros(1, 5, 3))


def test_delay_shift_and_persistence(slayer):
    torch.manual_seed(0)
    x = (torch.rand(1, 4, 20) < 0.6).float()
    fresh = slayer.block.cuba.Dense(CUBA, 4, 3, weight_scale=4)
    full = fresh(x)
    assert torch.all(full[..., 0] == 0)
    pers = slayer.block.cuba.Dense({**CUBA, "persistent_state": True}, 4, 3, weight_scale=4)
    pers.load_state_dict(fresh.state_dict())
    two = torch.cat([pers(x[..., :10]), pers(x[..., 10:])], dim=-1)
    assert torch.equal(two, full)
    sd = slayer.block.sigma_delta.Dense(SDNN, 4, 3)
    assert sd.delay_shift is False


def test_recurrent_matches_explicit_loop(slayer):
    torch.manual_seed(0)
    rec = slayer.block.cuba.Recurrent(CUBA, 4, 3, weight_scale=4)
    x = (torch.rand(2, 4, 15) < 0.5).float()
    y = rec(x)
    neuron = slayer.neuron.cuba.Neuron(**CUBA, persistent_state=True)
    w_in = rec.neuron.quantize_8bit(rec.input_synapse.weight.reshape(3, 4))
    w_rec = rec.neuron.quantize_8bit(rec.recurrent_synapse.weight.reshape(3, 3))
    s, outs = torch.zeros(2, 3), []
    for t in range(15):
        s = neuron((w_in @ x[..., t].T).T[..., None] + (s @ w_rec.T)[..., None])[..., 0]
        outs.append(s)
    expect = torch.stack(outs, -1)
    assert torch.equal(y[..., 1:], expect[..., :-1]) and torch.all(y[..., 0] == 0)


def test_recurrent_gradients_reach_recurrent_weight(slayer):
    torch.manual_seed(0)
    rec = slayer.block.cuba.Recurrent({**CUBA, "threshold": 0.3}, 4, 6, weight_scale=4)
    rec(torch.ones(1, 4, 20)).sum().backward()
    assert rec.recurrent_synapse.weight.grad.abs().sum() > 0


def test_count_log_and_flatten_average(slayer):
    b = slayer.block.cuba.Dense(CUBA, 4, 3, count_log=True)
    y, rate = b(torch.ones(1, 4, 5))
    assert y.shape == (1, 3, 5) and 0 <= float(rate) <= 1
    f = slayer.block.cuba.Flatten()
    assert f(torch.zeros(2, 3, 4, 5, 6)).shape == (2, 60, 6) and f.shape == [60, 1, 1]
    avg = slayer.block.cuba.Average(2)(torch.arange(8.0).reshape(1, 4, 2))
    assert avg[0, :, 0].tolist() == [1.0, 5.0]
    td = slayer.block.cuba.TimeDecimation(4)(torch.ones(1, 2, 10))
    assert td.shape == (1, 2, 3)


def test_pre_hook_fx_default_and_override(slayer):
    b = slayer.block.cuba.Dense(CUBA, 4, 3)
    assert b.synapse.pre_hook_fx == b.neuron.quantize_8bit
    assert slayer.block.cuba.Dense(CUBA, 4, 3, pre_hook_fx=None).synapse.pre_hook_fx is None


def test_disable_weight_norm_folds_weight(slayer):
    syn = slayer.synapse.Dense(4, 3, weight_norm=True)
    before = syn(torch.ones(1, 4, 2))
    syn.disable_weight_norm()
    assert "weight" in syn.state_dict() and "weight_g" not in syn.state_dict()
    torch.testing.assert_close(syn(torch.ones(1, 4, 2)), before)


def test_block_outputs_are_contiguous_for_view():
    """lava-dl users call ``.view`` on block outputs; the time-major kernels must not break it."""
    import slayerc.slayer as slayer

    p = {"threshold": 0.5, "current_decay": 0.25, "voltage_decay": 0.1}
    blocks = [slayer.block.cuba.Dense(p, 8, 6, delay=True), slayer.block.cuba.Dense(p, 6, 4),
              slayer.block.alif.Dense({**p, "threshold_step": 0.1, "threshold_decay": 0.1,
                                       "refractory_decay": 0.1}, 4, 3)]
    x = (torch.rand(2, 8, 11) < 0.4).float()
    for block in blocks:
        x = block(x)
        assert x.is_contiguous()
        assert x.view(x.shape[0], -1, x.shape[-1]).shape == x.shape


def test_bare_neuron_output_is_contiguous():
    import slayerc.slayer as slayer

    n = slayer.neuron.cuba.Neuron(threshold=0.5, current_decay=0.25, voltage_decay=0.1)
    y = n(torch.rand(2, 8, 11) * 2)
    assert y.is_contiguous() and y.sum() > 0
    assert y.view(2, -1).shape == (2, 88)
