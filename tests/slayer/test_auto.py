"""``slayer.auto.SequentialNetwork``: netx netlist → slayer blocks, the inverse of ``export_hdf5``.

Every lava-dl reference netlist rebuilds into blocks whose output (and every layer) equals the
stored lava-dl slayer output bit for bit, and whose export gives the reference file's datasets.
Networks of other slayer blocks (conv/pool/convT/unpool, ALIF, ADRF, RF conv, per-channel
parameters, delays, norms, graded spikes, Affine, KWTA, SDNN per-channel thresholds) survive
export → rebuild the same way.  Malformed files and netlists the blocks cannot express raise
slayerc errors naming the file, the layer and the key.
"""

from __future__ import annotations

import shutil

import h5py
import numpy as np
import pytest
import torch
from refcases import CASES, REF_DIR, load_arch
from test_export import assert_same_datasets, export

import slayerc.slayer as slayer
from slayerc.errors import BackendError, FrontendError, SlayerError

SequentialNetwork = slayer.auto.SequentialNetwork  # the lava-dl path: slayer.auto
AutoError = slayer.auto.AutoError
CUBA = {"threshold": 0.5, "current_decay": 0.25, "voltage_decay": 0.125}


def _stored(arch: dict, i: int, key: str):
    return np.load(REF_DIR / arch["forwards"][i][key])


def _rebuild(name: str) -> SequentialNetwork:
    """The reference netlist rebuilt in eval mode (persistent where the case is)."""
    net = SequentialNetwork(REF_DIR / f"{name}.net",
                            persistent_state=name == "cuba_persistent")
    return net.eval()


# ------------------------------------------------------------------------ reference cases


@pytest.mark.parametrize("name", CASES)
def test_reference_netlist_reproduces_slayer_output_and_layers(name):
    arch = load_arch(name)
    net = _rebuild(name)
    assert isinstance(net.blocks, torch.nn.ModuleList)
    assert len(net.blocks) == len(h5py.File(REF_DIR / f"{name}.net")["layer"])
    for i in range(len(arch["forwards"])):  # cuba_persistent: the second forward continues
        x = torch.tensor(_stored(arch, i, "input"))[None]
        layers = _stored(arch, i, "layers")
        with torch.no_grad():
            k = 0
            for blk in net.blocks:
                x = blk(x)
                if isinstance(blk, slayer.block.base.AbstractFlatten):
                    continue
                assert np.array_equal(x[0].numpy(), layers[f"layer{k}"]), (i, k)
                k += 1
        assert np.array_equal(x[0].numpy(), _stored(arch, i, "output"))


@pytest.mark.parametrize("name", CASES)
def test_reference_netlist_forward_equals_stored_output(name):
    arch = load_arch(name)
    net = _rebuild(name)
    with torch.no_grad():
        y = net(torch.tensor(_stored(arch, 0, "input"))[None])
    assert torch.equal(y[0], torch.tensor(_stored(arch, 0, "output")))


@pytest.mark.parametrize("name", CASES)
def test_rebuilt_reference_exports_the_same_datasets(name):
    net = _rebuild(name)
    with h5py.File(REF_DIR / f"{name}.net") as ref:
        assert_same_datasets(ref, export(net.blocks))  # before any forward
        with torch.no_grad():
            net(torch.tensor(_stored(load_arch(name), 0, "input"))[None])
        assert_same_datasets(ref, export(net.blocks))


def test_persistent_state_is_an_option():
    arch = load_arch("cuba_persistent")
    x1, x2 = (torch.tensor(_stored(arch, i, "input"))[None] for i in (0, 1))
    want = torch.tensor(_stored(arch, 1, "output"))
    with torch.no_grad():
        fresh = SequentialNetwork(REF_DIR / "cuba_persistent.net")
        fresh(x1)
        assert not torch.equal(fresh(x2)[0], want)
        kept = SequentialNetwork(REF_DIR / "cuba_persistent.net", persistent_state=True)
        kept(x1)
        assert torch.equal(kept(x2)[0], want)


@pytest.mark.parametrize("name", ["cuba_conv", "cuba_rec", "rf", "sdnn_conv", "alif_dense"])
def test_gradients_reach_every_weight(name):
    arch = load_arch(name)
    net = SequentialNetwork(REF_DIR / f"{name}.net")
    x = torch.tensor(_stored(arch, 0, "input"))[None].requires_grad_()
    y = net(x)
    torch.manual_seed(0)
    (y * torch.randn_like(y)).sum().backward()
    weights = [(n, p) for n, p in net.named_parameters() if n.endswith("weight")]
    assert weights
    for n, p in weights:
        if p.requires_grad:
            assert p.grad is not None and torch.any(p.grad != 0), n
    assert torch.any(x.grad != 0)


def test_block_types_and_options():
    net = SequentialNetwork(REF_DIR / "sdnn_pool.net")
    assert [type(b).__name__ for b in net.blocks] == [
        "Input", "Conv", "Pool", "Flatten", "Dense", "Output"]
    assert all(type(b).__module__.endswith("sigma_delta") for b in net.blocks)
    assert net.input_shape == (2, 8, 10)
    assert SequentialNetwork(REF_DIR / "cuba_conv.net").input_shape is None
    assert SequentialNetwork(REF_DIR / "cuba_conv.net", input_shape=(2, 10, 12)).input_shape == \
        (2, 10, 12)

    arch = load_arch("cuba_dense")
    x = torch.tensor(_stored(arch, 0, "input"))[None]
    y = torch.tensor(_stored(arch, 0, "output"))[None]
    with torch.no_grad():
        total = SequentialNetwork(REF_DIR / "cuba_dense.net", reduction="sum")(x)
        mean = SequentialNetwork(REF_DIR / "cuba_dense.net", reduction="mean")(x)
        out, counts = SequentialNetwork(REF_DIR / "cuba_dense.net", count_log=True)(x)
        late = SequentialNetwork(REF_DIR / "cuba_dense.net", delay_shift=False)(x)
    assert torch.equal(total, y.sum(-1)) and torch.equal(mean, y.mean(-1))
    assert torch.equal(out, y) and counts.shape == (1, 2)
    assert float(counts[0, 1]) == pytest.approx(float((y > 0).float().mean()))
    assert not torch.equal(late, y)

    normed = SequentialNetwork(REF_DIR / "cuba_dense.net", weight_norm=True)
    assert {"blocks.0.synapse.weight_g", "blocks.0.synapse.weight_v"} <= set(
        normed.state_dict())
    with torch.no_grad():
        assert torch.equal(normed(x), y)  # g·v/|v| stays on the 8-bit grid after quantization


def test_conv_first_netlist_checks_the_given_input_shape():
    with pytest.raises(BackendError, match="cuba_conv.net: the netlist is inconsistent"):
        SequentialNetwork(REF_DIR / "cuba_conv.net", input_shape=(2, 30, 30))
    with pytest.raises(BackendError, match="input_shape"):
        SequentialNetwork(REF_DIR / "cuba_dense.net", input_shape=(17,))


# ------------------------------------------------------------- other slayer blocks round trip


def _spikes(*shape, rate=0.3, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(*shape, generator=g) < rate).float()


def _conv_family():
    per_channel = {**CUBA, "current_decay": (0.1, 0.4), "voltage_decay": (0.05, 0.2),
                   "shared_param": False}
    conv = slayer.block.cuba.Conv(per_channel, 2, 4, 3, padding=1, weight_scale=4, delay=True)
    with torch.no_grad():
        conv.delay.delay.copy_(torch.tensor([0.0, 1.0, 2.5, 3.0]))
    blocks = [
        conv,
        slayer.block.cuba.Pool(CUBA, 2, weight_scale=2),
        slayer.block.cuba.ConvT({**CUBA, "graded_spike": True}, 4, 3, 2, stride=2,
                                weight_scale=4),
        slayer.block.cuba.Unpool(CUBA, 2, weight_scale=1),
        slayer.block.cuba.Conv(CUBA, 3, 2, 3, stride=2, weight_scale=4),
        slayer.block.cuba.Flatten(),
        slayer.block.cuba.Dense(CUBA, 2 * 11 * 11, 5, weight_scale=4),
        slayer.block.cuba.Dense(CUBA, 5, 3, weight_scale=4),
    ]
    return blocks, _spikes(2, 2, 12, 12, 20), False


def _adaptive():
    alif = {"threshold": 0.4, "threshold_step": 0.1, "current_decay": (0.1, 0.3),
            "voltage_decay": (0.02, 0.1), "threshold_decay": (0.01, 0.05),
            "refractory_decay": (0.1, 0.2), "shared_param": False}
    adrf = {"threshold": 0.2, "threshold_step": 0.05, "period": 7, "decay": 0.1,
            "threshold_decay": 0.02, "refractory_decay": 0.1}
    blocks = [
        slayer.block.alif.Recurrent(alif, 6, 8, weight_scale=3, delay=True),
        slayer.block.alif.Dense({**alif, "graded_spike": True}, 8, 6, weight_scale=3),
        slayer.block.adrf_iz.Dense(adrf, 6, 5, weight_scale=3),
        slayer.block.rf.Dense({"threshold": 0.2, "period": (6, 12), "decay": (0.05, 0.2),
                               "shared_param": False}, 5, 4, weight_scale=3),
    ]
    return blocks, _spikes(2, 6, 40, rate=0.4), False


def _complex_conv():
    rf = {"threshold": 0.1, "period": 6, "decay": 0.1}
    blocks = [
        slayer.block.rf.Conv(rf, 2, 3, 3, weight_scale=4),
        slayer.block.rf.Flatten(),
        slayer.block.rf_iz.Dense(rf, 27, 4, weight_scale=4),
    ]
    return blocks, _spikes(1, 2, 5, 5, 30, rate=0.4), False


def _sigma_delta():
    act = {"threshold": 0.1, "activation": torch.nn.functional.relu}
    dense = slayer.block.sigma_delta.Dense({**act, "shared_param": False}, 6, 8, weight_scale=3)
    with torch.no_grad():
        dense.neuron.delta.threshold.data = torch.arange(1, 9) / 64
    blocks = [
        slayer.block.sigma_delta.Input(act),
        dense,
        slayer.block.sigma_delta.Dense({**act, "activation": torch.tanh}, 8, 8, weight_scale=3,
                                       delay=True),
        slayer.block.sigma_delta.Average(4),
        slayer.block.sigma_delta.Output(act, 4, 3, weight_scale=3),
    ]
    g = torch.Generator().manual_seed(3)
    x = torch.cumsum(torch.randint(-3, 4, (2, 6, 30), generator=g) / 32, dim=-1)
    return blocks, x, False


def _input_and_affine():
    blocks = [
        slayer.block.cuba.Input(CUBA, weight=2.0, bias=0.25),
        slayer.block.cuba.Dense({**CUBA, "graded_spike": True}, 5, 6, weight_scale=3),
        slayer.block.cuba.Affine(CUBA, 6, 4, weight_scale=3),
    ]
    return blocks, _spikes(2, 5, 25), False


def _plain_input_and_kwta():
    blocks = [
        slayer.block.cuba.Input(None),
        slayer.block.cuba.Dense(CUBA, 5, 6, weight_scale=3),
        slayer.block.cuba.KWTA(CUBA, 6, 4, num_winners=2, weight_scale=3),
        slayer.block.cuba.Affine(CUBA, 4, 3, dynamics=False, weight_scale=3),
    ]
    return blocks, _spikes(2, 5, 25), False


def _norms():
    norm = slayer.neuron.norm
    conv = slayer.block.cuba.Conv({**CUBA, "norm": norm.MeanOnlyBatchNorm}, 2, 3, 3,
                                  weight_scale=4)
    dense = slayer.block.cuba.Dense({**CUBA, "norm": norm.WgtScaleBatchNorm}, 27, 4,
                                    weight_scale=4)
    alif = slayer.block.alif.Dense({"threshold": 0.4, "threshold_step": 0.1,
                                    "current_decay": 0.2, "voltage_decay": 0.05,
                                    "threshold_decay": 0.02, "refractory_decay": 0.1,
                                    "norm": norm.MeanOnlyBatchNorm}, 4, 3, weight_scale=4)
    with torch.no_grad():
        conv.neuron.norm.running_mean.copy_(torch.tensor([0.1, -0.2, 0.05]))
        dense.neuron.norm.running_mean.copy_(torch.linspace(-0.3, 0.3, 4))
        dense.neuron.norm.running_var.fill_(3.0)
        alif.neuron.norm.running_mean.copy_(torch.tensor([-0.25, 0.0, 0.5]))
    blocks = [conv, slayer.block.cuba.Flatten(), dense, alif]
    return blocks, _spikes(2, 2, 5, 5, 30, rate=0.5), True


NETWORKS = {f.__name__[1:]: f for f in (_conv_family, _adaptive, _complex_conv, _sigma_delta,
                                         _input_and_affine, _plain_input_and_kwta, _norms)}


@pytest.mark.parametrize("name", NETWORKS)
def test_exported_slayer_network_rebuilds_exactly(name, tmp_path):
    torch.manual_seed(0)
    blocks, x, eval_mode = NETWORKS[name]()
    model = torch.nn.Sequential(*blocks).train(not eval_mode)
    with torch.no_grad():
        y = model(x)
    assert torch.any(y != 0)
    path = tmp_path / f"{name}.net"
    with h5py.File(path, "w") as f:
        layer = f.create_group("layer")
        for i, b in enumerate(blocks):
            b.export_hdf5(layer.create_group(str(i)))
    net = SequentialNetwork(path, input_shape=x.shape[1:-1]).train(not eval_mode)
    assert [type(b).__name__ for b in net.blocks] == [
        "Recurrent" if type(b).__name__ == "KWTA" else type(b).__name__ for b in blocks]
    with h5py.File(path) as ref:
        assert_same_datasets(ref, export(net.blocks))
    with torch.no_grad():
        z = net(x)
    assert torch.equal(y, z)


def test_sparse_weight_is_read_as_dense(tmp_path):
    """A slayerc ``weight_csr`` layer (target ``slayerc``) rebuilds with the dense weight."""
    from slayerc.backends.hdf5 import read, write

    path = tmp_path / "sparse.net"
    g = read(REF_DIR / "cuba_dense.net")
    write(g.with_node(g.nodes["layer0_syn"].replace(sparse=True)), path, target="slayerc")
    assert "weight_csr" in h5py.File(path)["layer/0"]
    arch = load_arch("cuba_dense")
    with torch.no_grad():
        y = SequentialNetwork(path)(torch.tensor(_stored(arch, 0, "input"))[None])
    assert torch.equal(y[0], torch.tensor(_stored(arch, 0, "output")))


# -------------------------------------------------------------------------------- errors


def _edit(tmp_path, case: str, edit) -> str:
    path = tmp_path / f"{case}.net"
    shutil.copy(REF_DIR / f"{case}.net", path)
    with h5py.File(path, "a") as f:
        edit(f)
    return str(path)


def _replace(f, key, value):
    del f[key]
    f[key] = value


def test_malformed_files_raise_backend_errors_naming_file_and_key(tmp_path):
    junk = tmp_path / "junk.net"
    junk.write_bytes(b"not hdf5 at all")
    with pytest.raises(BackendError, match="junk.net"):
        SequentialNetwork(junk)
    with pytest.raises(BackendError, match="missing.net"):
        SequentialNetwork(tmp_path / "missing.net")
    path = _edit(tmp_path, "cuba_dense", lambda f: f.__delitem__("layer/1/weight"))
    with pytest.raises(BackendError, match=r"cuba_dense.net: layer/1: key 'weight': missing"):
        SequentialNetwork(path)
    path = _edit(tmp_path, "cuba_dense",
                 lambda f: _replace(f, "layer/0/weight", np.zeros((3, 3), np.float32)))
    with pytest.raises(BackendError, match=r"layer/\d"):
        SequentialNetwork(path)
    path = _edit(tmp_path, "cuba_dense", lambda f: f.__delitem__("layer/0/neuron/iDecay"))
    with pytest.raises(BackendError, match=r"layer/0: key 'neuron/iDecay': missing"):
        SequentialNetwork(path)


def test_unsupported_layer_type_is_named(tmp_path):
    def concat(f):
        del f["layer/1/type"]
        f["layer/1"].create_dataset("type", (1,), "S10", [b"concat"])

    with pytest.raises(BackendError, match=r"cuba_dense.net: layer/1: key 'type'.*'concat'"):
        SequentialNetwork(_edit(tmp_path, "cuba_dense", concat))


UNSUPPORTED = {
    "per-input delay": ("cuba_dense", lambda f: f["layer/1"].create_dataset(
        "delay", data=np.arange(24, dtype=np.float32) % 3), r"layer/1: key 'delay'.*per input"),
    "long delay": ("cuba_delay", lambda f: _replace(
        f, "layer/0/delay", np.full(24, 70, np.float32)), r"layer/0: key 'delay'.*62"),
    "rf bias": ("rf", lambda f: f["layer/0"].create_dataset(
        "bias", data=np.zeros(20, np.float32)), r"layer/0: key 'bias'.*rf neuron"),
    "odd bias": ("cuba_dense", lambda f: f["layer/0"].create_dataset(
        "bias", data=np.ones(24, np.float32)), r"layer/0: key 'bias'.*even"),
    "pool bias": ("cuba_conv_pool", lambda f: f["layer/1"].create_dataset(
        "bias", data=np.zeros(4, np.float32)), r"layer/1: key 'bias'.*pool"),
    "cuba threshold per channel": ("cuba_dense", lambda f: _replace(
        f, "layer/0/neuron/vThMant", np.full(24, 64)),
        r"layer/0: key 'neuron/vThMant'.*per channel"),
    "refractory delay": ("cuba_dense", lambda f: _replace(
        f, "layer/0/neuron/refDelay", np.int64(3)), r"layer/0: key 'neuron/refDelay'"),
    "sdnn recurrent": ("sdnn_dense", lambda f: (
        _replace(f, "layer/1/type", np.array([b"dense_rec"], "S10")),
        f["layer/1"].create_dataset("weight_rec", data=np.zeros((24, 24), np.float32))),
        r"layer/1: key 'type'.*sigma_delta"),
}


@pytest.mark.parametrize("what", UNSUPPORTED)
def test_netlists_the_blocks_cannot_express_raise_auto_errors(what, tmp_path):
    case, edit, pattern = UNSUPPORTED[what]
    with pytest.raises(AutoError, match=f"{case}.net: {pattern}"):
        SequentialNetwork(_edit(tmp_path, case, edit))


def test_error_classes_and_bad_options():
    assert issubclass(AutoError, FrontendError) and issubclass(AutoError, SlayerError)
    with pytest.raises(AutoError, match="reduction"):
        SequentialNetwork(REF_DIR / "cuba_dense.net", reduction="max")


def test_weights_off_the_8bit_grid_warn(tmp_path):
    path = _edit(tmp_path, "cuba_dense", lambda f: _replace(
        f, "layer/1/weight", f["layer/1/weight"][()] + 1))
    with pytest.warns(UserWarning, match=r"layer/1: key 'weight'.*quantize_8bit"):
        SequentialNetwork(path)
