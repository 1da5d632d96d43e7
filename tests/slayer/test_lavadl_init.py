"""Same seed, same network as lava-dl 0.6: weights, weight-norm gains, per-channel neuron
parameters and axonal delays (drawn at the first forward, in lava-dl's order), and the
first-forward output.

The oracle is ``tests/data/lavadl_init/*.npz``, written by lava-dl itself
(``tools/lavadl_init_reference.py`` run in the lavaref environment); the models are built here
with ``slayerc.slayer`` by the same definitions (``build`` in that script).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch

import slayerc.slayer as slayer

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "tests" / "data" / "lavadl_init"
_spec = importlib.util.spec_from_file_location("lavadl_init_reference",
                                               ROOT / "tools" / "lavadl_init_reference.py")
ref = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(ref)


def _stored(case: str) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
    z = np.load(DATA / f"{case}.npz")
    sd = {k[3:]: z[k] for k in z.files if k.startswith("sd/")}
    return sd, z["input"], z["output"]


@pytest.mark.parametrize("case", ref.CASES)
def test_same_seed_builds_lava_dls_network_and_output(case):
    want_sd, x, want_y = _stored(case)
    sd, got_x, y = ref.run(slayer, case)
    assert np.array_equal(got_x.numpy(), x)
    got = {k: v.detach().numpy() for k, v in sd.items() if k in want_sd}
    assert sorted(got) == sorted(want_sd), "state-dict keys differ from lava-dl's"
    for key, value in want_sd.items():
        assert got[key].shape == value.shape, key
        assert np.array_equal(got[key], value), f"{key} differs from lava-dl's"
    assert want_y.sum() > 0 and np.array_equal(y.numpy(), want_y)


def test_drawing_at_construction_would_differ():
    """The order matters: per-channel values drawn before the next layer's weights (slayerc's
    old order) give that layer other weights than lava-dl's from the same seed."""
    want_sd, _, _ = _stored("cuba_dense_wn_delay_per_channel")
    torch.manual_seed(0)
    first = slayer.block.cuba.Dense(ref.CUBA, 20, 16, weight_norm=True, delay=True,
                                    weight_scale=4)
    first(torch.zeros(1, 20, 2))  # draws its decays and delays before the next weights
    second = slayer.block.cuba.Dense(ref.CUBA, 16, 12, weight_norm=True, delay=True,
                                     weight_scale=4)
    assert not np.array_equal(second.synapse.weight_v.detach().numpy(),
                              want_sd["1.synapse.weight_v"])
