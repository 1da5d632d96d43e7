"""benchmarks/peers.py --net conv: every contender is built with the same layer shapes."""

import importlib.util
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture()
def peers(monkeypatch):
    spec = importlib.util.spec_from_file_location("peers_bench", ROOT / "benchmarks" / "peers.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    monkeypatch.setitem(mod.NET, "net", "conv")
    monkeypatch.setattr(mod, "T", 6)
    return mod


def _conv_out(h, k, s, p):
    return (h + 2 * p - k) // s + 1


def test_conv_geometry_flattens_to_the_first_dense_width(peers):
    h = peers.CONV_IN[1]
    for _, _, k, s, p in peers.CONVS:
        h = _conv_out(h, k, s, p)
    assert peers.CONVS[-1][1] * h * h == peers.CONV_DENSE[0]


@pytest.mark.parametrize("name", ["slayerc", "snntorch", "norse", "spikingjelly"])
def test_conv_contenders_same_weights_and_output_shape(peers, name):
    if name != "slayerc":
        pytest.importorskip(name)
    torch.manual_seed(0)
    net = peers._build(name)
    shapes = sorted(tuple(p.shape) for p in net.parameters() if p.dim() > 1)
    want = sorted([(o, i, k, k) for i, o, k, _, _ in peers.CONVS]
                  + [(o, i) for i, o in zip(peers.CONV_DENSE, peers.CONV_DENSE[1:])])
    # slayerc keeps conv3d / dense weights with trailing unit dims: drop them for the comparison
    shapes = sorted(tuple(d for j, d in enumerate(s) if j < 2 or d != 1) if name == "slayerc"
                    else s for s in shapes)
    assert shapes == sorted(want)
    x = (torch.rand(2, *peers.CONV_IN, 6) < 0.3).float()
    y = net(x)
    assert y.shape == (2, peers.CONV_DENSE[-1], 6)
    y.float().sum().backward()
    assert all(p.grad is not None for p in net.parameters() if p.requires_grad)
