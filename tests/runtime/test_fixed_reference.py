"""The fixed-point runtime against Lava's fixed_pt outputs and lava-dl slayer's integer dynamics.

Every reference case with a Lava output must match it exactly, in every layer.  For the ops netx
cannot load (ALIF, ADRF, pool, graded CUBA), the runtime's documented semantics coincide with
slayer's integer dynamics: compared at shift 0 (cuba/alif/adrf blocks delay their output by one
step, like Lava's synapse) or at +1 per synapse stage (sigma-delta blocks have no delay_shift).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from slayerc.driver import run_netlist

DATA = Path(__file__).resolve().parents[1] / "data" / "lava-dl"
LAVA_CASES = ["cuba_dense", "cuba_input", "cuba_conv", "cuba_delay", "cuba_rec", "rf", "rf_iz",
              "sdnn_dense", "sdnn_conv"]


def _case(name: str) -> tuple[Path, np.ndarray]:
    return DATA / f"{name}.net", np.load(DATA / f"{name}.input.npy")


@pytest.mark.parametrize("name", LAVA_CASES)
def test_matches_lava_output_and_every_layer(name: str) -> None:
    net, x = _case(name)
    out, layers = run_netlist(net, x, all_layers=True)
    want = np.load(DATA / f"{name}.lava_out.npy")
    assert out.dtype == np.int32 and out.shape == want.shape
    np.testing.assert_array_equal(out, want)
    ref = np.load(DATA / f"{name}.lava_layers.npz")
    assert sorted(layers) == sorted(ref.files)
    for key in ref.files:
        np.testing.assert_array_equal(layers[key], ref[key], err_msg=f"{name} {key}")


@pytest.mark.parametrize("name", ["cuba_dense", "cuba_conv", "cuba_rec", "sdnn_conv", "rf"])
def test_batched_run_equals_single_runs(name: str) -> None:
    net, x = _case(name)
    shifted = np.concatenate([np.zeros_like(x[..., :3]), x[..., :-3]], axis=-1)
    flipped = x[..., ::-1].copy()
    batch = np.stack([x, shifted, flipped])
    out, layers = run_netlist(net, batch, all_layers=True)
    for i, xi in enumerate(batch):
        single, single_layers = run_netlist(net, xi, all_layers=True)
        np.testing.assert_array_equal(out[i], single)
        for key, arr in single_layers.items():
            np.testing.assert_array_equal(layers[key][i], arr)


def test_steps_pads_with_zeros_and_cuts() -> None:
    net, x = _case("cuba_dense")
    longer = run_netlist(net, x, steps=x.shape[-1] + 7)
    padded = run_netlist(net, np.concatenate([x, np.zeros_like(x[:, :7])], axis=1))
    np.testing.assert_array_equal(longer, padded)
    np.testing.assert_array_equal(run_netlist(net, x, steps=20), run_netlist(net, x[:, :20]))


# (case, layer, scale of slayer's float value, time shift of the runtime against slayer)
SLAYER_ONLY = [
    ("alif_dense", "layer0", 1, 0), ("alif_dense", "layer1", 1, 0),
    ("adrf_dense", "layer0", 1, 0), ("adrf_dense", "layer1", 1, 0),
    ("cuba_conv_pool", "layer0", 1, 0), ("cuba_conv_pool", "layer1", 1, 0),
    ("cuba_conv_pool", "layer2", 1, 0),
    ("cuba_graded", "layer0", 1 << 12, 0), ("cuba_graded", "layer1", 1, 0),
    ("sdnn_pool", "layer0", 1 << 12, 0), ("sdnn_pool", "layer1", 1 << 12, 1),
    ("sdnn_pool", "layer2", 1 << 12, 2), ("sdnn_pool", "layer3", 1 << 12, 3),
    ("sdnn_pool", "layer4", 1 << 18, 4),
]


@pytest.mark.parametrize(("name", "layer", "scale", "shift"), SLAYER_ONLY)
def test_non_netx_ops_match_slayer_integer_dynamics(name: str, layer: str, scale: int,
                                                    shift: int) -> None:
    net, x = _case(name)
    _, layers = run_netlist(net, x, all_layers=True)
    want = np.load(DATA / f"{name}.slayer_layers.npz")[layer] * scale
    got = layers[layer]
    assert got.shape == want.shape
    steps = got.shape[-1]
    np.testing.assert_array_equal(got[..., shift:], want[..., : steps - shift])
    assert not got[..., :shift].any()
