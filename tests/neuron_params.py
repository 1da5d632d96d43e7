"""One slayer ``neuron_params`` dict per neuron family, shared by the block and kernel tests."""

from __future__ import annotations

import torch

#: Small-network settings that make every family spike on random 0/1 input.
NEURON_PARAMS = {
    "cuba": {"threshold": 0.5, "current_decay": 0.25, "voltage_decay": 0.03},
    "alif": {"threshold": 0.5, "threshold_step": 0.1, "current_decay": 0.25,
             "voltage_decay": 0.03, "threshold_decay": 0.1, "refractory_decay": 0.2},
    "rf": {"threshold": 0.1, "period": 7, "decay": 0.1},
    "rf_iz": {"threshold": 0.1, "period": 7, "decay": 0.1},
    "adrf": {"threshold": 0.1, "threshold_step": 0.05, "period": 7, "decay": 0.1,
             "threshold_decay": 0.1, "refractory_decay": 0.2},
    "adrf_iz": {"threshold": 0.1, "threshold_step": 0.05, "period": 7, "decay": 0.1,
                "threshold_decay": 0.1, "refractory_decay": 0.2},
    "sigma_delta": {"threshold": 0.05, "activation": torch.relu},
}
