"""Initial parameters and first-forward outputs of seeded lava-dl 0.6 models (the oracle of
``tests/slayer/test_lavadl_init.py``).

Run with lava-dl's interpreter (the lavaref environment), not slayerc's::

    /opt/lavaref/bin/python tools/lavadl_init_reference.py [OUT_DIR]

For each case it seeds torch, builds the model with ``lava.lib.dl.slayer``, runs one forward on
a fixed input (from its own generator, so the input draws do not touch the global seed) and
writes ``OUT_DIR/<case>.npz`` (default ``tests/data/lavadl_init``): every state-dict entry
after that forward (``sd/<key>``), the input (``input``) and the output (``output``).  The test
builds the same models with ``slayerc.slayer`` from the same seed and compares everything.
The model definitions here must stay in step with the test's (``CASES`` in both).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch

CUBA = {"threshold": 1.0, "current_decay": 0.25, "voltage_decay": 0.03, "tau_grad": 0.03,
        "scale_grad": 3, "requires_grad": True, "shared_param": False}
ALIF = {"threshold": 1.0, "threshold_step": 0.5, "current_decay": 0.25, "voltage_decay": 0.03,
        "threshold_decay": 0.1, "refractory_decay": 0.1, "requires_grad": True,
        "shared_param": False}
CONV = {"threshold": 0.5, "current_decay": 0.25, "voltage_decay": 0.125}
RF = {"threshold": 0.1, "period": (15, 25), "decay": (0.05, 0.1), "requires_grad": True,
      "shared_param": False}


def build(slayer, case: str) -> torch.nn.Sequential:
    """The model of ``case`` written with ``slayer`` (lava-dl's module or slayerc's)."""
    b = slayer.block
    if case == "cuba_dense_wn_delay_per_channel":
        return torch.nn.Sequential(
            b.cuba.Dense(CUBA, 20, 16, weight_norm=True, delay=True, weight_scale=4),
            b.cuba.Dense(CUBA, 16, 12, weight_norm=True, delay=True, weight_scale=4),
            b.cuba.Dense(CUBA, 12, 4, weight_norm=True, weight_scale=4))
    if case == "alif_dense_delay_per_channel":
        return torch.nn.Sequential(
            b.alif.Dense(ALIF, 20, 16, delay=True, weight_scale=4),
            b.alif.Dense(ALIF, 16, 4, weight_scale=4))
    if case == "rf_dense_delay":
        return torch.nn.Sequential(
            b.rf.Dense(RF, 20, 16, delay=True, weight_scale=8),
            b.rf.Dense(RF, 16, 4, weight_scale=8))
    if case == "cuba_pool_conv_delay":
        return torch.nn.Sequential(
            b.cuba.Pool(CONV, 2),
            b.cuba.Conv(CONV, 2, 6, 3, padding=1, weight_scale=3, delay=True,
                        weight_norm=True),
            b.cuba.Pool(CONV, 2),
            b.cuba.Flatten(),
            b.cuba.Dense(CONV, 96, 8, weight_scale=3, delay=True, weight_norm=True),
            b.cuba.Dense(CONV, 8, 4, weight_scale=3))
    raise KeyError(case)


INPUTS = {
    "cuba_dense_wn_delay_per_channel": (2, 20, 40),
    "alif_dense_delay_per_channel": (2, 20, 40),
    "rf_dense_delay": (2, 20, 40),
    "cuba_pool_conv_delay": (2, 2, 16, 16, 30),
}
CASES = tuple(INPUTS)


def spikes(case: str) -> torch.Tensor:
    gen = torch.Generator().manual_seed(7)
    return (torch.rand(INPUTS[case], generator=gen) < 0.3).float()


def run(slayer, case: str) -> tuple[dict[str, torch.Tensor], torch.Tensor, torch.Tensor]:
    """(state dict after the first forward, input, output) from seed 0."""
    torch.manual_seed(0)
    model = build(slayer, case)
    x = spikes(case)
    with torch.no_grad():
        y = model(x)
    return model.state_dict(), x, y


def main() -> None:
    import lava.lib.dl.slayer as slayer

    out = Path(sys.argv[1]) if len(sys.argv) > 1 else \
        Path(__file__).resolve().parents[1] / "tests" / "data" / "lavadl_init"
    out.mkdir(parents=True, exist_ok=True)
    for case in CASES:
        sd, x, y = run(slayer, case)
        arrays = {f"sd/{k}": v.detach().numpy() for k, v in sd.items()}
        np.savez_compressed(out / f"{case}.npz", input=x.numpy(), output=y.numpy(), **arrays)
        print(f"{case}: {len(sd)} state-dict entries, {int(y.sum())} output spikes")


if __name__ == "__main__":
    main()
