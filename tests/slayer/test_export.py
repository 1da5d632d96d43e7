"""Block ``export_hdf5`` writes exactly the netx layer groups lava-dl wrote, and does better.

For every reference case the exported file has the same datasets (names, dtypes, shapes, values)
as the reference ``.net``.  Unlike lava-dl: export works before the first forward when the shape
is known from construction (a clear error otherwise), never changes the module (weight norm
stays), and KWTA / Affine / masked blocks export.
"""

from __future__ import annotations

import io

import h5py
import numpy as np
import pytest
import torch
from refcases import CASES, REF_DIR, load_arch, load_input
from refcases import arch_build as _arch_build

import slayerc.slayer as slayer_module
from slayerc.errors import SlayerError


@pytest.fixture(scope="module")
def arch_build():
    """The reference reader ``arch_build.py`` shipped with the cases."""
    return _arch_build()


@pytest.fixture(scope="module")
def slayer():
    """``import slayerc.slayer as slayer``."""
    return slayer_module


CUBA = {"threshold": 1.0, "current_decay": 0.25, "voltage_decay": 0.03}


def _flat(group, prefix=""):
    out = {}
    for key, item in group.items():
        if isinstance(item, h5py.Group):
            out.update(_flat(item, prefix + key + "/"))
        else:
            out[prefix + key] = item
    return out


def export(blocks):
    """Export ``blocks`` into an in-memory netx file; returns the open h5py File."""
    f = h5py.File(io.BytesIO(), "w")
    layer = f.create_group("layer")
    for i, b in enumerate(blocks):
        b.export_hdf5(layer.create_group(str(i)))
    return f


def assert_same_datasets(ref, got):
    a, b = _flat(ref), _flat(got)
    assert sorted(a) == sorted(b)
    for key in a:
        x, y = a[key], b[key]
        assert (x.dtype, x.shape) == (y.dtype, y.shape), key
        assert h5py.check_string_dtype(x.dtype) == h5py.check_string_dtype(y.dtype), key
        assert np.array_equal(x[()], y[()]), key


@pytest.mark.parametrize("name", CASES)
def test_export_matches_reference_net(name, arch_build, slayer):
    arch = load_arch(name)
    net = arch_build.rebuild(arch, slayer, str(REF_DIR))
    with torch.no_grad():
        net(load_input(arch))
    before = {k: v.clone() for k, v in net.state_dict().items()}
    with h5py.File(REF_DIR / f"{name}.net") as ref:
        assert_same_datasets(ref, export(net))
    after = net.state_dict()
    assert sorted(after) == sorted(before)
    assert all(torch.equal(before[k], after[k]) for k in before)


DENSE_ONLY = [n for n in CASES if all(
    b["block"] in ("Dense", "Recurrent", "Output") for b in load_arch(n)["blocks"])]


@pytest.mark.parametrize("name", DENSE_ONLY)
def test_export_before_first_forward(name, arch_build, slayer):
    net = arch_build.rebuild(load_arch(name), slayer, str(REF_DIR))
    with h5py.File(REF_DIR / f"{name}.net") as ref:
        assert_same_datasets(ref, export(net))


def test_export_before_forward_needs_shape_for_conv(slayer):
    blocks = [slayer.block.cuba.Conv(CUBA, 2, 4, 3), slayer.block.cuba.Flatten(),
              slayer.block.cuba.Input(CUBA)]
    for block in blocks:
        with pytest.raises(SlayerError, match="forward"):
            export([block])
        block(torch.zeros(1, 2, 6, 6, 4))
        export([block])


def test_export_keeps_weight_norm(slayer):
    block = slayer.block.cuba.Dense(CUBA, 5, 3, weight_norm=True)
    block(torch.ones(2, 5, 4))
    keys = set(block.state_dict())
    w = export([block])["layer/0/weight"][()]
    assert {"synapse.weight_g", "synapse.weight_v"} <= set(block.state_dict()) == keys
    with torch.no_grad():
        g, v = block.synapse.weight_g, block.synapse.weight_v
        eff = (g * v / v.flatten(1).norm(dim=1).reshape(-1, 1, 1, 1, 1)).reshape(3, 5)
    np.testing.assert_array_equal(w, block.neuron.quantize_8bit(eff, descale=True).numpy())


def test_mask_with_weight_norm_forward_and_export(slayer):
    torch.manual_seed(1)
    mask = torch.tensor([[1, 0, 1, 0], [0, 1, 1, 1], [1, 1, 0, 0]], dtype=torch.bool)
    block = slayer.block.cuba.Dense(CUBA, 4, 3, weight_norm=True, mask=mask, weight_scale=4)
    assert "mask" in block.state_dict()
    w = export([block])["layer/0/weight"][()]
    assert np.all(w[~mask.numpy()] == 0) and np.any(w[mask.numpy()] != 0)
    x = torch.zeros(1, 4, 6)
    x[0, 3, 0] = 1.0  # input 3 reaches only output 1
    with torch.no_grad():
        z = block.synapse(x, block._synapse_mask())
    assert torch.all(z[0, [0, 2]] == 0)


def test_kwta_forward_and_export(slayer):
    torch.manual_seed(0)
    kwta = slayer.block.cuba.KWTA(CUBA, 8, 6, num_winners=2)
    s = kwta((torch.rand(2, 8, 20) < 0.5).float())
    assert s.shape == (2, 6, 20)
    f = export([kwta])
    assert f["layer/0/type"][0] == b"dense_rec"
    w_rec = f["layer/0/weight_rec"][()]
    assert w_rec.dtype == np.float32 and w_rec.shape == (6, 6)
    assert np.all(np.diag(w_rec) == 32) and w_rec[0, 1] == -64  # a = 0.5 and -1, times 64
    assert f["layer/0/neuron/type"][()] == b"CUBA"


def test_affine_export(slayer):
    block = slayer.block.cuba.Affine(CUBA, 4, 3)
    f = export([block])
    assert f["layer/0/type"][0] == b"dense"
    assert f["layer/0/neuron/vThMant"][()] == (1 << 18) - 1
    assert "neuron" not in export([slayer.block.cuba.Affine(CUBA, 4, 3, dynamics=False)])["layer/0"]


def test_rf_conv_export_has_complex_weights(slayer):
    block = slayer.block.rf.Conv({"threshold": 0.5, "period": 8, "decay": 0.1}, 2, 3, 3)
    block(torch.rand(1, 2, 6, 6, 5))
    f = export([block])["layer/0"]
    assert f["weight/real"].shape == (3, 2, 3, 3) and f["weight/imag"].shape == (3, 2, 3, 3)
    assert f["inChannels"][()] == 2


def test_export_errors_are_clear(slayer):
    block = slayer.block.cuba.Dense(CUBA, 4, 3, pre_hook_fx=None)
    with pytest.raises(SlayerError, match="pre_hook_fx=None"):
        export([block])
    with pytest.raises(SlayerError, match="no netx layer"):
        export([slayer.block.cuba.TimeDecimation(2)])


def test_delay_export_is_clamped_and_floored_without_changing_the_module(slayer):
    block = slayer.block.cuba.Dense(CUBA, 4, 3, delay=True)
    with torch.no_grad():
        block.delay.delay.copy_(torch.tensor([0.7, 3.9, 80.0]))
    d = export([block])["layer/0/delay"][()]
    np.testing.assert_array_equal(d, np.array([0, 3, 62], dtype=np.float32))
    assert float(block.delay.delay.detach()[2]) == 80.0
