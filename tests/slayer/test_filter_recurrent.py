"""slayer.utils.filter, slayer.utils.recurrent, the utils helpers, SpikeTime's FIR and the
SparsityEnforcer, checked against numpy and hand-computed values."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import slayerc.slayer as slayer
from slayerc.errors import SlayerError

filt = slayer.utils.filter


def test_conv_and_corr_match_numpy_convolve():
    g = torch.Generator().manual_seed(0)
    x, h = torch.rand(3, 40, generator=g), torch.rand(7, generator=g)
    full = [np.convolve(r, h.numpy()) for r in x.numpy()]
    np.testing.assert_allclose(filt.conv(x, h).numpy(), np.stack([f[:40] for f in full]),
                               rtol=1e-5, atol=1e-6)
    back = [np.convolve(r, h.numpy()[::-1])[6:] for r in x.numpy()]
    np.testing.assert_allclose(filt.corr(x, h).numpy(), np.stack(back), rtol=1e-5, atol=1e-6)
    assert filt.conv(torch.tensor([1.0, 0, 0]), torch.tensor([2.0, 1.0]), 0.5).tolist() == [
        [1.0, 0.5, 0.0]]


def test_conv_gradient_is_the_correlation():
    x = torch.zeros(1, 6, requires_grad=True)
    h = torch.tensor([1.0, 2.0, 3.0])
    filt.conv(x, h)[0, 2].backward()   # y[2] = h0 x2 + h1 x1 + h2 x0
    assert x.grad.tolist() == [[3.0, 2.0, 1.0, 0.0, 0.0, 0.0]]


def test_fir_default_is_a_decaying_exponential():
    fir = filt.FIR(time_constant=2, length=5, sampling_time=0.5)
    np.testing.assert_allclose(fir.filter.numpy(), np.exp(-np.arange(5) / 2), rtol=1e-6)
    x = torch.zeros(2, 3, 8)
    x[1, 2, 3] = 1
    y = fir(x)
    assert y.shape == x.shape
    np.testing.assert_allclose(y[1, 2, 3:8].numpy(), 0.5 * np.exp(-np.arange(5) / 2), rtol=1e-6)
    assert "filter" in fir.state_dict()


def test_fir_bank_filters_every_channel_with_every_filter():
    torch.manual_seed(0)
    bank = filt.FIRBank(num_filter=3, filter_length=4, scale=2)
    assert bank.num_filter == 3 and bank.filter_length == 4
    assert bank.weight.requires_grad
    x = torch.zeros(1, 2, 10)
    x[0, 1, 2] = 1
    y = bank(x)
    assert y.shape == (1, 6, 10)
    for f in range(3):  # channel f·C + c holds channel c through filter f
        np.testing.assert_allclose(y[0, 2 * f + 1, 2:6].detach().numpy(),
                                   bank.impulse_response[f], rtol=1e-6)
        assert float(y[0, 2 * f].detach().abs().sum()) == 0


def test_spike_time_filter_is_a_callable_fir():
    loss = slayer.loss.SpikeTime(time_constant=2, length=6, filter_order=2)
    assert isinstance(loss.filter, filt.FIR)
    h = np.exp(-np.arange(6) / 2)
    np.testing.assert_allclose(loss.filter.filter.numpy(), np.convolve(h, h)[:6], rtol=1e-5)
    assert "filter.filter" in loss.state_dict()
    x = torch.zeros(1, 1, 6)
    x[0, 0, 0] = 1
    np.testing.assert_allclose(loss.filter(x)[0, 0].numpy(), np.convolve(h, h)[:6], rtol=1e-5)


def test_sparsity_enforcer_penalises_rates_above_max():
    se = slayer.loss.SparsityEnforcer(max_rate=0.1, lam=2.0)
    x = torch.tensor([0.0, 0.5, -0.5, 0.0], requires_grad=True)  # mean |x| = 0.25
    se.append(x)
    se.append(torch.zeros(4))  # below the max: no penalty
    assert float(se.loss) == pytest.approx(2.0 * 0.15 ** 2)
    se.loss.backward()
    assert x.grad is not None and float(x.grad.abs().sum()) > 0
    se.clear()
    assert se.loss == 0


def test_utils_helpers():
    np.testing.assert_array_equal(slayer.utils.diagonal_mask(4, 3).numpy(), [
        [1, 1, 0, 0], [1, 1, 1, 0], [0, 1, 1, 1], [0, 0, 1, 1]])
    assert torch.equal(slayer.utils.diagonal_mask(3, 1), torch.eye(3))
    with pytest.raises(SlayerError):
        slayer.utils.diagonal_mask(3, 0)
    x = torch.tensor([[1.0, 0.0, 2.0, 0.0, 0.0]])
    assert slayer.utils.event_rate(x) == pytest.approx(0.25)  # the first step is left out
    assert slayer.utils.event_rate(torch.tensor([[1.0], [0.0]])) == pytest.approx(0.5)
    d = slayer.utils.dotdict(a=1)
    d.b = 2
    assert d["b"] == 2 and d.a == 1 and d.missing is None

    class K:
        @slayer.utils.staticproperty
        def answer():
            return 42

    assert K.answer == 42 and K().answer == 42
    assert slayer.utils.QUANTIZE_MODE.FLOOR == 1
    assert callable(slayer.utils.quantize_hook_fx)


def _recurrent_parts(seed):
    torch.manual_seed(seed)
    params = {"threshold": 1.25, "current_decay": 0.25, "voltage_decay": 0.25,
              "requires_grad": True}
    neuron = slayer.neuron.cuba.Neuron(**params, persistent_state=True)
    synapse = slayer.synapse.Dense(5, 5, weight_scale=3)
    synapse.pre_hook_fx = neuron.quantize_8bit
    return neuron, synapse


def test_custom_recurrent_feeds_back_the_previous_spikes():
    z = torch.randn(2, 5, 30, generator=torch.Generator().manual_seed(1)) * 2
    outs, grads = [], []
    for fn in (slayer.utils.recurrent.custom_recurrent,
               slayer.utils.recurrent.custom_recurrent_ground_truth_1,
               slayer.utils.recurrent.custom_recurrent_ground_truth_2):
        neuron, synapse = _recurrent_parts(0)
        out = fn(z, neuron, synapse)
        out.sum().backward()
        outs.append(out.detach())
        grads.append(synapse.weight.grad.clone())
    assert outs[0].shape == z.shape and 0 < float(outs[0].mean()) < 1
    assert torch.equal(outs[0], outs[1]) and torch.equal(outs[0], outs[2])
    assert torch.allclose(grads[0], grads[1]) and float(grads[0].abs().sum()) > 0
    neuron, synapse = _recurrent_parts(0)
    assert not torch.equal(neuron(z), outs[0])  # the feedback changes the spikes
    neuron, synapse = _recurrent_parts(0)
    synapse.weight.data.zero_()  # no feedback: the neuron alone, step by step
    fresh, _ = _recurrent_parts(0)
    assert torch.equal(slayer.utils.recurrent.custom_recurrent(z, neuron, synapse), fresh(z))


def test_lava_dl_names_of_blocks_and_auto():
    from slayerc.frontend.slayer.block import base

    for module, name in (("cuba", "AbstractCuba"), ("sigma_delta", "AbstractSDRelu"),
                         ("alif", "AbstractALIF"), ("rf", "AbstractRF"),
                         ("rf_iz", "AbstractRFIz"), ("adrf", "AbstractADRF"),
                         ("adrf_iz", "AbstractADRFIZ")):
        family = getattr(slayer.block, module)
        assert issubclass(family.Dense, getattr(family, name)), module
    assert issubclass(base.AbstractResidual, torch.nn.Module)
    assert slayer.auto.get_classes("CUBA") == (slayer.neuron.cuba, slayer.block.cuba)
    assert slayer.auto.get_classes() == (slayer.neuron.cuba, slayer.block.cuba)


def test_step_delay_shifts_by_one_and_carries_the_last_frame_when_persistent():
    from slayerc.frontend.slayer.block.base import step_delay

    x = torch.arange(1.0, 7.0).reshape(1, 2, 3)
    plain = torch.nn.Module()
    assert step_delay(plain, x).tolist() == [[[0, 1, 2], [0, 4, 5]]]
    holder = torch.nn.Module()
    holder.neuron = slayer.neuron.cuba.Neuron(threshold=1, current_decay=0, voltage_decay=0,
                                              persistent_state=True)
    step_delay(holder, x)
    assert step_delay(holder, x + 10).tolist() == [[[3, 11, 12], [6, 14, 15]]]
    assert step_delay(holder, torch.zeros(2, 2, 3))[..., 0].abs().sum() == 0  # new batch size


def test_get_neuron_params_reads_a_netx_neuron_group():
    group = {"type": np.bytes_(b"CUBA"), "vThMant": np.array(80), "iDecay": np.array(1024),
             "vDecay": np.array(256), "refDelay": np.array(1), "gradedSpike": np.array(False)}
    params = slayer.auto.get_neuron_params(group, slayer.neuron.cuba)
    assert params["threshold"] == pytest.approx(80 / 64)  # vThMant / 64 (slayer's scale)
    assert params["current_decay"] == pytest.approx(0.25)
    assert params["voltage_decay"] == pytest.approx(1 / 16)
    with pytest.raises(SlayerError):
        slayer.auto.get_classes("NOPE")
