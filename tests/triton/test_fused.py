"""Fused Triton neuron kernels against their oracle, each family's ``dynamics`` in its one home
(:mod:`slayerc.runtime.neurons`).

On CPU the kernels run in Triton's interpreter: ``TRITON_INTERPRET=1`` is set here before triton
is imported (``@triton.jit`` reads it at decoration time; ``ops._kernels`` reloads the kernel
module if the setting changed).  With CUDA the same cases run compiled on the GPU, against the
reference evaluated on CPU (the oracle's integer arithmetic is device-independent, but CPU
``cumsum`` accumulates in double, which the sigma-delta kernel reproduces).

Every case: spikes and carried states equal the reference bit for bit; every gradient (input,
learnable decays / threshold / bias, axonal delay) matches within ``rtol = 1e-4``.
"""

from __future__ import annotations

import math
import os
import warnings
import zlib

os.environ.setdefault("TRITON_INTERPRET", "1")  # before triton is imported (see docstring)

import pytest  # noqa: E402
import torch  # noqa: E402

pytest.importorskip("triton", reason="triton is not installed: the fused kernels cannot run")

from neuron_params import NEURON_PARAMS  # noqa: E402

import slayerc  # noqa: E402
import slayerc.backends.triton as fused  # noqa: E402
from slayerc.backends.triton import ops  # noqa: E402
from slayerc.runtime.neurons import family as _family  # noqa: E402
from slayerc.runtime.neurons.common import Output  # noqa: E402

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
S = 4096


@pytest.fixture(params=DEVICES)
def device(request, monkeypatch):
    """``cpu`` runs the interpreter; ``cuda`` runs the compiled kernels."""
    if request.param == "cpu":
        monkeypatch.setenv("TRITON_INTERPRET", "1")
    else:
        monkeypatch.delenv("TRITON_INTERPRET", raising=False)
    return torch.device(request.param)


# ------------------------------------------------------------------------------ case setup

SHAPES = {"dense": (5,), "conv": (2, 2, 3)}
GRAN = ("shared", "channel", "neuron")


def _param(gen, gran, spatial, lo, hi, learn):
    shape = {"shared": (1,), "channel": (spatial[0],), "neuron": spatial}[gran]
    p = lo + (hi - lo) * torch.rand(shape, generator=gen)
    return p.requires_grad_(learn)


def _state(gen, n, spatial, scale=0.3):
    return (torch.rand((n,) + spatial, generator=gen) - 0.3) * scale


def _output(gen, n, spatial, flags):
    if "delay" not in flags and "shift" not in flags:
        return Output()
    first = (torch.rand((n,) + spatial, generator=gen) > 0.5).float() if "state" in flags else None
    d = None
    if "delay" in flags:
        d = (3.5 * torch.rand(spatial[0], generator=gen)).requires_grad_(True)
    return Output("shift" in flags, first, d, 1.0, 1.0)


def _lif_case(family, gen, spatial, gran, flags):
    n, t = 2, 10
    x = 0.45 * torch.rand((n,) + spatial + (t,), generator=gen) - 0.05
    learn = "learn" in flags
    du = _param(gen, gran, spatial, 400, 1600, learn)
    dv = _param(gen, gran, spatial, 100, 900, learn)
    kw = {"scale": S, "graded": "graded" in flags, "output": _output(gen, n, spatial, flags)}
    states = ("current_state", "voltage_state")
    if family == "cuba":
        args = (du, dv, 0.25, 0.5, 1.0)
    else:
        dth = _param(gen, gran, spatial, 200, 600, False)
        dref = _param(gen, gran, spatial, 400, 900, False)
        args = (du, dv, dth, dref, 0.25, 0.0625, 0.5, 1.0)
        states += ("threshold_state", "refractory_state")
    if "state" in flags:
        for name in states:
            kw[name] = _state(gen, n, spatial)
        if family == "alif":
            kw["threshold_state"] = kw["threshold_state"].abs() + 0.25
            kw["refractory_state"] = kw["refractory_state"].abs()
    return x, args, kw, [du, dv]


def _rf_decays(gen, gran, spatial, learn):
    period = _param(gen, gran, spatial, 6, 15, False)
    decay = _param(gen, gran, spatial, 0.05, 0.2, False)
    sin = (S * (1 - decay) * torch.sin(2 * math.pi / period)).detach().requires_grad_(learn)
    cos = (S * (1 - decay) * torch.cos(2 * math.pi / period)).detach().requires_grad_(learn)
    return sin, cos


def _rf_case(family, gen, spatial, gran, flags):
    n, t = 2, 12
    xr = 0.5 * torch.rand((n,) + spatial + (t,), generator=gen) - 0.15
    xi = 0.5 * torch.rand((n,) + spatial + (t,), generator=gen) - 0.25
    sin, cos = _rf_decays(gen, gran, spatial, "learn" in flags)
    kw = {"scale": S, "graded": "graded" in flags, "output": _output(gen, n, spatial, flags)}
    states = ("real_state", "imag_state")
    th = 0.125 if family in ("rf", "adrf") else 0.25
    if family in ("rf", "rf_iz"):
        args = (sin, cos, th, 0.5, 1.0)
    else:
        dth = _param(gen, gran, spatial, 200, 600, False)
        dref = _param(gen, gran, spatial, 400, 900, False)
        args = (sin, cos, dth, dref, th, 0.0625, 0.5, 1.0)
        states += ("threshold_state", "refractory_state")
    if "state" in flags:
        for name in states:
            kw[name] = _state(gen, n, spatial)
        if family in ("adrf", "adrf_iz"):
            kw["threshold_state"] = kw["threshold_state"].abs() + th
            kw["refractory_state"] = kw["refractory_state"].abs()
    return (xr, xi), args, kw, [sin, cos]


def _sd_case(family, gen, spatial, gran, flags):
    n, t = 2, 10
    x = 0.3 * torch.randn((n,) + spatial + (t,), generator=gen)
    learn = "learn" in flags
    tshape = {"shared": (1,), "channel": (spatial[0],) + (1,) * (len(spatial) - 1),
              "neuron": spatial}[gran]
    th = (0.05 + 0.1 * torch.rand(tshape, generator=gen)).requires_grad_(learn)
    bias = (0.1 * torch.randn(spatial, generator=gen)).requires_grad_(learn)
    kw = {"scale": S, "bias": bias, "tau_grad": 0.7, "scale_grad": 1.3,
          "cum_error": "graded" in flags,  # sigma-delta is always graded: reuse the flag
          "output": _output(gen, n, spatial, flags)}
    if "state" in flags:
        for name in ("sigma_state", "pre_state", "residual_state", "error_state"):
            kw[name] = _state(gen, n, spatial)
        kw["pre_state"] = kw["pre_state"].clamp(min=0)
    return x, (th,), kw, [th, bias]


FAMILIES = {
    "cuba": _lif_case, "alif": _lif_case, "rf": _rf_case, "rf_iz": _rf_case, "adrf": _rf_case,
    "adrf_iz": _rf_case, "sigma_delta": _sd_case,
}

FLAG_SETS = [
    ("graded", "learn"),
    ("state", "shift", "learn"),
    ("graded", "state", "shift", "delay", "learn"),
    (),
]


def _to(obj, device):
    """Move a tensor (keeping it a leaf with its requires_grad) or a structure of them."""
    if torch.is_tensor(obj):
        return obj.detach().to(device).requires_grad_(obj.requires_grad)
    if isinstance(obj, tuple):
        return tuple(_to(o, device) for o in obj)
    if isinstance(obj, Output):
        return Output(obj.delay_shift, _to(obj.shift_state, device), _to(obj.delay, device),
                          obj.grad_scale, obj.sampling_time)
    if isinstance(obj, dict):
        return {k: _to(v, device) for k, v in obj.items()}
    return obj


def _leaves(x, args, kw):
    xs = list(x) if isinstance(x, tuple) else [x]
    cand = xs + [a for a in args if torch.is_tensor(a)]
    cand += [kw.get("bias"), kw["output"].delay]
    return [t for t in cand if torch.is_tensor(t) and t.requires_grad]


def _run(fn, x, args, kw, gen_grad):
    x = x if isinstance(x, tuple) else x.requires_grad_(True)
    if isinstance(x, tuple):
        x = tuple(t.requires_grad_(True) for t in x)
    y, states = fn(x, *args, **kw)
    leaves = _leaves(x, args, kw)
    g = gen_grad(y)
    grads = torch.autograd.grad(y, leaves, g, allow_unused=True)
    return y, states, grads


def _oracle(family):
    """The family's torch dynamics (the same signature as ``ops.<family>``)."""
    return _family(f"neuron.{family}").dynamics


def _check(family, spatial, gran, flags, device):
    gen = torch.Generator().manual_seed(zlib.crc32(repr((family, spatial, gran, flags)).encode()))
    x, args, kw, _ = FAMILIES[family](family, gen, spatial, gran, flags)
    g_seed = int(torch.randint(0, 2**31, (1,), generator=gen))

    def grad_of(y):
        return torch.randn(y.shape, generator=torch.Generator().manual_seed(g_seed)).to(y.device)

    y_ref, st_ref, g_ref = _run(_oracle(family), *_to((x, args, kw), "cpu"), grad_of)
    y, st, gr = _run(getattr(fused, family), *_to((x, args, kw), device), grad_of)
    assert torch.equal(y.cpu(), y_ref), f"{family}: spikes differ"
    assert y_ref.abs().sum() > 0, f"{family}: the case produces no spikes"
    for name, value in st_ref.items():
        assert torch.equal(st[name].cpu(), value), f"{family}: state {name} differs"
    for a, b in zip(gr, g_ref):
        assert (a is None) == (b is None)
        if b is not None:
            scale = b.abs().max().item()
            torch.testing.assert_close(a.cpu(), b, rtol=1e-4, atol=1e-5 * scale + 1e-12)


@pytest.mark.parametrize("flags", FLAG_SETS, ids=lambda f: "-".join(f) or "plain")
@pytest.mark.parametrize("family", list(FAMILIES))
def test_fused_equals_reference(family, flags, device):
    """Every family × flag set, dense layout with shared parameters."""
    _check(family, SHAPES["dense"], "shared", flags, device)


@pytest.mark.parametrize("gran", GRAN)
@pytest.mark.parametrize("family", list(FAMILIES))
def test_parameter_granularity(family, gran, device):
    """Scalar, per-channel and per-neuron parameters on a conv-shaped (C, H, W) layer."""
    _check(family, SHAPES["conv"], gran, ("state", "shift", "delay", "learn"), device)


# ------------------------------------------------------------- module / block level checks

@pytest.mark.parametrize("persistent", [False, True])
@pytest.mark.parametrize("family", list(NEURON_PARAMS))
def test_block_through_to_module_matches_eager(family, persistent, device):
    """``to_module(trace(block), backend="triton")`` equals a Dense block (synapse → neuron →
    delay_shift → axonal delay) over two calls (persistent states and the delay_shift frame
    carry over), with the input gradient of the first call (training over calls:
    ``test_training.py::test_persistent_states_train_over_calls``)."""
    import slayerc.slayer as slayer

    torch.manual_seed(3)
    params = dict(NEURON_PARAMS[family], requires_grad=True, shared_param=False,
                  persistent_state=persistent)
    if family != "sigma_delta":
        params["graded_spike"] = persistent
    blk = torch.nn.Sequential(getattr(slayer.block, family).Dense(
        params, 6, 4, weight_scale=3, delay=True, delay_shift=True))
    # a block sizes its delays and per-channel parameters when built; tracing runs a copy
    m = slayerc.to_module(slayerc.trace(blk, torch.rand(2, 6, 10)), backend="triton").to(device)
    for step in range(2):
        x = 2.0 * torch.rand(2, 6, 10)
        if device.type == "cuda":  # quarter steps keep the synapse sums exact on any device:
            x = torch.round(4 * x) / 4  # cuBLAS and the CPU round real-valued sums apart
        xe, xm = x.clone().requires_grad_(), x.to(device).requires_grad_()
        y_ref, y = blk(xe), m(xm)
        assert torch.equal(y.detach().cpu(), y_ref.detach()), f"{family}: call {step} differs"
        assert y_ref.abs().sum() > 0
        if step and persistent:
            continue
        g = torch.randn_like(y_ref)
        (y_ref * g).sum().backward()
        (y * g.to(device)).sum().backward()
        scale = xe.grad.abs().max()
        torch.testing.assert_close(xm.grad.cpu(), xe.grad, rtol=1e-4, atol=1e-5 * scale)


def test_fallback_warns_once(monkeypatch):
    """Without CUDA and without the interpreter the reference runs, with one warning."""
    monkeypatch.setenv("TRITON_INTERPRET", "0")
    monkeypatch.setitem(ops._state, "warned", False)
    x = torch.rand(1, 3, 5)
    d = torch.tensor([100.0])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        y1, _ = ops.cuba(x, d, d, 0.25, 0.5, 1.0)
        ops.cuba(x, d, d, 0.25, 0.5, 1.0)
    msgs = [str(w.message) for w in caught if "slayerc.backends.triton" in str(w.message)]
    assert len(msgs) == 1 and "reference" in msgs[0]
    assert torch.equal(y1, _oracle("cuba")(x, d, d, 0.25, 0.5, 1.0)[0])


def test_time_major_layout(monkeypatch, device):
    """The transposed (time-major) kernel layout gives the same numbers."""
    monkeypatch.setattr(ops, "LAYOUT", "time_major")
    _check("cuba", SHAPES["conv"], "channel", ("state", "shift", "delay", "learn"), device)
    _check("rf", SHAPES["dense"], "shared", ("graded", "learn"), device)
