"""``to_module(trace(model), backend="triton")``: the fused kernels registered under each family's
op name, against the eager ``slayerc.slayer`` model (forward exact, gradients within 1e-5).

On CPU the kernels run in Triton's interpreter (``TRITON_INTERPRET=1``, set before triton is
imported); with CUDA the same cases run on the GPU as well.
"""

from __future__ import annotations

import os

os.environ.setdefault("TRITON_INTERPRET", "1")

import pytest  # noqa: E402
import torch  # noqa: E402

pytest.importorskip("triton", reason="triton is not installed: the fused kernels cannot run")

from module_checks import compare_with_eager  # noqa: E402
from refcases import CASES, build  # noqa: E402

import slayerc  # noqa: E402
from slayerc.runtime import neurons  # noqa: E402


def test_triton_registers_every_spiking_family():
    slayerc.to_module(slayerc.trace(*build("cuba_dense")), backend="triton")  # registers
    fused = set(neurons.ops_with("triton"))
    spiking = {"neuron.cuba", "neuron.alif", "neuron.rf", "neuron.rf_iz", "neuron.adrf",
               "neuron.adrf_iz", "neuron.sigma_delta"}
    assert fused == spiking and spiking <= set(neurons.FAMILIES)


@pytest.mark.parametrize("case", CASES)
def test_reference_cases_through_triton_equal_eager(case):
    net, x = build(case)
    compare_with_eager(net, x, "triton")


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("case", ["cuba_dense", "cuba_conv", "cuba_delay", "cuba_rec",
                                  "cuba_persistent", "cuba_norm", "alif_dense", "rf", "adrf_dense",
                                  "sdnn_dense", "sdnn_conv"])
def test_reference_cases_on_cuda(case):
    net, x = build(case)
    g = slayerc.trace(net, x)
    m = slayerc.to_module(g, backend="triton").cuda()
    xc = x.cuda().requires_grad_()
    y = m(xc)
    assert torch.equal(y.detach().cpu(), net(x))
    y.sum().backward()
    assert xc.grad is not None and torch.isfinite(xc.grad).all()
    assert torch.equal(m(x.cuda()).cpu(), net(x))  # a second call (persistent states carry)


@pytest.mark.parametrize("name", ["ConvSNN", "NMNISTNet", "PilotNetSDNN", "RecurrentKWTA",
                                  "SeedNetwork", "TorchCNN"])
def test_example_models_through_triton_equal_eager(name):
    """Every example model through the registered Triton kernels (interpreted on CPU)."""
    import models

    shape = {"ConvSNN": (2, 2, 16, 16, 12), "NMNISTNet": (2, 2, 34, 34, 12),
             "PilotNetSDNN": (2, 3, 33, 100, 6), "RecurrentKWTA": (2, 20, 30),
             "SeedNetwork": (1, 3, 13, 16, 6), "TorchCNN": (2, 2, 16, 16, 12)}[name]
    torch.manual_seed(1 if name == "NMNISTNet" else 0)  # (seed 0: no output spikes, as in
    net = getattr(models, name)().eval()                 # lava-dl, whose draws it follows)
    gen = torch.Generator().manual_seed(2)
    x = (torch.rand(shape, generator=gen) < 0.3).float()
    if name in ("SeedNetwork", "PilotNetSDNN"):  # graded inputs
        x = x * torch.rand(shape, generator=gen) * 2
    compare_with_eager(net, x, "triton")
