"""The seed network of lava-dl's README builds as written with slayerc.slayer and trains.

The network text (lava-nc/lava-dl README.md, "Network Description") lives in
``examples/models.py:SeedNetwork``; only the import line changes.
"""

from __future__ import annotations

import torch
from models import SeedNetwork as Network  # the README network, as written there


def test_seed_network_forward_backward():
    torch.manual_seed(0)
    net = Network()
    x = torch.rand(2, 3, 13, 16, 24) * 2  # [N, 3, H, W, T]; (H-8)(W-8) = 40
    y = net(x)
    assert y.shape == (2, 50, 24) and y.sum() > 0
    (y * torch.randn_like(y)).sum().backward()
    trainable = [(n, p) for n, p in net.named_parameters() if p.requires_grad]
    assert len(trainable) > 20
    dead = [n for n, p in trainable if p.grad is None or not torch.any(p.grad != 0)]
    assert dead == []
