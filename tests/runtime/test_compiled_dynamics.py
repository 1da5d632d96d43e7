"""The compiled (numba) neuron recursions give the torch loops' bits: forward and gradients."""

from __future__ import annotations

import pytest
import torch

from slayerc.runtime import compiled
from slayerc.runtime import dynamics as dyn

pytestmark = pytest.mark.skipif(compiled.numba is None, reason="numba not installed")


def _both(fn, *tensors):
    """``fn`` on leaf copies of ``tensors``, compiled and torch loop: (outputs, grads) each."""
    results = []
    for on in (True, False):
        old = compiled.set_compiled(on)
        try:
            leaves = [t.detach().clone().requires_grad_(t.is_floating_point()) for t in tensors]
            outs = fn(*leaves)
            outs = outs if isinstance(outs, tuple) else (outs,)
            loss = sum((o * torch.linspace(-1, 2, o.shape[-1])).sum()
                       for o in outs if o is not None and o.requires_grad)
            grads = torch.autograd.grad(loss, leaves, allow_unused=True) if torch.is_tensor(
                loss) else [None] * len(leaves)
        finally:
            compiled.set_compiled(old)
        results.append(([o.detach() for o in outs if o is not None], grads))
    return results


def _equal(a, b):
    for x, y in zip(a[0] + list(a[1]), b[0] + list(b[1])):
        assert (x is None) == (y is None)
        if x is not None:
            assert torch.equal(x, y)
            assert torch.equal(torch.signbit(x), torch.signbit(y))


def _x(seed, shape=(3, 5, 4, 40), graded=False):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(shape, generator=g) * 3 - 1
    if graded:  # sparse graded spikes
        x = x * (torch.rand(shape, generator=g) < 0.2)
    return x


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("threshold", [None, 0.7])
def test_leaky_integrator(seed, threshold):
    x = _x(seed, graded=seed == 1)
    decay = torch.rand(5, 4) * 4096  # per neuron
    state = torch.rand(5, 4) - 0.3
    a, b = _both(lambda x, d, s: dyn.leaky_integrator(x, d, s, threshold=threshold),
                 x, decay, state)
    _equal(a, b)


@pytest.mark.parametrize("threshold", [None, 0.4])
def test_resonator(threshold):
    xr, xi = _x(2), _x(3)
    sin_d, cos_d = torch.rand(5, 1, 1)[:, 0] * 800, 3000 + torch.rand(5) * 900  # per channel
    re_s, im_s = torch.rand(5, 4) - 0.5, torch.rand(5, 4) - 0.5
    a, b = _both(lambda *t: dyn.resonator(*t, threshold=threshold), xr, xi, sin_d, cos_d,
                 re_s, im_s)
    _equal(a, b)


@pytest.mark.parametrize("persist", [False, True])
def test_adaptive_threshold(persist):
    v = _x(4) * 2
    states = (torch.rand(5, 4) + 0.5, torch.rand(5, 4)) if persist else (None, None)
    a, b = _both(lambda v, dt, dr: dyn.adaptive_threshold(v, dt, dr, 0.3, 0.8, 4096, *states),
                 v, torch.rand(5, 4) * 4096, torch.tensor([1000.0]))
    _equal(a, b)
    assert a[0][1].abs().sum() > 0  # some neuron fired, the refractory trace moved


def test_adaptive_phase_threshold():
    re, im = _x(5) * 2, _x(6) - 0.5
    im_state = torch.rand(5, 4) - 0.5
    a, b = _both(lambda re, im: dyn.adaptive_phase_threshold(
        re, im, torch.tensor([300.0]), torch.tensor([900.0]), 0.2, 0.5, 4096,
        im_state, None, None), re, im)
    _equal(a, b)
    assert a[0][1].abs().sum() > 0


def test_adaptive_resonator():
    xr, xi = _x(7), _x(8)
    states = (torch.rand(5, 4) - 0.5, None, torch.rand(5, 4) + 0.3, None)
    a, b = _both(lambda xr, xi, s, c: dyn.adaptive_resonator(
        xr, xi, s, c, torch.tensor([200.0]), torch.tensor([700.0]), 0.2, 0.4, 4096, states),
        xr, xi, torch.rand(5, 4) * 900, 3000 + torch.rand(5, 4) * 900)
    _equal(a, b)
    assert a[0][3].abs().sum() > 0


def test_float64_input_and_switch():
    x = _x(9).double()
    d = torch.tensor([1234.0])
    a, b = _both(lambda x, d: dyn.leaky_integrator(x, d, None, threshold=0.5), x, d)
    _equal(a, b)
    old = compiled.set_compiled(False)
    try:
        assert not compiled.fits(torch.zeros(2, dtype=torch.float64))
    finally:
        compiled.set_compiled(old)


@pytest.mark.parametrize("scale", [3001, 64 * 1000])
def test_leaky_integrator_float32_rounding(scale):
    """Scales that are not powers of two: ``I(S·x)`` rounds in float32, ``y/S`` leaves in it."""
    x = _x(10, graded=True) * 7.3
    decay = torch.tensor([517.0])
    a, b = _both(lambda x, d: dyn.leaky_integrator(x, d, None, scale, threshold=1.3), x, decay)
    _equal(a, b)


@pytest.mark.parametrize("cum_error", [False, True])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_delta_encode(cum_error, dtype):
    from slayerc.runtime.axon import delta_encode

    x = _x(11, graded=True).to(dtype)
    theta = (torch.rand(5, 4) * 0.4 + 0.05).to(dtype)
    pre, res = torch.rand(5, 4).to(dtype), (torch.rand(5, 4) * 0.1).to(dtype)
    err = torch.zeros(3, 5, 4, dtype=dtype) if cum_error else None
    a, b = _both(lambda x, th: delta_encode(x, th, pre, res, err), x, theta)
    _equal(a, b)
    assert (a[0][0] == 0).any() and (a[0][0] != 0).any()  # the threshold both sent and held
