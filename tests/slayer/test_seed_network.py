"""The seed network of lava-dl's README builds as written with slayerc.slayer and trains.

Network text from lava-nc/lava-dl README.md ("Network Description"); only the import changes.
The README does not give the parameter dicts; these are plausible ones.
"""

from __future__ import annotations

import h5py
import torch

import slayerc.slayer as slayer

sdnn_params = {"threshold": 0.1, "tau_grad": 0.5, "scale_grad": 1,
               "activation": torch.nn.functional.relu}
rf_params = {"threshold": 0.1, "period": 7, "decay": 0.05, "requires_grad": True}
sdnn_cnn_params = {"threshold": 0.2, "period": 9, "decay": 0.05, "requires_grad": True}
alif_params = {"threshold": 0.1, "threshold_step": 0.05, "current_decay": 0.2,
               "voltage_decay": 0.05, "threshold_decay": 0.1, "refractory_decay": 0.1}
cuba_params = {"threshold": 0.1, "current_decay": 0.2, "voltage_decay": 0.05,
               "requires_grad": True}


class Network(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.blocks = torch.nn.ModuleList([# sequential network blocks
                slayer.block.sigma_delta.Input(sdnn_params),
                slayer.block.sigma_delta.Conv(sdnn_params,  3, 24, 3),
                slayer.block.sigma_delta.Conv(sdnn_params, 24, 36, 3),
                slayer.block.rf_iz.Conv(rf_params, 36, 64, 3, delay=True),
                slayer.block.rf_iz.Conv(sdnn_cnn_params, 64, 64, 3, delay=True),
                slayer.block.rf_iz.Flatten(),
                slayer.block.alif.Dense(alif_params, 64*40, 100, delay=True),
                slayer.block.cuba.Recurrent(cuba_params, 100, 50),
                slayer.block.cuba.KWTA(cuba_params, 50, 50, num_winners=5)
            ])  # noqa: E128

    def forward(self, x):
        for block in self.blocks:
            # forward computation is as simple as calling the blocks in a loop
            x = block(x)
        return x

    def export_hdf5(self, filename):
        # network export to hdf5 format
        h = h5py.File(filename, 'w')
        layer = h.create_group('layer')
        for i, b in enumerate(self.blocks):
            b.export_hdf5(layer.create_group(f'{i}'))


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
