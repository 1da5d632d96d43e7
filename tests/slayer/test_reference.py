"""slayerc.slayer rebuilds every lava-dl reference case and reproduces its outputs.

Each case in ``tests/data/lava-dl`` is built with ``arch_build.build(arch, slayerc.slayer)``, loaded
with ``strict=True`` and run on its stored input(s): spikes must be identical, graded values within
1e-6, for the output and every layer (both forwards of the persistent case).  Gradient cases
compare weight and input gradients with lava-dl's, and check that slayerc's decay gradients are
the analytic ones (lava-dl's have the wrong sign and are 4096x too large).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from refcases import CASES, REF_DIR, load_arch, load_input
from refcases import arch_build as _arch_build

import slayerc.slayer as slayer_module


@pytest.fixture(scope="module")
def arch_build():
    """The reference reader ``arch_build.py`` shipped with the cases."""
    return _arch_build()


@pytest.fixture(scope="module")
def slayer():
    """``import slayerc.slayer as slayer``."""
    return slayer_module



GRAD_CASES = ["alif_dense", "cuba_learn"]


def _same(got: np.ndarray, ref: np.ndarray) -> bool:
    if got.shape != ref.shape:
        return False
    binary = np.isin(ref, (0.0, 1.0)).all()
    return np.array_equal(got, ref) if binary else np.allclose(got, ref, rtol=0, atol=1e-6)


@pytest.mark.parametrize("name", CASES)
def test_forward_matches_lava_dl(name, arch_build, slayer):
    arch = load_arch(name)
    net = arch_build.rebuild(arch, slayer, str(REF_DIR))
    nonflat = [i for i, b in enumerate(arch["blocks"]) if b["block"] != "Flatten"]
    for i, fw in enumerate(arch["forwards"]):
        with torch.no_grad():
            outs = net.forward_layers(load_input(arch, i))
        assert _same(outs[-1][0].numpy(), np.load(REF_DIR / fw["output"])), fw["output"]
        layers = np.load(REF_DIR / fw["layers"])
        for key in layers.files:
            got = outs[nonflat[int(key[5:])]][0].numpy()
            assert _same(got, layers[key]), f"{fw['layers']}:{key}"


def test_reference_checker_passes(arch_build, capsys):
    """``python arch_build.py DIR --slayer slayerc.slayer`` (gradients reported, not exact)."""
    assert arch_build.main([str(REF_DIR), "--slayer", "slayerc.slayer", "--grads", "report"]) == 0
    out = capsys.readouterr().out
    assert f"{len(CASES)}/{len(CASES)} rebuilt" in out


def _grads(name, arch_build, slayer):
    arch = load_arch(name)
    net = arch_build.rebuild(arch, slayer, str(REF_DIR))
    ref = dict(np.load(REF_DIR / arch["grads"]["file"]))
    loss, _, g = arch_build.compute_grads(
        net, load_input(arch), torch.tensor(ref["loss_weight"])[None]
    )
    return ref, float(loss), {k: v.numpy() for k, v in g.items()}


@pytest.mark.parametrize("name", GRAD_CASES)
def test_weight_and_input_gradients_match(name, arch_build, slayer):
    ref, loss, g = _grads(name, arch_build, slayer)
    assert loss == pytest.approx(float(ref["loss"]), abs=1e-6)
    g["input"] = g["input"][0]
    checked = [k for k in g if "decay" not in k]
    assert "input" in checked and any("weight" in k for k in checked)
    for k in checked:
        scale = max(1.0, float(np.abs(ref[k]).max()))
        np.testing.assert_allclose(g[k], ref[k], rtol=0, atol=1e-5 * scale, err_msg=k)


@pytest.mark.parametrize("name", GRAD_CASES)
def test_decay_gradients_are_lava_dl_corrected(name, arch_build, slayer):
    """lava-dl's LI decay gradient is −4096x the analytic one; ours is the analytic one."""
    ref, _, g = _grads(name, arch_build, slayer)
    decays = [k for k in g if k.endswith(("current_decay", "voltage_decay"))]
    assert decays
    for k in decays:
        assert np.abs(g[k]).max() > 0, k
        np.testing.assert_allclose(g[k], -ref[k] / 4096, rtol=1e-4, atol=1e-9, err_msg=k)


def test_decay_gradient_matches_finite_difference(slayer):
    """d(loss)/d(decay) of a CUBA Affine block (no spikes, no reset) vs a central difference
    over ±8 decay units.  Decays act rounded, so the steps are integers; the input is large so
    that the integer truncation noise of the dynamics is small next to the signal."""
    torch.manual_seed(0)
    params = {"threshold": 1.0, "current_decay": 0.25, "voltage_decay": 0.05,
              "requires_grad": True}
    block = slayer.block.cuba.Affine(params, 6, 4, weight_scale=3).double()
    x = (torch.rand(2, 6, 60) < 0.3).double() * 1000
    w = torch.randn(2, 4, 60, dtype=torch.float64)

    def loss():
        return float((block(x) * w).sum())

    (block(x) * w).sum().backward()
    for name in ("current_decay", "voltage_decay"):
        d = getattr(block.neuron, name)
        analytic, base, h = float(d.grad), float(d.detach()), 8.0
        with torch.no_grad():
            d.fill_(base + h)
            up = loss()
            d.fill_(base - h)
            down = loss()
            d.fill_(base)
        assert analytic == pytest.approx((up - down) / (2 * h), rel=0.03), name
