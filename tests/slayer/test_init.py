"""Initial weights, weight-norm gains and delays follow lava-dl's distributions: the synapse
weight is torch's Conv3d default (kaiming uniform) times ``weight_scale``, weight norm starts
with ``g = ‖v‖`` per output channel, delays are ``rand(C)`` (uniform in [0, 1)).
"""

from __future__ import annotations

import torch

import slayerc.slayer as slayer

P = {"threshold": 1.25, "current_decay": 0.25, "voltage_decay": 0.03, "requires_grad": True}


def _dense(delay: bool, weight_norm: bool = True):
    return slayer.block.cuba.Dense(P, 20, 16, weight_scale=2, weight_norm=weight_norm,
                                   delay=delay)


def test_dense_weight_is_conv3d_default_times_scale_and_gain_is_its_row_norm():
    torch.manual_seed(5)
    block = _dense(delay=True)
    torch.manual_seed(5)
    reference = torch.nn.Conv3d(20, 16, 1, bias=False).weight.detach() * 2  # kaiming uniform
    assert torch.equal(block.synapse.weight_v.detach(), reference)
    norms = reference.reshape(16, -1).norm(dim=1).reshape(16, 1, 1, 1, 1)
    assert torch.allclose(block.synapse.weight_g.detach(), norms)


def test_delays_are_uniform_in_0_1_drawn_at_the_first_forward_and_reproducible():
    x = torch.zeros(2, 20, 5)
    x[:, :, 0] = 1.0
    torch.manual_seed(1)
    block = _dense(delay=True)
    assert torch.equal(block.delay.delay.detach(), torch.zeros(16))  # shaped, not drawn yet
    block(x)
    d = block.delay.delay.detach().clone()
    assert d.shape == (16,) and bool(((d >= 0) & (d < 1)).all()) and float(d.std()) > 0.1
    block(x)
    assert torch.equal(block.delay.delay.detach(), d)  # drawn once
    torch.manual_seed(1)
    again = _dense(delay=True)
    again(x)
    assert torch.equal(again.delay.delay.detach(), d)  # same seed, same delays
    # delays below one step do not shift: the block's output equals the block without delay
    torch.manual_seed(1)
    plain = _dense(delay=False)
    with torch.no_grad():
        plain.synapse.weight_v.copy_(block.synapse.weight_v)
        plain.synapse.weight_g.copy_(block.synapse.weight_g)
    assert torch.equal(block(x), plain(x))
