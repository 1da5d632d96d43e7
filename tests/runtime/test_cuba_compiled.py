"""The compiled CUBA-LIF forward (numba) gives the torch loop's values bit for bit.

Both paths are run on the same inputs (``set_compiled`` switches between them): spikes and
carried states of ``neuron.cuba`` inference, the current/voltage traces and the gradients of
``cuba_lif``, signed zeros included, over decay granularities, persistent states, resets at
zero and negative thresholds, graded spikes, large inputs (beyond float32's integer range) and
both input layouts.
"""

from __future__ import annotations

import pytest
import torch

from slayerc.runtime import cuba_lif as C
from slayerc.runtime.neurons import cuba as family

pytestmark = pytest.mark.skipif(C.numba is None, reason="numba is not installed")

SCALES = (4096, 64, 1 << 18)
THRESHOLDS = (1.25, 0.0, -1.0, 0.3)


@pytest.fixture
def compiled_switch():
    """Restore the compiled-path setting after the test."""
    old = C.set_compiled(True)
    yield
    C.set_compiled(old)


def _case(i: int):
    g = torch.Generator().manual_seed(i)
    shape = [(5,), (3, 4, 2), (17,)][i % 3]
    n, steps = int(torch.randint(1, 4, (), generator=g)), int(torch.randint(1, 50, (), generator=g))
    x = torch.randn(n, *shape, steps, generator=g) * float(torch.rand((), generator=g) * 3)
    if i % 5 == 2:
        x = x * 1e5  # currents beyond 2**24: the float32 round trip into the voltage matters
    if i % 4 == 1:
        x = x.movedim(-1, 0).contiguous().movedim(0, -1)  # time-major storage
    du = torch.tensor([float(torch.randint(0, 4097, (), generator=g))])
    dv = torch.tensor([float(torch.randint(0, 4097, (), generator=g))])
    if i % 3 == 1:
        du = torch.rand(shape[0], generator=g) * 4096
    if i % 6 == 0:
        dv = torch.rand(*shape, generator=g) * 4096
    states = (torch.randn(n, *shape, generator=g), torch.randn(n, *shape, generator=g))
    scale = SCALES[i % 3]
    th = THRESHOLDS[i % 4] + 0.01 / scale
    return x, du, dv, states if i % 2 else (None, None), scale, th


def _both(fn):
    C.set_compiled(True)
    a = fn()
    C.set_compiled(False)
    b = fn()
    C.set_compiled(True)
    return a, b


def _same(a: torch.Tensor, b: torch.Tensor) -> bool:
    return torch.equal(a, b) and torch.equal(torch.signbit(a), torch.signbit(b))


@pytest.mark.parametrize("i", range(36))
def test_inference_spikes_and_states_match(i, compiled_switch):
    x, du, dv, (us, vs), scale, th = _case(i)
    graded, exact = i % 7 == 3, i % 5 == 4
    if exact:  # decays off the 12-bit grid, used as given (an IR node's exact_decays)
        du, dv = du + 0.37, dv * 0.999

    def run():
        with torch.no_grad():
            return family.dynamics(x, du, dv, th - 0.01 / scale, 0.03, 3.0, scale=scale,
                                   graded=graded, current_state=us, voltage_state=vs,
                                   exact_decay=exact)

    (sa, st_a), (sb, st_b) = _both(run)
    assert _same(sa, sb)
    assert st_a.keys() == st_b.keys()
    for k in st_b:
        assert _same(st_a[k].expand_as(st_b[k]), st_b[k]), k


@pytest.mark.parametrize("i", range(24))
def test_traces_match(i, compiled_switch):
    x, du, dv, (us, vs), scale, th = _case(i)
    for current in (True, False):
        (ua, va), (ub, vb) = _both(lambda c=current: C.cuba_lif(x, du, dv, us, vs, scale, th, c))
        assert _same(va, vb)
        assert C.is_time_major(vb)  # the torch loop: time-major traces
        # the compiled loop keeps a time-last input's layout (no transposing copy for a conv)
        assert va.is_contiguous() if not C.is_time_major(x) else va.stride() == vb.stride()
        assert (ua is None) == (ub is None)
        if ub is not None:
            assert _same(ua, ub)


@pytest.mark.parametrize("graded", [False, True])
def test_gradients_match(graded, compiled_switch):
    x = (torch.randn(2, 6, 40, generator=torch.Generator().manual_seed(3)) * 2)
    x.requires_grad_()
    du = torch.tensor([1024.0], requires_grad=True)
    dv = torch.tensor([128.0], requires_grad=True)

    def run():
        s, _ = family.dynamics(x, du, dv, 0.5, 0.03, 3.0, graded=graded)
        return s, torch.autograd.grad(s.square().sum() + s.sum(), (x, du, dv))

    (sa, ga), (sb, gb) = _both(run)
    assert _same(sa, sb)
    for a, b in zip(ga, gb):
        assert torch.equal(a, b)


@pytest.mark.parametrize("time_major", [False, True])
@pytest.mark.parametrize("shape", [(3, 4, 5, 5, 60), (2, 16, 32, 32, 20)])
def test_fixed_decay_gradients_match_in_either_layout(time_major, shape, compiled_switch):
    """Fixed decays (no decay gradient): the compiled loop returns time-last traces for a
    time-last input and the backward's one matrix product runs in that layout; the values and
    gradients equal the torch loop's (time-major) bit for bit (the larger shape takes the
    numpy-allocated trace and gradient buffers)."""
    g = torch.Generator().manual_seed(5)
    x = torch.randn(*shape, generator=g) * 2
    if time_major:
        x = x.movedim(-1, 0).contiguous().movedim(0, -1)
    x.requires_grad_()
    du, dv = torch.tensor([1024.0]), torch.tensor([128.0])
    w = torch.randn(x.shape, generator=g)

    def run():
        s, _ = family.dynamics(x, du, dv, 0.5, 0.03, 3.0, want_state=False)
        return s, torch.autograd.grad((s * w).sum(), x)[0]

    (sa, ga), (sb, gb) = _both(run)
    assert _same(sa, sb) and torch.equal(ga, gb)
    assert sa.is_contiguous() != time_major and ga.is_contiguous() != time_major


def test_inference_keeps_time_last_layout(compiled_switch):
    x = torch.rand(2, 8, 30)
    with torch.no_grad():
        s, _ = family.dynamics(x, torch.tensor([1024.0]), torch.tensor([128.0]), 0.1, 0.03, 3.0)
    assert s.is_contiguous()  # no transposing copy on the way to the next synapse
    xt = x.movedim(-1, 0).contiguous().movedim(0, -1)
    with torch.no_grad():
        st, _ = family.dynamics(xt, torch.tensor([1024.0]), torch.tensor([128.0]), 0.1, 0.03,
                                3.0)
    assert st.movedim(-1, 0).is_contiguous() and torch.equal(s, st)


def test_switch_off_without_numba(monkeypatch):
    monkeypatch.setattr(C, "numba", None)
    old = C.set_compiled(True)
    try:
        assert not C.compiled()
        assert C.cuba_lif_spikes(torch.rand(1, 3, 5), torch.tensor([1.0]), torch.tensor([1.0]),
                                 None, None, 4096, 1.0) is None
    finally:
        C._COMPILED["on"] = old
