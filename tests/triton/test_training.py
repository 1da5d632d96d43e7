"""``slayerc.compile(model, x, backend="triton")``: the ``to_module`` module of the traced model,
trained side by side with the eager model.

The kernels run in Triton's interpreter on CPU (``TRITON_INTERPRET=1`` is set before triton is
imported, as in ``test_fused.py``).  Every family on a small network: the compiled module's
spikes equal the eager model's bit for bit, and every gradient agrees, parameter by parameter
through the checkpoint mapping (:mod:`slayerc.frontend.checkpoint`), normwise within ``1e-4``
(``max|Δ| ≤ 1e-4·max|g|``: an Input block's decay gradient is a sum with cancellation);
Adam steps give the same losses and parameters; the fallback warning; the errors.

No DDP test any more: the old one guarded the fx rewrite, whose wrappers held the model's layers
outside the module tree.  The compiled module is now a plain ``nn.Module`` whose parameters are
ordinary registered parameters, so DDP over it is torch's own machinery.
"""

from __future__ import annotations

import copy
import os
import warnings

os.environ.setdefault("TRITON_INTERPRET", "1")  # before triton is imported

import pytest  # noqa: E402
import torch  # noqa: E402

pytest.importorskip("triton", reason="triton is not installed: the fused kernels cannot run")

from neuron_params import NEURON_PARAMS as NEURON  # noqa: E402

import slayerc  # noqa: E402
import slayerc.slayer as slayer  # noqa: E402
from slayerc.backends.triton import ops  # noqa: E402
from slayerc.errors import FrontendError  # noqa: E402
from slayerc.frontend import checkpoint  # noqa: E402
from slayerc.runtime.interpreter import GraphModule  # noqa: E402

FLAGS = {
    # a conv layer (C, H, W) with per-channel parameters and axonal delays, graded spikes
    "conv-channel-graded-delay": ("conv", "channel", "graded", "delay"),
    # (Input block +) dense layers, per-neuron parameters, persistent states over two calls,
    # the persistent delay_shift frame and axonal delays
    "dense-neuron-state-delay": ("dense", "neuron", "state", "delay"),
}


def _params(family, flags):
    if family == "sigma_delta" and "conv" in flags:
        # trace() rejects a per-channel sigma-delta threshold of a conv layer (shape [C, 1, 1])
        flags = tuple(f for f in flags if f != "channel")
    p = dict(NEURON[family], requires_grad=True, persistent_state="state" in flags,
             shared_param="channel" not in flags and "neuron" not in flags,
             per_neuron_param="neuron" in flags)
    if family != "sigma_delta":
        p["graded_spike"] = "graded" in flags
    return p


def _family_model(family, flags):
    """A small network of one neuron family, its lazy parameters drawn (one forward of a twin,
    loaded, so that the model's states are still fresh); returns (model, input shape)."""
    twin, shape = _build(family, flags)
    with torch.no_grad():
        twin(torch.rand(shape))
    model, _ = _build(family, flags)
    model.load_state_dict(twin.state_dict())
    return model, shape


def _build(family, flags):
    p = _params(family, flags)
    b = getattr(slayer.block, family)
    delay = "delay" in flags
    if "conv" in flags:
        layers = [b.Conv(p, 2, 3, 3, padding=1, weight_scale=3, delay=delay),
                  b.Flatten(), b.Dense(p, 3 * 4 * 4, 4, weight_scale=3)]
        return torch.nn.Sequential(*layers), (2, 2, 4, 4, 10)
    layers = [b.Dense(p, 6, 5, weight_scale=3, delay=delay, delay_shift=True),
              b.Dense(p, 5, 4, weight_scale=3)]
    if family in ("cuba", "alif", "sigma_delta"):  # trace() has no resonator Input block
        layers.insert(0, b.Input(p))
    if family == "sigma_delta":
        layers.append(b.Output(p, 4, 3))
    return torch.nn.Sequential(*layers), (2, 6, 10)


def _mapped_grads(eager, compiled):
    """(name, compiled gradient, eager gradient in graph units) for every plain-mapped
    parameter: graph = model / scale, so the graph's gradient is the model's × scale."""
    cmap = getattr(compiled, checkpoint.ATTR)
    live = compiled.tensors()
    eager_params = dict(eager.named_parameters())
    for e in cmap.entries:
        p = eager_params.get(e.source)
        if e.kind != "copy" or p is None or not p.requires_grad:
            continue
        q = live[e.param]
        assert q.requires_grad, f"{e.param}: the model trains {e.source}, the module does not"
        yield e.param, q.grad, None if p.grad is None else p.grad.reshape(q.shape) * e.scale


def _compare_grads(eager, compiled, what):
    checked = 0
    for name, got, want in _mapped_grads(eager, compiled):
        assert (got is None) == (want is None), f"{what}: {name} grad presence differs"
        if want is None:
            continue
        scale = want.abs().max().item()
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-4 * scale + 1e-12,
                                   msg=lambda m, n=name: f"{what}: gradient of {n}: {m}")
        checked += 1
    return checked


def _run_compare(eager, compiled, x, calls, what):
    gen = torch.Generator().manual_seed(1)
    for call in range(calls):
        y_ref, y = eager(x), compiled(x)
        assert torch.equal(y, y_ref), f"{what}: call {call}: outputs differ"
        assert y_ref.abs().sum() > 0, f"{what}: no output activity"
        g = torch.randn(y.shape, generator=gen)
        (y_ref * g).sum().backward()
        (y * g).sum().backward()
        assert _compare_grads(eager, compiled, f"{what} call {call}") > 0


@pytest.mark.parametrize("flags", list(FLAGS))
@pytest.mark.parametrize("family", list(NEURON))
def test_family_matches_eager(family, flags):
    """Each neuron family, compiled: spikes exact, parameter gradients within rtol 1e-4."""
    torch.manual_seed(0)
    model, shape = _family_model(family, FLAGS[flags])
    x = 1.5 * torch.rand(shape)
    if family == "sigma_delta":
        x = torch.cumsum(0.3 * torch.randn(shape), -1)
    compiled = slayerc.compile(model, x, backend="triton")
    assert isinstance(compiled, GraphModule)
    assert any(n.OP.startswith("neuron.") for n in compiled.graph)
    _run_compare(model, compiled, x, 2 if "state" in FLAGS[flags] else 1, f"{family}/{flags}")


def test_bare_neurons_and_torch_layers():
    """Plain torch layers (Conv2d, BatchNorm, Linear) with bare slayer neurons: the torch
    layers' keys map one to one, and the forward equals eager."""
    from models import TorchCNN

    torch.manual_seed(0)
    x = (torch.rand(2, 2, 16, 16, 6) < 0.4).float()
    model = TorchCNN().eval()
    compiled = slayerc.compile(model, x, backend="triton")
    keys = {k for e in getattr(compiled, checkpoint.ATTR).entries for k in e.keys}
    assert {"conv1.weight", "bn1.running_mean", "fc.weight", "fc.bias"} <= keys
    assert torch.equal(compiled(x), model(x))


def test_compiling_a_model_that_never_ran_gives_it_the_drawn_values():
    """Compiling a model whose per-neuron decays are not drawn yet draws them once (the trace
    runs a copy, whose first forward draws) and gives the model the same values: no
    "not sized yet" warning, and the model's decays equal the compiled module's."""
    import warnings

    model, shape = _build("cuba", FLAGS["dense-neuron-state-delay"])
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        compiled = slayerc.compile(model, torch.rand(shape), backend="triton")
    back = checkpoint.model_state(compiled, model)
    decay = model.state_dict()["0.neuron.current_decay"]
    assert decay.numel() > 1 and float(decay.std()) > 0
    assert torch.equal(back["0.neuron.current_decay"], decay)


def test_persistent_states_train_over_calls():
    """Carried states hold no autograd history (as slayer's): a persistent module trains over
    calls, and each call's gradients equal eager's."""
    model, shape = _family_model("cuba", FLAGS["dense-neuron-state-delay"])
    x = 1.5 * torch.rand(shape)
    compiled = slayerc.compile(model, x, backend="triton")
    for _ in range(2):
        compiled(x).sum().backward()


def test_reference_fallback_is_announced(monkeypatch):
    """Without CUDA and without the interpreter, the torch dynamics run, with one warning."""
    monkeypatch.setenv("TRITON_INTERPRET", "0")
    monkeypatch.setitem(ops._state, "warned", False)
    net = _dense_net()
    x = torch.rand(2, 6, 8)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        compiled = slayerc.compile(net, x, backend="triton")
        y = compiled(x)
        compiled(x)
    msgs = [str(w.message) for w in caught if "slayerc.backends.triton" in str(w.message)]
    assert len(msgs) == 1 and "TRITON_INTERPRET" in msgs[0], msgs
    assert torch.equal(y, net(x))


def test_backend_errors():
    """Unknown backends, pipelines for training backends and bad inputs are rejected clearly."""
    net = _dense_net()
    x = torch.rand(1, 6, 4)
    with pytest.raises(FrontendError, match="unknown backend 'cuda'.*'triton'"):
        slayerc.compile(net, x, backend="cuda")
    for backend in ("triton", "torch"):
        with pytest.raises(FrontendError, match="backend='ir' only"):
            slayerc.compile(net, x, pipeline="shape-infer", backend=backend)
    with pytest.raises(FrontendError, match=r"\[N, C\(, H, W\), T\]"):
        slayerc.compile(net, torch.rand(6, 4), backend="triton")


# ---------------------------------------------------------------------------- training


def _dense_net(seed=0):
    """cuba Dense 6→8 (per-channel learnable decays, axonal delay) → Dense 8→3."""
    torch.manual_seed(seed)
    p = dict(NEURON["cuba"], requires_grad=True, shared_param=False)
    net = torch.nn.Sequential(
        slayer.block.cuba.Dense(p, 6, 8, weight_scale=3, delay=True),
        slayer.block.cuba.Dense(p, 8, 3, weight_scale=3),
    )
    with torch.no_grad():
        net[0].delay.delay.copy_(torch.arange(8) % 3 + 0.5)
    return net


def _adam(params, decays=(), lr=0.05):
    """Adam; the compiled module's decays (fractions of 4096) get lr/4096 and eps·4096, which
    makes their steps the eager model's steps in slayer units."""
    decay_ids = {id(p) for p in decays}
    rest = [p for p in params if id(p) not in decay_ids]
    groups = [{"params": rest}]
    if decays:
        groups.append({"params": list(decays), "lr": lr / 4096, "eps": 1e-8 * 4096})
    return torch.optim.Adam(groups, lr=lr)


def _train(model, opt, x, target, steps):
    losses = []
    for _ in range(steps):
        opt.zero_grad()
        loss = ((model(x).mean(-1) - target) ** 2).mean()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses


def test_adam_steps_match_eager():
    """Compiled and eager trained side by side: same losses, and the compiled parameters
    mapped back (``model_state``) equal the eager model's."""
    x = 1.5 * torch.rand(4, 6, 12)
    target = torch.rand(4, 3) * 0.5
    eager = _dense_net()
    with torch.no_grad():  # the first forward draws the per-channel decays (as lava-dl)
        eager(x)
    compiled = slayerc.compile(copy.deepcopy(eager), x, backend="triton")
    decays = checkpoint.decay_parameters(compiled)
    assert len(decays) == 4
    l_ref = _train(eager, _adam(list(eager.parameters())), x, target, 4)
    l_new = _train(compiled, _adam(list(compiled.parameters()), decays), x, target, 4)
    torch.testing.assert_close(l_new, l_ref, rtol=1e-4, atol=0)
    assert l_ref[-1] != l_ref[0]
    back = checkpoint.model_state(compiled, eager)
    assert list(back) == list(eager.state_dict())
    for name, p in eager.state_dict().items():
        torch.testing.assert_close(back[name], p, rtol=1e-4, atol=1e-6,
                                   msg=lambda m, n=name: f"{n}: {m}")
