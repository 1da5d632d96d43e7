"""Example SNN models written with ``slayerc.slayer`` (and plain torch), used by the README, the
tests and ``slayerc compile examples/models.py:NAME``.

Every class builds without arguments.  Inputs are ``[N, C(, H, W), T]`` (time last).
"""

from __future__ import annotations

import torch
from torch import nn

import slayerc.slayer as slayer

sdnn_params = {"threshold": 0.1, "tau_grad": 0.5, "scale_grad": 1,
               "activation": torch.nn.functional.relu}
rf_params = {"threshold": 0.1, "period": 7, "decay": 0.05, "requires_grad": True}
sdnn_cnn_params = {"threshold": 0.2, "period": 9, "decay": 0.05, "requires_grad": True}
alif_params = {"threshold": 0.1, "threshold_step": 0.05, "current_decay": 0.2,
               "voltage_decay": 0.05, "threshold_decay": 0.1, "refractory_decay": 0.1}
cuba_params = {"threshold": 0.1, "current_decay": 0.2, "voltage_decay": 0.05,
               "requires_grad": True}


class SeedNetwork(nn.Module):
    """The network of lava-dl's README, as written there (input ``[N, 3, 13, 16, T]``).

    sigma_delta Input and Conv, rf_iz Conv with delay, Flatten, alif Dense with delay, cuba
    Recurrent, cuba KWTA.  lava-dl's README gives no parameter dicts; these are plausible ones.
    """

    def __init__(self):
        super().__init__()
        self.blocks = torch.nn.ModuleList([  # sequential network blocks
            slayer.block.sigma_delta.Input(sdnn_params),
            slayer.block.sigma_delta.Conv(sdnn_params, 3, 24, 3),
            slayer.block.sigma_delta.Conv(sdnn_params, 24, 36, 3),
            slayer.block.rf_iz.Conv(rf_params, 36, 64, 3, delay=True),
            slayer.block.rf_iz.Conv(sdnn_cnn_params, 64, 64, 3, delay=True),
            slayer.block.rf_iz.Flatten(),
            slayer.block.alif.Dense(alif_params, 64 * 40, 100, delay=True),
            slayer.block.cuba.Recurrent(cuba_params, 100, 50),
            slayer.block.cuba.KWTA(cuba_params, 50, 50, num_winners=5),
        ])

    def forward(self, x):
        for block in self.blocks:
            # forward computation is as simple as calling the blocks in a loop
            x = block(x)
        return x


class ConvSNN(nn.Module):
    """A small cuba conv SNN that fits Loihi 2 as it is (input ``[N, 2, 16, 16, T]``).

    Conv(2→8, k3, s2, p1) → Conv(8→16, k3, s2, p1) → Flatten → Dense(1024→64, axonal delays)
    → Dense(64→10).  The weights are seeded, not trained: it demonstrates the flow
    ``slayerc compile`` → ``.net`` → ``slayerc run``.
    """

    def __init__(self):
        super().__init__()
        p = {"threshold": 1.0, "current_decay": 0.25, "voltage_decay": 0.03}
        torch.manual_seed(7)
        self.blocks = nn.Sequential(
            slayer.block.cuba.Conv(p, 2, 8, 3, stride=2, padding=1, weight_scale=6),
            slayer.block.cuba.Conv(p, 8, 16, 3, stride=2, padding=1, weight_scale=6),
            slayer.block.cuba.Flatten(),
            slayer.block.cuba.Dense(p, 16 * 4 * 4, 64, weight_scale=6, delay=True),
            slayer.block.cuba.Dense(p, 64, 10, weight_scale=6),
        )
        with torch.no_grad():  # axonal delays of 0..3 steps
            self.blocks[3].delay.delay.copy_(torch.arange(64) % 4)

    def forward(self, x):
        return self.blocks(x)


NMNIST_NEURON = {"threshold": 1.25, "current_decay": 0.25, "voltage_decay": 0.03,
                 "tau_grad": 0.03, "scale_grad": 3, "requires_grad": True}


class NMNISTNet(nn.Module):
    """NMNIST-style cuba conv net with learnable delays (input ``[N, 2, 34, 34, T]``)."""

    def __init__(self):
        super().__init__()
        p = NMNIST_NEURON
        self.blocks = nn.Sequential(
            slayer.block.cuba.Pool(p, 4, delay=True),
            slayer.block.cuba.Conv(p, 2, 16, 5, padding=2, weight_scale=2, delay=True),
            slayer.block.cuba.Pool(p, 2, delay=True),
            slayer.block.cuba.Conv(p, 16, 32, 3, padding=1, weight_scale=2, delay=True),
            slayer.block.cuba.Pool(p, 2, delay=True),
            slayer.block.cuba.Flatten(),
            slayer.block.cuba.Dense(p, 32 * 3 * 3, 64, weight_scale=2, delay=True),
            slayer.block.cuba.Dense(p, 64, 10, weight_scale=2),
        )

    def forward(self, x):
        return self.blocks(x)


SDNN_NEURON = {"threshold": 0.1, "tau_grad": 0.5, "scale_grad": 1, "requires_grad": True,
               "shared_param": True, "activation": torch.nn.functional.relu}


class PilotNetSDNN(nn.Module):
    """PilotNet-style sigma-delta net (a smaller frame: input ``[N, 3, 33, 100, T]``)."""

    def __init__(self):
        super().__init__()
        p = SDNN_NEURON
        self.blocks = nn.Sequential(
            slayer.block.sigma_delta.Input(p),
            slayer.block.sigma_delta.Conv(p, 3, 24, 3, padding=0, stride=2, weight_scale=2),
            slayer.block.sigma_delta.Conv(p, 24, 36, 3, padding=0, stride=2, weight_scale=2),
            slayer.block.sigma_delta.Conv(p, 36, 64, 3, padding=(1, 0), stride=(2, 1),
                                          weight_scale=2),
            slayer.block.sigma_delta.Conv(p, 64, 64, 3, padding=0, stride=1, weight_scale=2),
            slayer.block.sigma_delta.Flatten(),
            slayer.block.sigma_delta.Dense(p, 64 * 2 * 20, 100, weight_scale=2),
            slayer.block.sigma_delta.Dense(p, 100, 50, weight_scale=2),
            slayer.block.sigma_delta.Output(p, 50, 1, weight_scale=2),
        )

    def forward(self, x):
        return self.blocks(x)


class TorchCNN(nn.Module):
    """A plain torch CNN with BatchNorm feeding slayerc neurons (input ``[N, 2, 16, 16, T]``).

    Conv2d runs on time folded into the batch, Conv3d (time kernel 1) and Linear on the
    slayer layout; call ``.eval()`` before tracing so BatchNorm uses its running statistics.
    """

    def __init__(self):
        super().__init__()
        lif = {"threshold": 0.5, "current_decay": 0.25, "voltage_decay": 0.1}
        self.conv1 = nn.Conv2d(2, 8, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(8)
        self.lif1 = slayer.neuron.cuba.Neuron(**lif)
        self.conv2 = nn.Conv3d(8, 8, (3, 3, 1), stride=(2, 2, 1), padding=(1, 1, 0))
        self.bn2 = nn.BatchNorm3d(8)
        self.lif2 = slayer.neuron.cuba.Neuron(**lif)
        self.flat = nn.Flatten(1, 3)
        self.drop = nn.Dropout(0.1)
        self.fc = nn.Linear(8 * 8 * 8, 10)
        self.lif3 = slayer.neuron.cuba.Neuron(**lif)

    def forward(self, x):
        n, c, h, w, t = x.shape
        z = x.permute(0, 4, 1, 2, 3).reshape(n * t, c, h, w)  # fold time into the batch
        z = self.bn1(self.conv1(z))
        z = z.reshape(n, t, 8, h, w).permute(0, 2, 3, 4, 1)  # back to [N, C, H, W, T]
        s = self.lif1(z * 2.0)
        s = self.lif2(self.bn2(self.conv2(s)))
        s = self.drop(self.flat(s))
        y = self.fc(s.transpose(1, 2)).transpose(1, 2)  # Linear over channels
        return self.lif3(y)


class RecurrentKWTA(nn.Module):
    """Dense → Recurrent → KWTA (input ``[N, 20, T]``)."""

    def __init__(self):
        super().__init__()
        p = {"threshold": 0.3, "current_decay": 0.2, "voltage_decay": 0.05}
        self.fc = slayer.block.cuba.Dense(p, 20, 32, weight_scale=3)
        self.rec = slayer.block.cuba.Recurrent(p, 32, 32, weight_scale=2)
        self.kwta = slayer.block.cuba.KWTA(p, 32, 16, num_winners=3, weight_scale=3)

    def forward(self, x):
        return self.kwta(self.rec(self.fc(x)))


def seed_network():
    """A function returning a module also works with ``slayerc compile``."""
    return SeedNetwork()
