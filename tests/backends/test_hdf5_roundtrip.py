"""hdf5 netlists: read → write reproduces lava-dl's files; the read graph has Lava's timing."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest
from test_hdf5_util import REFERENCE, assert_same_datasets, input_shape

from slayerc.backends import hdf5
from slayerc.backends.files import load, save
from slayerc.errors import BackendError
from slayerc.ir import Graph, GraphBuilder, parse, print_graph
from slayerc.ir import load as load_sir
from slayerc.ir import ops as o
from slayerc.ir import save as save_sir

IDS = [p.stem for p in REFERENCE]
LOIHI2_OK = {"cuba_delay", "cuba_dense", "cuba_input", "cuba_learn", "cuba_norm",
             "cuba_persistent", "cuba_rec", "rf", "rf_iz", "sdnn_conv", "sdnn_dense", "cuba_conv"}


def test_all_reference_netlists_are_here() -> None:
    assert len(REFERENCE) == 17


@pytest.mark.parametrize("ref", REFERENCE, ids=IDS)
def test_write_read_gives_the_same_datasets(ref: Path, tmp_path: Path) -> None:
    g = hdf5.read(ref, input_shape=input_shape(ref))
    out = tmp_path / "out.net"
    hdf5.write(g, out, target="slayerc")
    assert_same_datasets(ref, out)
    assert hdf5.read(out, input_shape=input_shape(ref)) == g.replace(
        nodes=[n.replace(loc=n.loc.__class__(n.loc.module, str(out))) for n in g])


@pytest.mark.parametrize("ref", REFERENCE, ids=IDS)
def test_sir_text_round_trip_then_write(ref: Path, tmp_path: Path) -> None:
    g = hdf5.read(ref, input_shape=input_shape(ref))
    text = print_graph(g)
    g2 = parse(text, params=None)
    assert g2 == g
    save_sir(g, tmp_path / "g.sir")
    g3 = load_sir(tmp_path / "g.sir")
    assert g3 == g
    hdf5.write(g3, tmp_path / "out.net", target="slayerc")
    assert_same_datasets(ref, tmp_path / "out.net")


@pytest.mark.parametrize("ref", REFERENCE, ids=IDS)
def test_target_loihi2_accepts_exactly_what_netx_loads(ref: Path, tmp_path: Path) -> None:
    g = hdf5.read(ref, input_shape=input_shape(ref))
    if ref.stem in LOIHI2_OK:
        hdf5.write(g, tmp_path / "out.net")
        assert_same_datasets(ref, tmp_path / "out.net")
    else:
        with pytest.raises(BackendError, match="netx"):
            hdf5.write(g, tmp_path / "out.net")
        assert not (tmp_path / "out.net").exists()


def test_format_version_marker_and_only_layer_otherwise(tmp_path: Path) -> None:
    g = hdf5.read(REFERENCE[0])
    hdf5.write(g, tmp_path / "a.net", target="slayerc")
    with h5py.File(tmp_path / "a.net", "r") as f:
        assert sorted(f) == ["format_version", "layer"]
        # no CSR layer: the lowest version, which slayerc before the CSR format reads too
        assert f["format_version"][()] == 1 < hdf5.FORMAT_VERSION
        assert f["format_version"].dtype == np.int64


def test_files_module_dispatches_by_suffix(tmp_path: Path) -> None:
    ref = [p for p in REFERENCE if p.stem == "cuba_dense"][0]
    g = load(ref)
    save(g, tmp_path / "x.net")
    assert_same_datasets(ref, tmp_path / "x.net")


# ------------------------------------------------------------------------- graph structure


def _ref(name: str) -> Path:
    return [p for p in REFERENCE if p.stem == name][0]


def _ops(g: Graph) -> list[tuple[str, str]]:
    return [(n.name, n.OP) for n in g]


def test_cuba_input_has_lava_timing() -> None:
    g = hdf5.read(_ref("cuba_input"))
    assert _ops(g)[:5] == [("inp", "io.input"), ("layer0", "neuron.cuba"),
                           ("layer1_shift", "axon.shift"), ("layer1_syn", "synapse.dense"),
                           ("layer1", "neuron.cuba")]
    assert g["layer1"].current_decay == 1024 / 4096 and g["layer1"].threshold == 1.0
    assert g["layer1"].loc.module == "layer/1" and g["layer1"].loc.file.endswith("cuba_input.net")
    assert {"shapes", "quant-legal", "delays-legal"} <= g.facts


def test_delay_bias_and_per_channel_params() -> None:
    g = hdf5.read(_ref("cuba_delay"))
    assert g["layer0_delay"].inputs == ("layer0_syn",)
    assert g["layer0"].inputs == ("layer0_delay",)
    assert g.param(g["layer0_delay"].delay).dtype == np.int64
    g = hdf5.read(_ref("cuba_norm"))
    assert g.param(g["layer0"].bias).shape == (24,)
    g = hdf5.read(_ref("cuba_learn"))
    decay = g.param(g["layer0"].current_decay)
    assert decay.dtype == np.float64 and decay.shape == (16,)
    assert g.param(g["layer0_syn"].weight).dtype == np.float32


def test_sdnn_layers() -> None:
    g = hdf5.read(_ref("sdnn_conv"))
    assert g["layer0"].OP == "axon.delta" and g["layer0"].threshold == 6 / 64
    assert g["layer1"].OP == "neuron.sigma_delta" and g["layer1"].activation == "relu"
    assert g["layer2"].OP == "tensor.flatten"
    assert g["layer4"].OP == "dendrite.sigma" and g["layer4"].inputs == ("layer4_syn",)
    assert g["out"].inputs == ("layer4",)


def test_complex_weights_and_pool() -> None:
    g = hdf5.read(_ref("rf"))
    assert g["layer0_syn"].weight_imag is not None and g["layer0_syn"].dtype == "c32"
    g = hdf5.read(_ref("cuba_conv_pool"), input_shape=(2, 8, 8))
    assert g["layer1_syn"].OP == "synapse.pool" and g["layer1_syn"].kernel == (2, 2)
    assert g["layer1"].shape == (4, 4, 4)


# ----------------------------------------------------------------------- writer block forms


def _slayer_form(g: Graph, keep_input_shift: bool = True) -> Graph:
    """Rebuild a dense-only Lava-form graph as slayer blocks: synapse → neuron → shift."""
    b = GraphBuilder()
    b.params.update(g.params)
    x = b.add(o.Input, "x", shape=g.inputs[0].shape, dtype="f32")
    for node in g:
        if node.OP in o.NEURON_OPS and node.name + "_syn" not in g.nodes:  # input neuron
            x = b.add(type(node), "in_neuron", [x], **node.attrs())
            if keep_input_shift:
                x = b.add(o.Shift, "in_shift", [x], steps=1)
        if node.OP == "synapse.dense":
            x = b.add(o.Dense, node.name, [x], weight=node.weight, weight_imag=node.weight_imag)
        elif node.OP in o.NEURON_OPS:
            if node.name + "_syn" in g.nodes:
                x = b.add(type(node), node.name, [x], **node.attrs())
                x = b.add(o.Shift, node.name + "_out", [x], steps=1)
    b.add(o.Output, "y", [x])
    return b.build()


@pytest.mark.parametrize("name", ["cuba_dense", "cuba_input", "cuba_graded", "rf"])
def test_slayer_block_form_writes_as_lava_form(name: str, tmp_path: Path) -> None:
    g = _slayer_form(hdf5.read(_ref(name)))
    hdf5.write(g, tmp_path / "s.net", target="slayerc")
    assert_same_datasets(_ref(name), tmp_path / "s.net")


def test_slayer_block_form_with_bias_is_refused(tmp_path: Path) -> None:
    g = hdf5.read(_ref("cuba_norm"))
    b = GraphBuilder()
    b.params.update(g.params)
    x = b.add(o.Input, "x", shape=(16,), dtype="f32")
    x = b.add(o.Dense, "fc", [x], weight=g["layer0_syn"].weight)
    x = b.add(o.Cuba, "lif", [x], **g["layer0"].attrs())
    x = b.add(o.Shift, "lif_out", [x], steps=1)
    b.add(o.Output, "y", [x])
    for target in ("loihi2", "slayerc"):
        with pytest.raises(BackendError, match=r"%lif \(neuron.cuba\): key 'bias': .*head-start"):
            hdf5.write(b.build(), tmp_path / "b.net", target=target)


def test_sdnn_without_shifts_writes_as_lava_does(tmp_path: Path) -> None:
    g = hdf5.read(_ref("sdnn_dense"))
    keep = [n for n in g if n.OP != "axon.shift"]
    nodes = [n.replace(inputs=tuple(g[i].inputs[0] if g[i].OP == "axon.shift" else i
                                    for i in n.inputs)) for n in keep]
    hdf5.write(g.replace(nodes=nodes), tmp_path / "s.net")
    assert_same_datasets(_ref("sdnn_dense"), tmp_path / "s.net")


def test_input_transform_round_trip(tmp_path: Path) -> None:
    g = hdf5.read(_ref("cuba_input"))
    nodes = list(g)
    t = o.Affine(name="layer0_transform", inputs=("inp",), scale=44 / 64, bias=6 / 64)
    nodes.insert(1, t)
    nodes = [n.replace(inputs=("layer0_transform",)) if n.name == "layer0" else n for n in nodes]
    hdf5.write(g.replace(nodes=nodes, facts=()), tmp_path / "t.net")
    with h5py.File(tmp_path / "t.net", "r") as f:
        assert f["layer/0/weight"][()].tolist() == [44.0]
        assert f["layer/0/bias"][()].tolist() == [6.0]
        assert f["layer/0/weight"].dtype == np.float32
    g2 = hdf5.read(tmp_path / "t.net")
    assert g2["layer0_transform"].scale == 44 / 64 and g2["layer0_transform"].bias == 6 / 64
    hdf5.write(g2, tmp_path / "t2.net")
    assert_same_datasets(tmp_path / "t.net", tmp_path / "t2.net")


def test_input_layer_without_neuron_round_trip(tmp_path: Path) -> None:
    with h5py.File(tmp_path / "a.net", "w") as f:
        f.create_dataset("layer/0/type", (1,), "S10", [b"input"])
        f.create_dataset("layer/0/shape", data=np.array([2, 8, 10]))
        f.create_dataset("layer/1/type", (1,), "S10", [b"flatten"])
        f.create_dataset("layer/1/shape", data=np.array([160, 1, 1]))
        f.create_dataset("layer/2/type", (1,), "S10", [b"average"])
        f.create_dataset("layer/2/shape", data=np.array([4, 1, 1]))
    g = hdf5.read(tmp_path / "a.net")
    assert _ops(g) == [("layer0", "io.input"), ("layer1", "tensor.flatten"),
                       ("layer2", "tensor.average"), ("out", "io.output")]
    hdf5.write(g, tmp_path / "b.net", target="slayerc")
    assert_same_datasets(tmp_path / "a.net", tmp_path / "b.net")


def test_convt_unpool_alif_dense_without_neuron_round_trip(tmp_path: Path) -> None:
    src = tmp_path / "a.net"
    with h5py.File(_ref("cuba_conv_pool"), "r") as ref, h5py.File(src, "w") as f:
        ref.copy("layer/0", f, "layer/0")
        ref.copy("layer/1", f, "layer/1")
        f["layer/1/type"][0] = b"unpool"
        f["layer/1/shape"][...] = [4, 16, 16]
        ref.copy("layer/0", f, "layer/2")
        f["layer/2/type"][0] = b"convT"
        del f["layer/2/weight"], f["layer/2/inChannels"], f["layer/2/outChannels"]
        f["layer/2/weight"] = np.ones((4, 2, 3, 3), np.float32) * 2
        f["layer/2/inChannels"], f["layer/2/outChannels"] = np.int64(4), np.int64(2)
        f["layer/2/shape"][...] = [2, 16, 16]
        f["layer/2/delay"] = np.array([1, 2], np.float32)
        ref.copy("layer/2", f, "layer/3")
        f["layer/3/shape"][...] = [512, 1, 1]
        ref.copy("layer/3", f, "layer/4")
        del f["layer/4/neuron"], f["layer/4/weight"], f["layer/4/inFeatures"]
        f["layer/4/weight"] = np.ones((10, 512), np.float32)
        f["layer/4/inFeatures"] = np.int64(512)
    g = hdf5.read(src, input_shape=(2, 8, 8))
    assert g["layer2_syn"].OP == "synapse.conv_transpose" and g["layer4"].OP == "synapse.dense"
    hdf5.write(g, tmp_path / "b.net", target="slayerc")
    assert_same_datasets(src, tmp_path / "b.net")
    with pytest.raises(BackendError, match="unpool"):
        hdf5.write(g, tmp_path / "c.net")


def test_scalar_and_input_side_delays(tmp_path: Path) -> None:
    src = tmp_path / "a.net"
    with h5py.File(_ref("cuba_dense"), "r") as ref, h5py.File(src, "w") as f:
        ref.copy("layer", f, "layer")
        f["layer/0/delay"] = np.float32(3)
        f["layer/1/delay"] = np.arange(24, dtype=np.float32)  # per input feature
    g = hdf5.read(src)
    assert g["layer0_delay"].delay == 3 and g["layer1_delay"].inputs == ("layer1_shift",)
    hdf5.write(g, tmp_path / "b.net")
    assert_same_datasets(src, tmp_path / "b.net")


def test_long_delays_drop_the_fact_and_need_target_slayerc(tmp_path: Path) -> None:
    src = tmp_path / "a.net"
    with h5py.File(_ref("cuba_delay"), "r") as ref, h5py.File(src, "w") as f:
        ref.copy("layer", f, "layer")
        f["layer/0/delay"][0] = 70
    g = hdf5.read(src)
    assert "delays-legal" not in g.facts
    with pytest.raises(BackendError, match=r"%layer0_delay .*key 'delay': delay 70 exceeds"):
        hdf5.write(g, tmp_path / "b.net")
    hdf5.write(g, tmp_path / "b.net", target="slayerc")
    assert_same_datasets(src, tmp_path / "b.net")


def test_legacy_loihi_and_simulation_group_are_tolerated(tmp_path: Path) -> None:
    src = tmp_path / "a.net"
    with h5py.File(_ref("cuba_dense"), "r") as ref, h5py.File(src, "w") as f:
        ref.copy("layer", f, "layer")
        f["simulation/Ts"], f["simulation/tSample"] = np.int64(1), np.int64(100)
        for k in ("0", "1"):
            del f[f"layer/{k}/neuron/type"], f[f"layer/{k}/neuron/gradedSpike"]
            f[f"layer/{k}/neuron/type"] = "LOIHI"
            for key in ("theta", "tauRho", "scaleRho", "wgtExp"):
                f[f"layer/{k}/neuron/{key}"] = np.int64(1)
    g = hdf5.read(src)
    assert g["layer0"].OP == "neuron.cuba"
    hdf5.write(g, tmp_path / "b.net")
    assert_same_datasets(_ref("cuba_dense"), tmp_path / "b.net")


def test_failed_write_leaves_old_file_and_no_temp(tmp_path: Path, monkeypatch) -> None:
    from slayerc.backends.hdf5 import h5io
    g = hdf5.read(_ref("cuba_dense"))
    out = tmp_path / "x.net"
    out.write_bytes(b"old")

    real = h5io._write_group

    def boom(group, tree):
        real(group, {"partial": np.int64(1)})
        raise OSError("disk full")

    monkeypatch.setattr(h5io, "_write_group", boom)
    with pytest.raises(BackendError, match="cannot write: disk full"):
        hdf5.write(g, out)
    assert out.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.net"]
