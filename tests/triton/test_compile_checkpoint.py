"""Slayer checkpoints and ``slayerc.compile(..., backend="torch" | "triton")`` modules: the
mapping of :mod:`slayerc.frontend.checkpoint`, both ways.

* compile → Adam steps → ``model_state`` → a fresh model of the same class (``strict=True``):
  its eager forward equals the compiled module's exactly (a Dense/Conv cuba stack, and the same
  stack with weight norm);
* a checkpoint saved from a trained eager model loads into a compiled module of another instance
  and gives the eager forward;
* strict loading names missing, unexpected and misfit keys.
"""

from __future__ import annotations

import io
import os

os.environ.setdefault("TRITON_INTERPRET", "1")  # before triton is imported

import pytest  # noqa: E402
import torch  # noqa: E402

pytest.importorskip("triton", reason="triton is not installed: the fused kernels cannot run")

import slayerc  # noqa: E402
import slayerc.slayer as slayer  # noqa: E402
from slayerc.errors import FrontendError  # noqa: E402
from slayerc.frontend.checkpoint import load_model_state, model_state  # noqa: E402

CUBA = {"threshold": 0.5, "current_decay": 0.25, "voltage_decay": 0.03, "requires_grad": True}
SHAPE = (2, 2, 6, 6, 8)


def _net(weight_norm: bool, seed: int = 0) -> torch.nn.Sequential:
    """cuba Conv (2→4, shared decays, axonal delay) → Flatten → Dense (per-channel decays)."""
    torch.manual_seed(seed)
    b = slayer.block.cuba
    return torch.nn.Sequential(
        b.Conv(CUBA, 2, 4, 3, padding=1, stride=2, weight_scale=3, weight_norm=weight_norm,
               delay=True),
        b.Flatten(),
        b.Dense(dict(CUBA, shared_param=False), 4 * 3 * 3, 5, weight_scale=3,
                weight_norm=weight_norm, delay_shift=True),
    )


def _x(seed: int = 1) -> torch.Tensor:
    return (torch.rand(SHAPE, generator=torch.Generator().manual_seed(seed)) < 0.5).float()


def _adam(m, steps=3):
    x, target = _x(2), torch.rand(2, 5, generator=torch.Generator().manual_seed(3)) * 0.3
    opt = torch.optim.Adam(m.parameters(), lr=0.02)
    for _ in range(steps):
        opt.zero_grad()
        ((m(x).mean(-1) - target) ** 2).mean().backward()
        opt.step()


@pytest.mark.parametrize("backend", ["torch", "triton"])
@pytest.mark.parametrize("weight_norm", [False, True], ids=["plain", "weight_norm"])
def test_trained_module_maps_back_into_the_model(weight_norm, backend):
    model = _net(weight_norm)
    x = _x()
    compiled = slayerc.compile(model, x, backend=backend)
    assert torch.equal(compiled(x), model(x))
    before = {k: v.clone() for k, v in compiled.state_dict().items()}
    _adam(compiled)
    changed = [k for k, v in compiled.state_dict().items() if not torch.equal(v, before[k])]
    assert "0.synapse.weight" in changed and "0.delay" in changed
    assert "n0_neuron.current_decay" in changed  # a shared decay, trained as the model does
    fresh = _net(weight_norm, seed=7)
    state = model_state(compiled, fresh)
    assert list(state) == list(fresh.state_dict())
    fresh.load_state_dict(state, strict=True)
    if weight_norm:  # weight norm holds g·v/‖v‖, and that is exactly W
        w = compiled.get_parameter("2.synapse.weight")
        assert torch.equal(fresh[2].synapse.raw_weight().detach().reshape(w.shape), w.detach())
    for i in range(2):
        assert torch.equal(fresh(_x(10 + i)), compiled(_x(10 + i))), f"call {i}"


@pytest.mark.parametrize("weight_norm", [False, True], ids=["plain", "weight_norm"])
def test_eager_checkpoint_loads_into_compiled_module(weight_norm):
    trained = _net(weight_norm)
    _adam(trained)
    buf = io.BytesIO()
    torch.save(trained.state_dict(), buf)
    buf.seek(0)
    other = _net(weight_norm, seed=5)
    compiled = slayerc.compile(other, _x(), backend="triton")
    x = _x(4)
    assert not torch.equal(compiled(x), trained(x))
    load_model_state(compiled, torch.load(buf, weights_only=True))
    assert torch.equal(compiled(x), trained(x))


def test_strict_loading_names_the_keys():
    compiled = slayerc.compile(_net(False), _x(), backend="torch")
    state = _net(False).state_dict()
    missing = {k: v for k, v in state.items() if k != "0.delay.delay"}
    with pytest.raises(FrontendError, match=r"missing keys \['0.delay.delay'\]"):
        load_model_state(compiled, missing)
    with pytest.raises(FrontendError, match=r"unexpected keys \['extra'\]"):
        load_model_state(compiled, {**state, "extra": torch.zeros(1)})
    load_model_state(compiled, missing, strict=False)  # the keys that fit
    bad = {**state, "2.synapse.weight": torch.zeros(5, 3, 1, 1, 1)}
    with pytest.raises(FrontendError, match="'2.synapse.weight' has shape"):
        load_model_state(compiled, bad)
    with pytest.raises(FrontendError, match="made by slayerc.compile"):
        model_state(torch.nn.Linear(2, 2))
