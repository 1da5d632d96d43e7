"""``slayer.neuron.dynamics``: lava-dl's dynamics functions, checked against lava-dl's
documented equations and against the neuron modules built on the same kernels."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import slayerc.slayer as slayer

dyn = slayer.neuron.dynamics
S = 4096


def _li_by_hand(x, decay, state, scale, threshold=None):
    """``y = trunc(y·(4096−D)/4096) + trunc(S·x)`` in integers, reset when ``y ≥ θS``."""
    xi = np.trunc(x.numpy().astype(np.float64) * scale)
    y = np.full(x.shape[:-1], float(state) * scale)
    out = np.zeros_like(xi)
    for t in range(x.shape[-1]):
        y = np.trunc(y * (S - decay) / S) + xi[..., t]
        out[..., t] = y
        if threshold is not None and threshold > 0:
            y = np.where(y >= threshold * scale, 0.0, y)
    return out / scale


@pytest.mark.parametrize("threshold", [None, 0.5, -1])
def test_leaky_integrator_follows_the_documented_equation(threshold):
    x = torch.rand(3, 5, 20, generator=torch.Generator().manual_seed(0)) * 0.3
    y = dyn.leaky_integrator.dynamics(x, torch.tensor([512.0]), torch.tensor(0.25), 1 << 6,
                                      threshold)
    want = _li_by_hand(x, 512, 0.25, 64, threshold if threshold != -1 else None)
    assert np.array_equal(y.numpy(), want.astype(np.float32))
    if threshold == 0.5:
        assert (want >= 0.5).any()  # the reset is exercised


def test_persistent_state_rules():
    state = torch.tensor([1.0, 2.0, 3.0])
    spike = torch.tensor([0.0, 1.0, 0.5])
    assert torch.equal(dyn.leaky_integrator.persistent_state(state, spike),
                       torch.tensor([1.0, 0.0, 0.0]))
    assert torch.equal(dyn.resonator.persistent_imag_state(state, spike, 1.0, 4),
                       torch.tensor([1.0, 0.75, 0.75]))
    th = torch.tensor([0.5, 0.5, 0.5])
    assert torch.equal(dyn.adaptive_threshold.persistent_ref_state(state, spike, th),
                       torch.tensor([1.0, 3.0, 4.0]))
    assert torch.equal(dyn.adaptive_threshold.persistent_th_state(th, spike, 0.25),
                       torch.tensor([0.5, 0.75, 0.75]))


def test_cuba_neuron_is_two_leaky_integrators():
    """The CUBA voltage is the leaky integrator of the leaky-integrated current (lava-dl's own
    composition of these functions)."""
    n = slayer.neuron.cuba.Neuron(threshold=0.5, current_decay=0.25, voltage_decay=0.03)
    x = torch.rand(2, 6, 30, generator=torch.Generator().manual_seed(1))
    u = dyn.leaky_integrator.dynamics(x, n.current_decay, torch.zeros(1), n.s_scale)
    v = dyn.leaky_integrator.dynamics(u, n.voltage_decay, torch.zeros(1), n.s_scale,
                                      threshold=n.threshold + n.threshold_eps)
    cu, cv = n.dynamics(x)
    assert torch.equal(u, cu) and torch.equal(v, cv)


def test_resonator_and_adaptive_variants_match_the_neurons():
    torch.manual_seed(2)
    x = (torch.rand(2, 4, 40) < 0.3).float(), (torch.rand(2, 4, 40) < 0.3).float()
    rf = slayer.neuron.rf_iz.Neuron(threshold=0.2, period=9, decay=0.1)
    re, im = dyn.resonator.dynamics(*x, rf.sin_decay, rf.cos_decay, torch.zeros(1),
                                    torch.zeros(1), rf.s_scale, rf.threshold)
    nre, nim = rf.dynamics(x)
    assert torch.equal(re, nre) and torch.equal(im, nim)
    ad = slayer.neuron.adrf_iz.Neuron(threshold=0.2, threshold_step=0.05, period=9, decay=0.1,
                                      threshold_decay=0.1, refractory_decay=0.2)
    got = dyn.adaptive_resonator.dynamics(
        *x, ad.sin_decay, ad.cos_decay, ad.refractory_decay, ad.threshold_decay,
        torch.zeros(1), torch.zeros(1), torch.zeros(1), torch.tensor(ad.threshold),
        ad.threshold_step, ad.threshold, ad.s_scale)
    for a, b in zip(got, ad.dynamics(x)):
        assert torch.equal(a, b)
