"""The synaptic products with hand-written backward passes give autograd's values bit for bit."""

from __future__ import annotations

import pytest
import torch

from slayerc.frontend.slayer.synapse import _products as P
from slayerc.runtime import compiled


def _grad_out(rows: int, cols: int, seed: int) -> torch.Tensor:
    """An output gradient spread over the whole float32 range, subnormals and zeros included."""
    g = torch.Generator().manual_seed(seed)
    v = torch.randn(rows, cols, generator=g)
    v = v * torch.exp2(-torch.randint(0, 150, (rows, cols), generator=g).float())
    v[:, 0] = torch.randn(rows, generator=g) * 2.0**-140  # a column whose sums are subnormal
    return v.where(torch.rand(rows, cols, generator=g) > 0.2, torch.zeros(()))


def _autograd(x, w, g):
    x, w = x.detach().requires_grad_(), w.detach().requires_grad_()
    torch.mm(x, w.t()).backward(g)
    return x.grad, w.grad


def _ours(x, w, g):
    x, w = x.detach().requires_grad_(), w.detach().requires_grad_()
    P.dense_product(x, w).backward(g)
    return x.grad, w.grad


@pytest.mark.parametrize("case", ["spikes", "graded", "column-major", "huge"])
def test_dense_product_gradients_are_autograd_bits(case):
    gen = torch.Generator().manual_seed(1)
    x = (torch.rand(300, 40, generator=gen) < 0.2).float()
    if case == "graded":
        x = x * torch.rand(300, 40, generator=gen)
    if case == "column-major":
        x = x.t().contiguous().t()
    w = torch.randn(24, 40, generator=gen)
    g = _grad_out(300, 24, 2)
    if case == "huge":
        g[0, 0] = 3e38  # no room to scale: the plain product runs
    for a, b in zip(_autograd(x, w, g), _ours(x, w, g)):
        assert torch.equal(a, b)


def test_weight_gradient_is_scaled_only_for_spikes():
    x = (torch.rand(64, 8) < 0.5).float()
    g = _grad_out(64, 4, 3)
    assert P._lift(g, x) == P._MAX_LIFT
    assert P._lift(g, x * 0.5) == 0
    assert P._lift(g.fill_(float("nan")), x) == 0
    assert torch.equal(P._weight_grad(_grad_out(64, 4, 3), x), _grad_out(64, 4, 3).t().mm(x))


@pytest.mark.parametrize("on", [True, False])
def test_is_binary(on):
    old = compiled.set_compiled(on)
    try:
        x = torch.tensor([0.0, 1.0, -0.0, 1.0])
        assert compiled.is_binary(x)
        assert not compiled.is_binary(torch.tensor([0.0, 0.5]))
        assert not compiled.is_binary(torch.tensor([1.0, float("nan")]))
        assert compiled.is_binary(torch.zeros(3, 2).t())  # non-contiguous: the torch check
    finally:
        compiled.set_compiled(old)


def test_float32_exponents():
    x = torch.tensor([0.0, 1.0, -3.0, 2.0**-140, -(2.0**-149)])
    if compiled.compiled():
        assert compiled.float32_exponents(x) == (128, 2)  # 3.0 = 1.5·2^1: biased exponent 128
        assert compiled.float32_exponents(torch.tensor([float("inf")]))[0] == 255
    assert compiled.float32_exponents(x.double()) is None
