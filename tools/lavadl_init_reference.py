"""Initial parameters and first-forward outputs of seeded lava-dl 0.6 models (the oracle of
``tests/slayer/test_lavadl_init.py``).

Run with lava-dl's interpreter (the lavaref environment), not slayerc's::

    /opt/lavaref/bin/python tools/lavadl_init_reference.py [OUT_DIR]

For each case it seeds torch, builds the model with ``lava.lib.dl.slayer``, runs one forward on
a fixed input (from its own generator, so the input draws do not touch the global seed) and
writes ``OUT_DIR/<case>.npz`` (default ``tests/data/lavadl_init``): every state-dict entry
after that forward (``sd/<key>``), every entry before it (``fresh/<key>``: a checkpoint saved
before the first forward), the input (``input``), the output (``output``) and the next
``torch.rand(4)`` of the global generator (``next_rand``: the forward drew as many numbers).
(lava-dl's rf/adrf ``sin_decay``/``cos_decay`` hold uninitialised memory before the first
forward draws them, so those ``fresh/`` entries differ from run to run.)
The test builds the same models with ``slayerc.slayer`` from the same seed and compares
everything.
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
ADRF = {"threshold": 0.1, "threshold_step": 0.05, "period": (15, 25), "decay": (0.05, 0.1),
        "threshold_decay": (0.1, 0.3), "refractory_decay": (0.1, 0.3), "requires_grad": True,
        "shared_param": False}
NMNIST_CONV = {"threshold": 1.25, "current_decay": 0.25, "voltage_decay": 0.03, "tau_grad": 0.03,
               "scale_grad": 3, "requires_grad": True}  # (lava-dl's per-channel cuba decays
# do not broadcast over conv inputs: its forward raises, so conv layers share them)
NMNIST = {"threshold": 1.25, "current_decay": (0.2, 0.3), "voltage_decay": (0.02, 0.04),
          "tau_grad": 0.03, "scale_grad": 3, "requires_grad": True, "shared_param": False}
SDNN = {"threshold": 0.1, "activation": torch.nn.functional.relu, "tau_grad": 0.1,
        "scale_grad": 0.1, "requires_grad": True, "shared_param": False}


def _stack(family, params: dict, sizes: tuple[int, ...], scale: float,
           weight_norm: bool = False) -> torch.nn.Sequential:
    """Dense blocks through ``sizes``, each with an axonal delay but the last."""
    last = len(sizes) - 2
    return torch.nn.Sequential(*(
        family.Dense(params, a, b, weight_norm=weight_norm, delay=i < last, weight_scale=scale)
        for i, (a, b) in enumerate(zip(sizes, sizes[1:]))))


def build(slayer, case: str) -> torch.nn.Sequential:
    """The model of ``case`` written with ``slayer`` (lava-dl's module or slayerc's)."""
    b = slayer.block
    stacks = {  # (lava-dl 0.6's adrf_iz forward raises a TypeError, so it has no case)
        "cuba_dense_wn_delay_per_channel": (b.cuba, CUBA, (20, 16, 12, 4), 4, True),
        "alif_dense_delay_per_channel": (b.alif, ALIF, (20, 16, 4), 4, False),
        "rf_dense_delay": (b.rf, RF, (20, 16, 4), 8, False),
        "rf_iz_dense_delay": (b.rf_iz, RF, (20, 16, 4), 8, False),
        "adrf_dense_delay": (b.adrf, ADRF, (20, 16, 4), 8, False),
        "sdnn_dense_wn_delay": (b.sigma_delta, SDNN, (20, 16, 12, 4), 2, True),
    }
    if case in stacks:
        return _stack(*stacks[case])
    if case == "cuba_pool_conv_delay":
        return torch.nn.Sequential(
            b.cuba.Pool(CONV, 2),
            b.cuba.Conv(CONV, 2, 6, 3, padding=1, weight_scale=3, delay=True,
                        weight_norm=True),
            b.cuba.Pool(CONV, 2),
            b.cuba.Flatten(),
            b.cuba.Dense(CONV, 96, 8, weight_scale=3, delay=True, weight_norm=True),
            b.cuba.Dense(CONV, 8, 4, weight_scale=3))
    if case == "nmnist_conv_delay":
        return torch.nn.Sequential(
            b.cuba.Conv(NMNIST_CONV, 2, 8, 5, padding=2, stride=2, weight_scale=2, delay=True,
                        weight_norm=True),
            b.cuba.Pool(NMNIST_CONV, 2, delay=True),
            b.cuba.Conv(NMNIST_CONV, 8, 16, 3, padding=1, weight_scale=2, delay=True,
                        weight_norm=True),
            b.cuba.Flatten(),
            b.cuba.Dense(NMNIST, 16 * 4 * 4, 32, weight_scale=2, delay=True, weight_norm=True),
            b.cuba.Dense(NMNIST, 32, 10, weight_scale=2, weight_norm=True))
    raise KeyError(case)


INPUTS = {
    "cuba_dense_wn_delay_per_channel": (2, 20, 40),
    "alif_dense_delay_per_channel": (2, 20, 40),
    "rf_dense_delay": (2, 20, 40),
    "cuba_pool_conv_delay": (2, 2, 16, 16, 30),
    "rf_iz_dense_delay": (2, 20, 40),
    "adrf_dense_delay": (2, 20, 40),
    "sdnn_dense_wn_delay": (2, 20, 40),
    "nmnist_conv_delay": (2, 2, 16, 16, 30),
}
CASES = tuple(INPUTS)


def spikes(case: str) -> torch.Tensor:
    """The fixed input of ``case`` (graded for sigma-delta, binary spikes otherwise)."""
    gen = torch.Generator().manual_seed(7)
    x = torch.rand(INPUTS[case], generator=gen)
    return x * (x < 0.3) if case.startswith("sdnn") else (x < 0.3).float()


def run(slayer, case: str, before=None):
    """(state dict after the first forward, input, output, the next ``torch.rand(4)`` of the
    global generator) from seed 0.  ``before(model)`` runs between construction and forward."""
    torch.manual_seed(0)
    model = build(slayer, case)
    if before is not None:
        before(model)
    x = spikes(case)
    with torch.no_grad():
        y = model(x)
    return model.state_dict(), x, y, torch.rand(4)


def main() -> None:
    import lava.lib.dl.slayer as slayer

    out = Path(sys.argv[1]) if len(sys.argv) > 1 else \
        Path(__file__).resolve().parents[1] / "tests" / "data" / "lavadl_init"
    out.mkdir(parents=True, exist_ok=True)
    for case in CASES:
        fresh: dict[str, torch.Tensor] = {}

        def save(model, fresh=fresh):
            fresh.update(model.state_dict())

        sd, x, y, after = run(slayer, case, save)
        arrays = {f"sd/{k}": v.detach().numpy() for k, v in sd.items()}
        arrays.update({f"fresh/{k}": v.detach().clone().numpy() for k, v in fresh.items()})
        np.savez_compressed(out / f"{case}.npz", input=x.numpy(), output=y.numpy(),
                            next_rand=after.numpy(), **arrays)
        print(f"{case}: {len(sd)} state-dict entries, {float(y.abs().sum()):.3f} output sum")


if __name__ == "__main__":
    main()
