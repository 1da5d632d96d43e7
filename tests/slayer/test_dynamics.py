"""Tests of the reference dynamics kernels (slayerc.runtime.dynamics / spikes / axon).

Integer cases are checked against hand-computed numbers and against a tiny pure-Python-int
transcription of the formulas in spec/slayer-dynamics.md §3 (not against the kernels' output).
Gradients are checked against autograd of a float re-implementation of the linear maps and
against finite differences.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from slayerc.runtime import axon, dynamics, spikes

S = 4096


def tz(p: int) -> int:
    """Spec: right shift by 12 toward zero."""
    return -((-p) >> 12) if p < 0 else p >> 12


def li_ref(xs, D, S=S, theta=None, y0=0):
    """Pure-int transcription of spec §3.1 (CPU rule, float32 threshold compare)."""
    out, y = [], y0
    th = None if theta is None else float(np.float32(theta * S))
    for x in xs:
        y_new = tz(y * (4096 - D)) + int(np.float32(x) * np.float32(S))
        out.append(y_new)
        y = 0 if (th is not None and th > 0 and np.float32(y_new) >= th) else y_new
    return out


def res_ref(xr, xi, Sn, C, S=S, theta=None):
    """Pure-int transcription of spec §3.2 (with the rf_iz reset when theta is given)."""
    re = im = 0
    res = []
    for a, b in zip(xr, xi):
        rn = tz(C * re) - tz(Sn * im) + int(np.float32(a) * np.float32(S))
        imn = tz(Sn * re) + tz(C * im) + int(np.float32(b) * np.float32(S))
        res.append((rn, imn))
        if theta is not None and np.float32(imn) >= np.float32(theta * S):
            re, im = 0, int(np.float32(theta * S - 1))
        else:
            re, im = rn, imn
    return res


def t3(seq):
    return torch.tensor(seq, dtype=torch.float32).reshape(1, 1, -1)


# --------------------------------------------------------------------------- integer exactness


def test_leaky_integrator_hand_computed():
    # D = 1024: keep 3/4.  y0 = 4096, then tz(4096·3072) = 3072, 2304, 1728;
    # a negative input: tz(-4097·3072 / 4096) = tz(-3072.75) = -3072 (floor would give -3073).
    y = dynamics.leaky_integrator(t3([1.0, 0, 0, 0]), torch.tensor([1024.0]))
    assert (y * S).flatten().tolist() == [4096, 3072, 2304, 1728]
    y = dynamics.leaky_integrator(t3([-4097 / S, 0.0]), torch.tensor([1024.0]))
    assert (y * S).flatten().tolist() == [-4097, -3072]
    # I(S·x) truncates toward zero: x = -1.5/S -> -1
    y = dynamics.leaky_integrator(t3([-1.5 / S, 1.9 / S]), torch.tensor([0.0]))
    assert (y * S).flatten().tolist() == [-1, 0]


def test_leaky_integrator_reset_rule():
    # CUBA passes θ + 0.01/S: a voltage exactly at θ·S does not reset, one unit above does.
    th = 1.0 + 0.01 / S
    x = t3([1.0, 0.0, 1.0 + 1 / S, 0.0])
    y = dynamics.leaky_integrator(x, torch.tensor([0.0]), None, S, th)
    assert (y * S).flatten().tolist() == [4096, 4096, 4096 + 4097, 0]
    # no threshold / non-positive threshold: never reset
    y = dynamics.leaky_integrator(t3([2.0, 0.0]), torch.tensor([0.0]), None, S, -1)
    assert (y * S).flatten().tolist() == [8192, 8192]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_leaky_integrator_matches_int_reference(seed):
    g = torch.Generator().manual_seed(seed)
    x = (torch.randn(3, 4, 60, generator=g) * 0.7).float()
    decay = torch.tensor([137.0, 1024.0, 4000.0, 0.0])  # per channel
    th = 1.25 + 0.01 / S
    y = dynamics.leaky_integrator(x, decay, None, S, th)
    for n in range(3):
        for c in range(4):
            ref = li_ref(x[n, c].tolist(), int(decay[c]), theta=th)
            assert (y[n, c] * S).round().long().tolist() == ref


def test_reset_level_equals_float32_compare():
    for th in [1.0 + 0.01 / S, 64.0 + 0.01 / S, 3.3, 2.0**24 + 3.7, 2.0**25 + 1.0, 1e9 + 0.5]:
        k = dynamics.reset_level(th)
        ys = torch.arange(int(k) - 300, int(k) + 300, dtype=torch.int64)
        want = ys >= th  # torch's own int64-vs-float comparison (what lava-dl runs)
        assert torch.equal(want, ys.double() >= k), th


def test_resonator_matches_int_reference_and_reset():
    g = torch.Generator().manual_seed(3)
    xr, xi = torch.rand(2, 3, 40, generator=g) * 0.6, torch.rand(2, 3, 40, generator=g) * 0.6
    sin, cos = torch.tensor([2606.678]), torch.tensor([2606.678])  # round -> 2607
    for theta in (None, 0.5):
        re, im = dynamics.resonator(xr, xi, sin, cos, None, None, S, theta)
        for n in range(2):
            for c in range(3):
                ref = res_ref(xr[n, c].tolist(), xi[n, c].tolist(), 2607, 2607, theta=theta)
                assert (re[n, c] * S).round().long().tolist() == [r for r, _ in ref]
                assert (im[n, c] * S).round().long().tolist() == [i for _, i in ref]


def test_resonator_hand_computed():
    # C = Sn = 2048 (a rotation by 45° scaled by 0.707): re0 = 4096, im0 = 0, then
    # re1 = tz(2048·4096) − 0 = 2048, im1 = 2048; re2 = 1024 − 1024 = 0, im2 = 2048.
    re, im = dynamics.resonator(t3([1.0, 0, 0]), t3([0.0, 0, 0]), torch.tensor([2048.0]),
                                torch.tensor([2048.0]))
    assert (re * S).flatten().tolist() == [4096, 2048, 0]
    assert (im * S).flatten().tolist() == [0, 2048, 2048]


def test_adaptive_threshold_hand_computed():
    # θ0 = 1.0 -> 4096, step 0.5 -> 2048, Dθ = Dr = 2048 (halve each step).
    v = t3([2.0, 0.0, 0.0])
    th, r = dynamics.adaptive_threshold(v, torch.tensor([2048.0]), torch.tensor([2048.0]), 0.5, 1.0)
    # t0: r=0, θ=4096, v=8192 ≥ 4096 -> spike: θ <- 6144, r <- 8192
    # t1: r = 4096, θ = tz(2048·2048)+4096 = 5120; v=0 -> no spike
    # t2: r = 2048, θ = tz(1024·2048)+4096 = 4608
    assert (th * S).flatten().tolist() == [4096, 5120, 4608]
    assert (r * S).flatten().tolist() == [0, 4096, 2048]


def _adres_ref(xr, xi, Sn, C, Dth, Dr, step, th0):
    re = im = ref = 0
    th = th0
    out = []
    for a, b in zip(xr, xi):
        ref = tz(ref * (4096 - Dr))
        th = tz((th - th0) * (4096 - Dth)) + th0
        rn = tz(C * re - Sn * im) + int(np.float32(a) * np.float32(S))
        imn = tz(Sn * re + C * im) + int(np.float32(b) * np.float32(S))
        out.append((rn, imn, th, ref))
        if imn >= th + ref:
            th, ref = th + step, ref + 2 * (th)
        re, im = rn, imn
    return out


def test_adaptive_resonator_matches_int_reference():
    g = torch.Generator().manual_seed(5)
    xr, xi = torch.rand(1, 4, 50, generator=g) * 0.5, torch.rand(1, 4, 50, generator=g) * 0.5
    re, im, th, r = dynamics.adaptive_resonator(
        xr, xi, torch.tensor([1200.0]), torch.tensor([3500.0]), torch.tensor([300.0]),
        torch.tensor([500.0]), 0.5, 0.25,
    )
    for c in range(4):
        ref = _adres_ref(xr[0, c].tolist(), xi[0, c].tolist(), 1200, 3500, 300, 500, 2048, 1024)
        got = [(re * S), (im * S), (th * S), (r * S)]
        for k in range(4):
            assert got[k][0, c].round().long().tolist() == [row[k] for row in ref]


def test_float64_int_emulation_is_exact_for_large_states():
    # Values around 2**38 still agree with an int64 transcription.
    x = t3([2.0**26, -(2.0**26) + 3, 1234.5, 0.0]).double()
    y = dynamics.leaky_integrator(x, torch.tensor([7.0]))
    ys, y0 = [], 0  # I(S·x) of a float64 input is computed in float64
    for v in x.flatten().tolist():
        y0 = tz(y0 * (4096 - 7)) + int(v * S)
        ys.append(y0)
    assert (y * S).flatten().long().tolist() == ys


# ------------------------------------------------------------------------------- gradients


def _li_float(x, d):
    """Linear leaky integrator in float (no truncation, no reset), differentiable in x and D."""
    keep = 1 - d / 4096
    prev = torch.zeros_like(x[..., 0])
    y = []
    for t in range(x.shape[-1]):
        prev = keep * prev + x[..., t]
        y.append(prev)
    return torch.stack(y, -1)


def _res_float(xr, xi, sn, c):
    re = torch.zeros_like(xr[..., 0])
    im = torch.zeros_like(xr[..., 0])
    out_r, out_i = [], []
    for t in range(xr.shape[-1]):
        re, im = (c * re - sn * im) / 4096 + xr[..., t], (sn * re + c * im) / 4096 + xi[..., t]
        out_r.append(re)
        out_i.append(im)
    return torch.stack(out_r, -1), torch.stack(out_i, -1)


@pytest.mark.parametrize("decay_shape", [(1,), (5,)])
def test_li_backward_equals_autograd_of_linear_map(decay_shape):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(3, 5, 37, generator=g, dtype=torch.float64) * 0.1
    d = torch.randint(0, 4097, decay_shape, generator=g).double().requires_grad_()
    big = 2**30  # truncation negligible: the kernel follows the linear map to ~1e-9
    y = dynamics.leaky_integrator(x.requires_grad_(), d, None, big)
    d2 = d.detach().clone().requires_grad_()
    x2 = x.detach().clone().requires_grad_()
    y2 = _li_float(x2, d2)
    assert torch.allclose(y, y2, atol=1e-6)
    gy = torch.randn(y.shape, generator=g, dtype=torch.float64)
    gx, gd = torch.autograd.grad(y, (x, d), gy)
    gx2, gd2 = torch.autograd.grad(y2, (x2, d2), gy)
    assert torch.allclose(gx, gx2, rtol=1e-9, atol=1e-9)
    assert torch.allclose(gd, gd2, rtol=1e-6, atol=1e-9)


def test_li_gradcheck_linear_map():
    d = torch.tensor([900.0], dtype=torch.float64)
    x = (torch.randn(2, 3, 9, dtype=torch.float64) * 0.1).requires_grad_()
    # the kernel is linear in x up to integer truncation at scale 2**36 (1e-11 relative)
    fn = lambda x: dynamics.leaky_integrator(x, d, None, 2**36)  # noqa: E731
    assert torch.autograd.gradcheck(fn, (x,), eps=1e-3, atol=1e-6)


def test_resonator_backward_equals_autograd_of_linear_map():
    g = torch.Generator().manual_seed(1)
    xr = torch.randn(2, 4, 30, generator=g, dtype=torch.float64) * 0.1
    xi = torch.randn(2, 4, 30, generator=g, dtype=torch.float64) * 0.1
    sn = torch.tensor([1500.0], dtype=torch.float64, requires_grad=True)
    c = torch.tensor([3300.0], dtype=torch.float64, requires_grad=True)
    xr.requires_grad_()
    xi.requires_grad_()
    re, im = dynamics.resonator(xr, xi, sn, c, None, None, 2**30)
    args2 = [t.detach().clone().requires_grad_() for t in (xr, xi, sn, c)]
    re2, im2 = _res_float(*args2)
    assert torch.allclose(re, re2, atol=1e-6) and torch.allclose(im, im2, atol=1e-6)
    gr, gi = torch.randn_like(re), torch.randn_like(im)
    got = torch.autograd.grad((re, im), (xr, xi, sn, c), (gr, gi))
    want = torch.autograd.grad((re2, im2), args2, (gr, gi))
    for a, b in zip(got, want):
        assert torch.allclose(a, b, rtol=1e-6, atol=1e-9)


def test_adaptive_resonator_gradient_is_resonator_gradient():
    g = torch.Generator().manual_seed(2)
    xr, xi = torch.rand(1, 3, 20, generator=g), torch.rand(1, 3, 20, generator=g)
    sn = torch.tensor([1500.0], requires_grad=True)
    c = torch.tensor([3300.0], requires_grad=True)
    re, im, _, _ = dynamics.adaptive_resonator(
        xr, xi, sn, c, torch.tensor([100.0]), torch.tensor([100.0]), 0.5, 1.0
    )
    gr, gi = torch.randn_like(re), torch.randn_like(im)
    a = torch.autograd.grad((re, im), (sn, c), (gr, gi))
    sn2, c2 = sn.detach().clone().requires_grad_(), c.detach().clone().requires_grad_()
    re2, im2 = dynamics.resonator(xr, xi, sn2, c2)
    # same backward formula evaluated at (slightly different) recorded traces
    re2.data.copy_(re.data)
    im2.data.copy_(im.data)
    b = torch.autograd.grad((re2, im2), (sn2, c2), (gr, gi))
    for u, v in zip(a, b):
        assert torch.allclose(u, v, rtol=1e-4)


def _fd_check(loss_fn, param, delta=32.0, rel=0.05):
    """Central finite difference (in stored ×4096 units) vs autograd: same sign, close size."""
    p = param.detach().clone().requires_grad_()
    (grad,) = torch.autograd.grad(loss_fn(p), p)
    with torch.no_grad():
        up, down = loss_fn(p + delta), loss_fn(p - delta)
    fd = ((up - down) / (2 * delta)).item()
    assert math.copysign(1, fd) == math.copysign(1, grad.item())
    assert abs(grad.item() - fd) <= rel * abs(fd), (grad.item(), fd)


def test_learnable_decay_moves_loss_as_its_gradient_says():
    g = torch.Generator().manual_seed(4)
    # integer truncation makes the loss a staircase in D: use inputs and steps large enough
    # that the finite difference sees the slope, not the stairs
    x = torch.rand(4, 8, 60, generator=g)
    w = torch.randn(4, 8, 60, generator=g) + 0.5
    _fd_check(lambda d: (dynamics.leaky_integrator(x, d) * w).sum(), torch.tensor([700.0]))
    _fd_check(lambda d: (dynamics.leaky_integrator(x, d) ** 2).sum(), torch.tensor([300.0]))
    xr, xi = x, torch.rand(4, 8, 60, generator=g)
    c0, s0 = torch.tensor([3000.0]), torch.tensor([1800.0])
    _fd_check(lambda c: (dynamics.resonator(xr, xi, s0, c)[0] * w).sum(), c0)
    _fd_check(lambda s: (dynamics.resonator(xr, xi, s, c0)[1] * w).sum(), s0)


# ------------------------------------------------------------------------------ spikes


def test_spike_forward_and_surrogate():
    v = torch.tensor([[[0.5, 1.0, 1.5]]], requires_grad=True)
    s = spikes.spike(v, 1.0, 0.2, 3.0)
    assert s.tolist() == [[[0.0, 1.0, 1.0]]]
    (g,) = torch.autograd.grad(s.sum(), v)
    want = 3.0 / 2 / 0.2 * torch.exp(-torch.abs(v.detach() - 1.0) / 0.2)
    assert torch.allclose(g, want)
    sg = spikes.spike(v, 1.0, 0.2, 3.0, graded=True)
    assert sg.tolist() == [[[0.0, 1.0, 1.5]]]
    (g,) = torch.autograd.grad(sg.sum(), v)
    assert torch.allclose(g, 3.0 * torch.exp(torch.clamp(v.detach() - 1.0, max=0) / 0.2))


def test_complex_spike_phase_crossing_and_surrogate():
    re = torch.tensor([[[2.0, 2.0, 2.0, 0.1, 2.0]]], requires_grad=True)
    im = torch.tensor([[[0.5, -0.1, 0.2, -0.3, 0.0]]], requires_grad=True)
    s = spikes.complex_spike(re, im, 1.0, 0.5, 2.0, im_last=torch.tensor([[-1.0]]))
    assert s.tolist() == [[[1.0, 0.0, 1.0, 0.0, 1.0]]]
    gre, gim = torch.autograd.grad(s.sum(), (re, im))
    r, i = re.detach(), im.detach()
    d_re = 1 / 2 / 0.5 * torch.exp(-torch.abs(r - 1) / 0.5)
    d_im = 1 / 2 / 0.5 * torch.exp(-torch.abs(i) / 0.5)
    step = 0.5 * (1 + torch.sign(r - 1) * (1 - 2 * 0.5 * d_re))
    assert torch.allclose(gre, 2.0 * d_re * d_im)
    assert torch.allclose(gim, -(2.0 / 0.5) * torch.sign(i) * d_im * step)


# --------------------------------------------------------------------- shift, delta, sigma


def test_shift_per_channel_truncates_and_gradient_is_inverse_shift():
    x = torch.arange(1.0, 7.0).reshape(1, 1, 6).repeat(1, 3, 1)
    d = torch.tensor([1.7, -1.5, 0.0])  # -> 1, -1, 0 (toward zero)
    y = axon.shift(x, d)
    assert y[0].tolist() == [[0, 1, 2, 3, 4, 5], [2, 3, 4, 5, 6, 0], [1, 2, 3, 4, 5, 6]]
    xs = torch.randn(2, 3, 6, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda v: axon.shift(v, d), (xs,))
    assert torch.autograd.gradcheck(lambda v: axon.shift(v, 2), (xs,))


def test_shift_conv_per_channel_and_scalar():
    x = torch.randn(2, 2, 3, 4, 8)
    y = axon.shift(x, torch.tensor([2.0, 0.0]))
    assert torch.equal(y[:, 0, ..., 2:], x[:, 0, ..., :-2]) and torch.equal(y[:, 1], x[:, 1])
    assert torch.equal(axon.shift(x, 3)[..., 3:], x[..., :-3])
    assert torch.equal(axon.shift(x, 100), torch.zeros_like(x))


def test_delay_gradient_formula():
    x = torch.randn(2, 3, 10, requires_grad=True)
    d = torch.tensor([1.2, 0.0, 2.9], requires_grad=True)
    y = axon.delay(x, d, grad_scale=2.0)
    g = torch.randn_like(y)
    gx, gd = torch.autograd.grad(y, (x, d), g)
    yd = y.detach()
    prev = torch.nn.functional.pad(yd[..., :-1], (1, 0))
    assert torch.allclose(gd, 2.0 * (g * (prev - yd)).sum((0, 2)))
    assert torch.allclose(gx, axon.shift(g, -d.detach()))


def test_delta_encoder_hand_computed():
    x = t3([0.05, 0.15, 0.15, 0.3, 0.1])
    y, res, _ = axon.delta_encode(x, torch.tensor([0.1]), scale=64)
    # Δ: 0.05 (<θ, r=.05), .15 (send, floor to 1/64 grid: 9/64), 0, .15 (send), -.2 (send)
    want = [0.0, math.floor(0.15 * 64) / 64, 0.0, math.floor(0.15 * 64) / 64,
            math.floor(-0.2 * 64) / 64]
    assert torch.allclose(y.flatten(), torch.tensor(want))
    # |Δ| == θ sends (≥)
    y, _, _ = axon.delta_encode(t3([0.25, 0.25]), torch.tensor([0.25]), scale=4)
    assert y.flatten().tolist() == [0.25, 0.0]


def test_delta_gradients():
    x = torch.tensor([[[0.05, 0.3, 0.3, 0.1]]], requires_grad=True)
    th = torch.tensor([0.1], requires_grad=True)
    y, _, _ = axon.delta_encode(x, th, scale=4096, tau_grad=0.5, scale_grad=2.0)
    g = torch.tensor([[[1.0, 2.0, 3.0, 4.0]]])
    gx, gth = torch.autograd.grad(y, (x, th), g)
    assert gx.flatten().tolist() == [-1.0, -1.0, -1.0, 4.0]
    d = torch.tensor([0.05, 0.3, 0.0, -0.2])  # the pre-threshold deltas (residual 0.05 at t1)
    d[1] = 0.3
    sub = d.abs() - 0.1
    per = torch.where(sub > 0, -d * 2.0 * torch.exp(-sub / 0.5) / 0.1, -torch.sign(d))
    assert torch.allclose(gth, (per * g.flatten()).sum().reshape(1), rtol=1e-5)


def test_sigma_cumsum_with_state():
    x = torch.ones(1, 2, 4)
    assert axon.sigma(x, torch.tensor([[1.0, 2.0]]))[0, :, -1].tolist() == [5.0, 6.0]
