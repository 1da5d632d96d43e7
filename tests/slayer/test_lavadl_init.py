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


def _stored(case: str):
    z = np.load(DATA / f"{case}.npz")
    sd = {k[3:]: z[k] for k in z.files if k.startswith("sd/")}
    fresh = {k[6:]: torch.from_numpy(z[k]) for k in z.files if k.startswith("fresh/")}
    return sd, z["input"], z["output"], z["next_rand"], fresh


def _check(case, got_sd, got_x, y, after):
    want_sd, x, want_y, want_after, _ = _stored(case)
    assert np.array_equal(got_x.numpy(), x)
    got = {k: v.detach().numpy() for k, v in got_sd.items() if k in want_sd}
    assert sorted(got) == sorted(want_sd), "state-dict keys differ from lava-dl's"
    for key, value in want_sd.items():
        assert got[key].shape == value.shape, key
        assert np.array_equal(got[key], value), f"{key} differs from lava-dl's"
    assert np.abs(want_y).sum() > 0 and np.array_equal(y.numpy(), want_y)
    # the forward drew as many random numbers as lava-dl's: the next draw is the same
    assert np.array_equal(after.numpy(), want_after)


@pytest.mark.parametrize("case", ref.CASES)
def test_same_seed_builds_lava_dls_network_and_output(case):
    _check(case, *ref.run(slayer, case))


@pytest.mark.parametrize("case", ref.CASES)
def test_lava_dl_checkpoint_saved_before_the_first_forward_loads(case):
    """lava-dl saves one-element per-channel values and delays before its first forward; they
    load into a fresh slayerc model (strictly: same keys) and the first forward draws over them,
    as lava-dl's does, so the network is lava-dl's."""
    fresh = _stored(case)[4]
    _check(case, *ref.run(slayer, case, lambda m: m.load_state_dict(fresh, strict=True)))


@pytest.mark.parametrize("case", ["cuba_dense_wn_delay_per_channel", "adrf_dense_delay",
                                  "nmnist_conv_delay"])
def test_checkpoint_loaded_before_the_first_forward_is_kept(case):
    """lava-dl refuses a trained (per-channel) checkpoint before its first forward (size
    mismatch); slayerc loads it, keeps its values and still draws, so the random numbers after
    the forward are lava-dl's (its users run one forward, then load: the same network)."""
    want_sd = {k: torch.from_numpy(v) for k, v in _stored(case)[0].items()}
    torch.manual_seed(123)  # a different network: the loaded values must replace it all
    sd, x, y, after = ref.run(slayer, case, lambda m: m.load_state_dict(want_sd, strict=True))
    _check(case, sd, x, y, after)


def test_drawing_at_construction_would_differ():
    """The order matters: per-channel values drawn before the next layer's weights (slayerc's
    old order) give that layer other weights than lava-dl's from the same seed."""
    want_sd = _stored("cuba_dense_wn_delay_per_channel")[0]
    torch.manual_seed(0)
    first = slayer.block.cuba.Dense(ref.CUBA, 20, 16, weight_norm=True, delay=True,
                                    weight_scale=4)
    first(torch.zeros(1, 20, 2))  # draws its decays and delays before the next weights
    second = slayer.block.cuba.Dense(ref.CUBA, 16, 12, weight_norm=True, delay=True,
                                     weight_scale=4)
    assert not np.array_equal(second.synapse.weight_v.detach().numpy(),
                              want_sd["1.synapse.weight_v"])


def test_a_copy_moved_or_traced_before_the_first_forward_still_draws():
    """The draw happens in a deep copy too (``copy.deepcopy``, ``.to``), and tracing a model
    that never ran gives the model the values its traced graph holds, so the compiled module
    and the model agree afterwards, both equal to lava-dl's."""
    import copy

    import slayerc

    case = "cuba_dense_wn_delay_per_channel"
    want_sd, x, want_y, _, _ = _stored(case)
    x = torch.tensor(x)
    plain = "alif_dense_delay_per_channel"  # (no weight norm: its hook's tensor cannot be
    sd_plain, x_plain, y_plain, _, _ = _stored(plain)  # deep-copied, a torch limit)
    torch.manual_seed(0)
    dup = copy.deepcopy(ref.build(slayer, plain)).to("cpu")
    with torch.no_grad():
        assert np.array_equal(dup(torch.tensor(x_plain)).numpy(), y_plain)
    assert np.array_equal(dup.state_dict()["0.delay.delay"].numpy(), sd_plain["0.delay.delay"])
    torch.manual_seed(0)
    model = ref.build(slayer, case)
    module = slayerc.to_module(slayerc.trace(model, x))
    for key in ("0.neuron.current_decay", "1.delay.delay"):
        assert np.array_equal(model.state_dict()[key].numpy(), want_sd[key]), key
    with torch.no_grad():
        assert torch.equal(module(x), model(x))
