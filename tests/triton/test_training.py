"""``slayerc.compile(model, x, backend="triton")``: the fused training graph against eager.

The kernels run in Triton's interpreter on CPU (``TRITON_INTERPRET=1`` is set before triton is
imported, as in ``test_fused.py``).  Every case: the compiled module's spikes equal the eager
model's bit for bit, and every parameter gradient agrees within ``rtol = 1e-4``; optimizer steps
give the same losses and parameters; two DDP replicas (gloo, two processes) stay identical and
equal one process on the combined batch.
"""

from __future__ import annotations

import copy
import io
import os
import socket
import time
import warnings
from datetime import timedelta

os.environ.setdefault("TRITON_INTERPRET", "1")  # before triton is imported

import pytest  # noqa: E402
import torch  # noqa: E402

pytest.importorskip("triton", reason="triton is not installed: the fused kernels cannot run")

from neuron_params import NEURON_PARAMS as NEURON  # noqa: E402

import slayerc  # noqa: E402
import slayerc.slayer as slayer  # noqa: E402
from slayerc.backends.triton import ops, training  # noqa: E402
from slayerc.errors import FrontendError  # noqa: E402

FLAGS = {
    # a conv layer (C, H, W) with per-channel parameters and axonal delays, graded spikes
    "conv-channel-graded-delay": ("conv", "channel", "graded", "delay"),
    # Input block + dense layers, per-neuron parameters, persistent states over two calls,
    # the persistent delay_shift frame and axonal delays
    "dense-neuron-state-delay": ("dense", "neuron", "state", "delay"),
}


def _params(family, flags):
    p = dict(NEURON[family], requires_grad=True, persistent_state="state" in flags,
             shared_param="channel" not in flags and "neuron" not in flags,
             per_neuron_param="neuron" in flags)
    if family != "sigma_delta":
        p["graded_spike"] = "graded" in flags
    return p


def _family_model(family, flags):
    """A small network of one neuron family; returns (model, input shape)."""
    p = _params(family, flags)
    b = getattr(slayer.block, family)
    delay = "delay" in flags
    if "conv" in flags:
        layers = [b.Conv(p, 2, 3, 3, padding=1, weight_scale=3, delay=delay),
                  b.Flatten(), b.Dense(p, 3 * 4 * 4, 4, weight_scale=3)]
        return torch.nn.Sequential(*layers), (2, 2, 4, 4, 10)
    layers = [b.Input(p), b.Dense(p, 6, 5, weight_scale=3, delay=delay, delay_shift=True),
              b.Dense(p, 5, 4, weight_scale=3)]
    if family == "sigma_delta":
        layers.append(b.Output(p, 4, 3))
    return torch.nn.Sequential(*layers), (2, 6, 10)


def _pair(model, x):
    """(eager, compiled) with the same parameters and states.

    One eager call first draws the lazy per-channel/per-neuron parameters (they are random, so
    both copies must be made after it); the deep copy then carries identical states.
    """
    with torch.no_grad():
        model(x)
    compiled = slayerc.compile(copy.deepcopy(model), x, backend="triton")
    return model, compiled


def _compare_grads(eager, compiled, what):
    named = dict(compiled.named_parameters())
    checked = 0
    for name, p in eager.named_parameters():
        q = named[name]
        assert (p.grad is None) == (q.grad is None), f"{what}: {name} grad presence differs"
        if p.grad is None:
            continue
        scale = p.grad.abs().max().item()
        torch.testing.assert_close(q.grad, p.grad, rtol=1e-4, atol=1e-5 * scale + 1e-9,
                                   msg=lambda m, n=name: f"{what}: gradient of {n}: {m}")
        checked += 1
    return checked


def _run_compare(eager, compiled, x, calls, what):
    gen = torch.Generator().manual_seed(1)
    for call in range(calls):
        torch.manual_seed(call)
        y_ref = eager(x)
        torch.manual_seed(call)
        y = compiled(x)
        assert torch.equal(y, y_ref), f"{what}: call {call}: outputs differ"
        assert y_ref.abs().sum() > 0, f"{what}: no output activity"
        g = torch.randn(y.shape, generator=gen)
        for m in (eager, compiled):
            m.zero_grad(set_to_none=True)
        (y_ref * g).sum().backward()
        (y * g).sum().backward()
        assert _compare_grads(eager, compiled, f"{what} call {call}") > 0


@pytest.mark.filterwarnings("ignore:slayerc.compile")
@pytest.mark.parametrize("flags", list(FLAGS))
@pytest.mark.parametrize("family", list(NEURON))
def test_family_matches_eager(family, flags):
    """Each neuron family, compiled: spikes exact, parameter gradients within rtol 1e-4."""
    torch.manual_seed(0)
    model, shape = _family_model(family, FLAGS[flags])
    x = 1.5 * torch.rand(shape)
    if family == "sigma_delta":
        x = torch.cumsum(0.3 * torch.randn(shape), -1)
    eager, compiled = _pair(model, x)
    layers = compiled.meta["slayerc.triton"]["layers"]
    assert sum(v.startswith("fused") for v in layers.values()) >= 2, layers
    _run_compare(eager, compiled, x, 2 if "state" in FLAGS[flags] else 1, f"{family}/{flags}")


# ---------------------------------------------------------------- graph-level properties


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


def test_bare_neurons_and_torch_layers():
    """Plain torch layers (Conv2d, BatchNorm, Dropout, Linear) with bare slayer neurons."""
    from models import TorchCNN

    torch.manual_seed(0)
    x = (torch.rand(2, 2, 16, 16, 6) < 0.4).float()
    model = TorchCNN()
    # Dropout draws its mask in memory order: eager CUBA hands back time-major views, the
    # kernels contiguous time-last tensors, so one seed gives different masks (not different
    # dynamics).  Keep it in the graph, but inactive.
    model.drop.p = 0.0
    eager, compiled = _pair(model, x)
    layers = compiled.meta["slayerc.triton"]["layers"]
    assert {k for k, v in layers.items() if v == "fused: run_neuron"} == {"lif1", "lif2", "lif3"}
    _run_compare(eager, compiled, x, 1, "TorchCNN")


def test_shares_parameters_and_state_dict_keys():
    """Same parameter objects, same keys in the same order; checkpoints interchange; deep
    copies and pickles of the compiled module stay consistent."""
    net = _dense_net()
    x = torch.rand(2, 6, 8)
    compiled = slayerc.compile(net, x, backend="triton")
    assert isinstance(compiled, torch.fx.GraphModule)
    assert list(compiled.state_dict()) == list(net.state_dict())
    assert [id(p) for p in compiled.parameters()] == [id(p) for p in net.parameters()]
    other = _dense_net(seed=5)
    other_compiled = slayerc.compile(other, x, backend="triton")
    other_compiled.load_state_dict(net.state_dict())
    assert torch.equal(other(x), net(x))
    assert torch.equal(other_compiled(x), compiled(x))
    buf = io.BytesIO()
    torch.save(compiled, buf)
    buf.seek(0)
    for clone in (copy.deepcopy(compiled), torch.load(buf, weights_only=False)):
        assert list(clone.state_dict()) == list(net.state_dict())
        wrappers = list(clone.get_submodule(training.FUSED).children())
        assert len(wrappers) == 2
        for w in wrappers:  # the copy's wrappers run the copy's own layers
            assert w.layer_ref[0] is clone.get_submodule(w.target)
        assert torch.equal(clone(x), compiled(x))


def test_recurrent_layers_run_eager_with_one_warning(monkeypatch):
    """Recurrent and KWTA run their own forward; one warning names them, once per process."""
    from models import RecurrentKWTA

    monkeypatch.setattr(training, "_warned", set())
    torch.manual_seed(0)
    x = (torch.rand(2, 20, 8) < 0.5).float()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        eager, compiled = _pair(RecurrentKWTA(), x)
        slayerc.compile(copy.deepcopy(eager), x, backend="triton")
    msgs = [str(w.message) for w in caught if "eager torch forward" in str(w.message)]
    assert len(msgs) == 1, msgs
    assert "'rec'" in msgs[0] and "'kwta'" in msgs[0] and "Recurrent" in msgs[0]
    assert caught[0].filename == __file__  # points at the caller, not at slayerc
    layers = compiled.meta["slayerc.triton"]["layers"]
    assert layers["fc"] == "fused: run_synaptic" and layers["rec"].startswith("eager")
    _run_compare(eager, compiled, x, 1, "RecurrentKWTA")


def test_reference_fallback_is_announced(monkeypatch):
    """Without CUDA and without the interpreter, compile() says the reference will run."""
    monkeypatch.setenv("TRITON_INTERPRET", "0")
    monkeypatch.setitem(ops._state, "warned", False)
    monkeypatch.setattr(training, "_warned", set())
    net = _dense_net()
    x = torch.rand(2, 6, 8)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        compiled = slayerc.compile(net, x, backend="triton")
        y = compiled(x)
    msgs = [str(w.message) for w in caught if "reference" in str(w.message)]
    assert len(msgs) == 1 and "TRITON_INTERPRET" in msgs[0], msgs
    assert compiled.meta["slayerc.triton"]["kernels"] == "reference"
    assert torch.equal(y, net(x))


def test_backend_errors():
    """Unknown backends and pipelines for the triton backend are rejected clearly."""
    net = _dense_net()
    x = torch.rand(1, 6, 4)
    with pytest.raises(FrontendError, match="'triton'"):
        slayerc.compile(net, x, backend="cuda")
    with pytest.raises(FrontendError, match="backend='ir' only"):
        slayerc.compile(net, x, pipeline="shape-infer", backend="triton")


# ---------------------------------------------------------------------------- training


def _loss(y, target):
    return ((y.mean(-1) - target) ** 2).mean()


def _train(model, x, target, opt_cls, steps, **kw):
    opt = opt_cls(model.parameters(), **kw)
    losses = []
    for _ in range(steps):
        opt.zero_grad()
        loss = _loss(model(x), target)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses


@pytest.mark.parametrize("opt_cls,kw", [(torch.optim.SGD, {"lr": 50.0, "momentum": 0.5}),
                                        (torch.optim.Adam, {"lr": 0.1})],
                         ids=["sgd", "adam"])
def test_optimizer_steps_match_eager(opt_cls, kw):
    """A few optimizer steps: same losses and parameters as the eager model."""
    x = 1.5 * torch.rand(4, 6, 12)
    target = torch.rand(4, 3) * 0.5
    eager = _dense_net()
    compiled = slayerc.compile(copy.deepcopy(eager), x, backend="triton")
    l_ref = _train(eager, x, target, opt_cls, 4, **kw)
    l_fused = _train(compiled, x, target, opt_cls, 4, **kw)
    torch.testing.assert_close(l_fused, l_ref, rtol=1e-4, atol=0)
    assert l_ref[-1] != l_ref[0]
    for (name, p), q in zip(eager.named_parameters(), compiled.parameters()):
        torch.testing.assert_close(q, p, rtol=1e-4, atol=1e-6,
                                   msg=lambda m, n=name: f"{n}: {m}")


# ------------------------------------------------------------------------------------ DDP

DDP_STEPS, DDP_BATCH, DDP_LR = 3, 4, 50.0


def _ddp_data():
    gen = torch.Generator().manual_seed(11)
    return 1.5 * torch.rand(DDP_BATCH, 6, 10, generator=gen), torch.rand(DDP_BATCH, 3,
                                                                         generator=gen) * 0.5


def _ddp_worker(rank, world, port, out):
    """One DDP replica: train the compiled graph on its half of the batch, save parameters."""
    import torch.distributed as dist

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=world, timeout=timedelta(seconds=60))
    try:
        x, target = _ddp_data()
        compiled = slayerc.compile(_dense_net(), x, backend="triton")
        model = torch.nn.parallel.DistributedDataParallel(compiled)
        part = slice(rank * DDP_BATCH // world, (rank + 1) * DDP_BATCH // world)
        losses = _train(model, x[part], target[part], torch.optim.SGD, DDP_STEPS, lr=DDP_LR)
        torch.save({"params": {k: v.detach() for k, v in compiled.named_parameters()},
                    "losses": losses}, os.path.join(out, f"rank{rank}.pt"))
    finally:
        dist.destroy_process_group()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _spawn(target, world, out, timeout):
    """Start ``world`` replicas of ``target``; stop all of them when one fails or time runs
    out (a surviving rank would otherwise wait in an all-reduce until gloo's timeout)."""
    ctx = torch.multiprocessing.get_context("spawn")
    port = _free_port()
    procs = [ctx.Process(target=target, args=(r, world, port, out), daemon=True)
             for r in range(world)]
    for p in procs:
        p.start()
    deadline = time.monotonic() + timeout
    try:
        while any(p.is_alive() for p in procs):
            failed = [p for p in procs if p.exitcode not in (None, 0)]
            if failed or time.monotonic() > deadline:
                break
            time.sleep(0.1)
    finally:
        for p in procs:
            if p.is_alive():
                p.kill()
            p.join(5)
    return [p.exitcode for p in procs]


def test_ddp_two_processes_gloo(tmp_path):
    """Two gloo replicas on CPU train the compiled graph: identical parameters, equal to one
    process on the combined batch (DDP averages the replicas' gradients)."""
    codes = _spawn(_ddp_worker, 2, str(tmp_path), timeout=150)
    assert codes == [0, 0], f"DDP workers exited with {codes} (see captured stderr)"
    r0, r1 = (torch.load(tmp_path / f"rank{r}.pt") for r in (0, 1))
    for name, value in r0["params"].items():
        assert torch.equal(value, r1["params"][name]), f"replicas differ in {name}"
    x, target = _ddp_data()
    single = slayerc.compile(_dense_net(), x, backend="triton")
    _train(single, x, target, torch.optim.SGD, DDP_STEPS, lr=DDP_LR)
    for name, p in single.named_parameters():
        torch.testing.assert_close(r0["params"][name], p.detach(), rtol=1e-4, atol=1e-6,
                                   msg=lambda m, n=name: f"{n}: {m}")
    assert r0["params"]["0.synapse.weight"].ne(_dense_net()[0].synapse.weight).any()
