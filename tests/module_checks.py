"""Shared checks of ``to_module`` against the eager ``slayerc.slayer`` reference models."""

from __future__ import annotations

import torch

import slayerc

DECAYS = ("current_decay", "voltage_decay", "threshold_decay", "refractory_decay", "sin_decay",
          "cos_decay")


def normwise(a: torch.Tensor, b: torch.Tensor) -> float:
    """``max|a − b| / max|b|`` (0 when both are zero)."""
    scale = b.abs().max().item()
    diff = (a - b).abs().max().item()
    return diff / scale if scale else diff


def compare_with_eager(net: torch.nn.Module, x: torch.Tensor, backend: str) -> list[str]:
    """Forward and gradients of ``to_module(trace(net))`` against ``net``; returns the names of
    the parameters compared (asserting each on the way).

    Parameters are matched by name (the tracer names graph parameters after the model's
    state-dict keys; a delay module's ``delay`` sits one level down).  Decays are fractions in
    the IR and ×4096 in slayer, so their gradients differ by exactly 4096.  Weight-normed
    weights (slayer trains ``weight_g``/``weight_v``) have no same-named eager parameter.
    """
    g = slayerc.trace(net, x)
    m = slayerc.to_module(g, backend=backend)
    y_ref = slayerc.interpret(g, x)
    w = torch.randn(y_ref.shape, generator=torch.Generator().manual_seed(1))
    xe, xm = x.clone().requires_grad_(), x.clone().requires_grad_()
    ye, ym = net(xe), m(xm)
    assert torch.equal(ym, ye), "to_module forward differs from the eager model"
    assert ye.abs().sum() > 0, "the case produces no output: it would check nothing"
    (ye * w).sum().backward()
    (ym * w).sum().backward()
    assert normwise(xm.grad, xe.grad) <= 1e-5, "input gradient"
    eager = dict(net.named_parameters())
    compared = []
    for name, p in m.named_parameters():
        q = eager.get(name) if name in eager else eager.get(name + ".delay")
        if q is None or q.grad is None:
            continue
        ge = q.grad.reshape(p.shape) * (4096 if name.rsplit(".", 1)[-1] in DECAYS else 1)
        gm = p.grad if p.grad is not None else torch.zeros_like(p)
        assert normwise(gm, ge) <= 1e-5, f"gradient of {name}"
        compared.append(name)
    return compared
