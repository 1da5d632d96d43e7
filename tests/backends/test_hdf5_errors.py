"""Every reader and writer error names the file (or node), the layer and the key."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest
from test_hdf5_util import REFERENCE
from test_hdf5_util import del_key as _del
from test_hdf5_util import set_key as _set

from slayerc.backends import hdf5
from slayerc.errors import BackendError
from slayerc.ir import GraphBuilder
from slayerc.ir import ops as o


def _ref(name: str) -> Path:
    return [p for p in REFERENCE if p.stem == name][0]


def _mutated(tmp_path: Path, name: str, change: Callable[[h5py.File], Any]) -> Path:
    path = tmp_path / f"{name}.bad.net"
    path.write_bytes(_ref(name).read_bytes())
    with h5py.File(path, "r+") as f:
        change(f)
    return path


READ_ERRORS = [
    # (reference, change, expected message after "<file>: ")
    ("cuba_dense", _del("layer"), "key 'layer': missing group 'layer'"),
    ("cuba_dense", _del("layer/1"), None),  # fine: one layer left
    ("cuba_input", _del("layer/1"), r"key 'layer': layers must be numbered 0\.\.1 without gaps"),
    ("cuba_dense", _del("layer/0/type"), "layer/0: key 'type': missing"),
    ("cuba_dense", _set("layer/0/type", np.array([b"kwta"], "S10")),
     "layer/0: key 'type': unknown layer type 'kwta'"),
    ("cuba_dense", _set("layer/1/type", np.int64(3)), "layer/1: key 'type': expected a string"),
    ("cuba_dense", _del("layer/0/weight"), "layer/0: key 'weight': missing"),
    ("cuba_dense", _set("layer/0/weight", np.ones((24, 16), np.float32) * 0.5),
     "layer/0: key 'weight': holds fractional values"),
    ("cuba_dense", _set("layer/0/weight", np.full((24, 16), np.inf, np.float32)),
     "layer/0: key 'weight': holds inf or nan"),
    ("cuba_dense", _set("layer/0/weight", np.ones((24,), np.float32)),
     r"layer/0: key 'weight': expected a 2-d array of numbers, got float32\[24\]"),
    ("cuba_dense", _set("layer/0/weight", np.full((24, 16), 2.0 ** 30, np.float32)),
     "layer/0: key 'weight': value .* does not fit 24 bits"),
    ("cuba_dense", lambda f: (_set("layer/1/weight", np.ones((8, 20), np.float32))(f),
                              _del("layer/1/inFeatures")(f)),
     r"inconsistent: (.|\n)*%layer1_syn \(synapse.dense, from module layer/1 .*\): weight "
     r"\[8, 20\] expects 20 input features"),
    ("cuba_dense", _set("layer/0/inFeatures", np.int64(17)),
     "layer/0: key 'inFeatures': is 17 but the weight"),
    ("cuba_dense", _set("layer/0/shape", np.array([25])),
     r"layer/0: key 'shape': is \[25\] but the layer computes \[24\]"),
    ("cuba_dense", _del("layer/0/neuron/vThMant"), "layer/0: key 'neuron/vThMant': missing"),
    ("cuba_dense", _set("layer/0/neuron/iDecay", np.int64(5000)),
     r"layer/0: key 'neuron/iDecay': values 5000\.\.5000 are outside \[0, 4096\]"),
    ("cuba_dense", _set("layer/0/neuron/iDecay", np.arange(3)),
     r"layer/0: key 'neuron/iDecay': expected integers of shape scalar or \[1\] or \[24\]"),
    ("cuba_dense", _set("layer/0/neuron/type", "FOO"),
     "layer/0: key 'neuron/type': unknown neuron type 'FOO'"),
    ("cuba_dense", _set("layer/0/neuron/gradedSpike", np.int64(3)),
     "layer/0: key 'neuron/gradedSpike': expected a bool"),
    ("cuba_dense", _set("layer/0/neuron", np.int64(3)), "layer/0: key 'neuron': expected a group"),
    ("cuba_dense", _set("layer/0/neuron/refDelay", np.float64(1.5)),
     "layer/0: key 'neuron/refDelay': expected whole numbers"),
    ("sdnn_dense", _set("layer/1/neuron/activation", "softmax"),
     "layer/1: key 'neuron/activation': unknown activation 'softmax'"),
    ("sdnn_dense", _set("layer/3/neuron/sigma_output", np.int64(7)),
     "layer/3: key 'neuron/sigma_output': expected a bool"),
    ("sdnn_dense", _set("layer/3/bias", np.zeros(4, np.float32)),
     "layer/3: key 'bias': a bias on a dendrite.sigma layer is not supported"),
    ("cuba_norm", _set("layer/0/bias", np.zeros((2, 12), np.float32)),
     "layer/0: key 'bias': expected a per-channel array"),
    ("cuba_delay", _set("layer/0/delay", np.ones(5, np.float32)),
     r"layer/0: key 'delay': expected a scalar or one delay per output channel \(24\)"),
    ("cuba_delay", _set("layer/0/delay", -np.ones(24, np.float32)),
     "layer/0: key 'delay': values -1..-1 are outside"),
    ("cuba_rec", _del("layer/0/weight_rec"), "layer/0: key 'weight_rec': missing"),
    ("cuba_rec", _set("layer/0/weight_rec", np.ones((24, 16), np.float32)),
     r"layer/0: key 'weight_rec': expected shape \[24, 24\]"),
    ("rf", _del("layer/0/weight/imag"), "layer/0/weight: key 'imag': missing"),
    ("rf", _set("layer/0/weight/imag", np.ones((20, 15), np.float32)),
     "layer/0: key 'weight/imag': shape differs from weight/real"),
    ("cuba_conv_pool", _set("layer/0/kernelSize", np.array([3, 2])),
     r"layer/0: key 'kernelSize': \[3, 2\] does not match the weight"),
    ("cuba_conv_pool", _set("layer/0/stride", np.array([0, 1])),
     "layer/0: key 'stride': values 0..1 are outside"),
    ("cuba_conv_pool", _del("layer/0/groups"), "layer/0: key 'groups': missing"),
    ("cuba_conv_pool", _set("layer/1/weight", np.ones((1, 1, 3, 3), np.float32)),
     r"layer/1: key 'weight': a pool kernel must have shape \[1, 1, 2, 2\]"),
    ("cuba_input", _set("layer/1/type", np.array([b"input"], "S10")),
     "layer/1: key 'type': an input layer must be the first layer"),
    ("cuba_input", _set("layer/0/shape", np.array([[16]])),
     "layer/0: key 'shape': expected integers of shape"),
    ("cuba_input", _set("layer/0/weight", np.ones(2, np.float32)),
     r"layer/0: key 'weight': expected one number, got float32\[2\]"),
    ("cuba_dense", _del("layer/1/neuron"), None),  # a neuron-less dense layer is fine
    ("cuba_dense", _del("layer/0/neuron"), None),
    ("cuba_delay", _del("layer/0/neuron"), "layer/0: key 'neuron': missing"),
    ("cuba_dense", _set("format_version", np.int64(99)),
     "key 'format_version': 99 is newer than this slayerc reads"),
    ("cuba_dense", _set("layer/0/neuron/type", np.array([b"CUBA", b"x"])),
     "layer/0: key 'neuron/type': expected a string"),
    ("cuba_dense", lambda f: f.move("layer/1", "layer/x"), "layers must be numbered"),
    ("cuba_dense", _set("layer/1", np.int64(1)), "layer/1: expected a group, got a dataset"),
    ("cuba_dense", _set("layer", np.int64(1)), "key 'layer': expected a group"),
]


@pytest.mark.parametrize("name,change,message", READ_ERRORS,
                         ids=[f"{i}-{e[0]}" for i, e in enumerate(READ_ERRORS)])
def test_read_error_names_file_layer_and_key(tmp_path: Path, name: str, change: Any,
                                             message: str | None) -> None:
    path = _mutated(tmp_path, name, change)
    shape = {"cuba_conv_pool": (2, 8, 8)}.get(name)
    if message is None:
        hdf5.read(path, input_shape=shape)
        return
    with pytest.raises(BackendError) as info:
        hdf5.read(path, input_shape=shape)
    text = str(info.value)
    assert text.startswith(f"{path}: "), text
    assert re.search(message, text), text


def test_not_hdf5_truncated_and_missing(tmp_path: Path) -> None:
    bad = tmp_path / "x.net"
    bad.write_text("hello")
    with pytest.raises(BackendError, match=rf"^{re.escape(str(bad))}: not a readable hdf5"):
        hdf5.read(bad)
    bad.write_bytes(_ref("cuba_dense").read_bytes()[:3000])
    with pytest.raises(BackendError, match=re.escape(str(bad))):
        hdf5.read(bad)
    with pytest.raises(BackendError, match="missing.net: cannot read the netlist: no such file"):
        hdf5.read(tmp_path / "missing.net")


def test_links_are_refused(tmp_path: Path) -> None:
    path = _mutated(tmp_path, "cuba_dense", lambda f: f.__setitem__("layer/2",
                                                                     h5py.SoftLink("/layer/1")))
    with pytest.raises(BackendError, match=r"/layer/2: soft and external links"):
        hdf5.read(path)


def test_conv_first_needs_input_shape(tmp_path: Path) -> None:
    with pytest.raises(BackendError, match=r"cuba_conv\.net: layer/0: the first layer is a "
                       r"conv layer and there is no input layer: pass input_shape"):
        hdf5.read(_ref("cuba_conv"))
    with pytest.raises(BackendError, match=r"cuba_dense\.net: layer/0: input_shape=\[3\] does "
                       r"not match the a dense layer, which expects \[16\]|input_shape=\[3\]"):
        hdf5.read(_ref("cuba_dense"), input_shape=(3,))
    with pytest.raises(BackendError, match=r"cuba_input\.net: layer/0: key 'shape': the input "
                       r"layer has shape \[16\] but input_shape=\[4\]"):
        hdf5.read(_ref("cuba_input"), input_shape=(4,))
    with pytest.raises(BackendError, match="input_shape must be"):
        hdf5.read(_ref("cuba_conv"), input_shape=(0, 3))
    with pytest.raises(BackendError, match="input_shape must be a sequence"):
        hdf5.read(_ref("cuba_conv"), input_shape="abc")


def test_flatten_first_needs_input_shape(tmp_path: Path) -> None:
    path = tmp_path / "f.net"
    with h5py.File(path, "w") as f:
        f.create_dataset("layer/0/type", (1,), "S10", [b"flatten"])
        f.create_dataset("layer/0/shape", data=np.array([4, 1, 1]))
    with pytest.raises(BackendError, match=r"f\.net: layer/0: the first layer is a flatten"):
        hdf5.read(path)
    assert hdf5.read(path, input_shape=(1, 2, 2))["layer0"].shape == (4,)


# ---------------------------------------------------------------------------- writer errors


def _dense_graph(**neuron: Any) -> GraphBuilder:
    b = GraphBuilder()
    x = b.add(o.Input, "x", shape=(4,), dtype="f32")
    x = b.add(o.Shift, "sh", [x], steps=1)
    w = b.param("fc.weight", np.full((3, 4), 0.5, np.float32))
    x = b.add(o.Dense, "fc", [x], weight=w)
    x = b.add(o.Cuba, "lif", [x], **neuron)
    b.add(o.Output, "y", [x])
    return b


WRITE_ERRORS = [
    (dict(threshold=1.001), "slayerc", r"%lif \(neuron.cuba\): key 'threshold': values × 64 are "
     "not whole numbers; run legalize-quant"),
    (dict(current_decay=0.1), "slayerc", r"%lif \(neuron.cuba\): key 'current_decay': values × "
     "4096"),
    (dict(graded=True), "loihi2", r"%lif \(neuron.cuba\): key 'neuron/gradedSpike': netx 0.6 "
     "would ignore it"),
]


@pytest.mark.parametrize("neuron,target,message", WRITE_ERRORS)
def test_write_error_names_node_and_key(tmp_path: Path, neuron: dict, target: str,
                                        message: str) -> None:
    with pytest.raises(BackendError, match=message):
        hdf5.write(_dense_graph(**neuron).build(), tmp_path / "o.net", target=target)
    assert list(tmp_path.iterdir()) == []


def _write_err(tmp_path: Path, b: GraphBuilder, message: str, target: str = "slayerc") -> None:
    with pytest.raises(BackendError, match=message):
        hdf5.write(b.build(), tmp_path / "o.net", target=target)
    assert list(tmp_path.iterdir()) == []


def test_write_structure_errors(tmp_path: Path) -> None:
    b = _dense_graph()
    b.nodes["fc"] = b.nodes["fc"].replace(inputs=("x",))
    _write_err(tmp_path, b, r"%x \(io.input\): has 2 forward users")
    b = _dense_graph()
    b.nodes["sh"] = b.nodes["sh"].replace(steps=2)
    _write_err(tmp_path, b, r"%sh \(axon.shift\): steps = 2")
    b = _dense_graph()
    b.nodes["fc"] = b.nodes["fc"].replace(inputs=("x",))
    del b.nodes["sh"]
    _write_err(tmp_path, b, r"%lif \(neuron.cuba\): its synapse has no one-step axon.shift")
    b = _dense_graph()
    b.nodes["lif"] = o.Dropout(name="lif", inputs=("fc",))
    _write_err(tmp_path, b, r"%lif \(neuron.dropout\): does not start a netlist layer")
    b = _dense_graph()
    b.nodes["fc"] = b.nodes["fc"].replace(bias=b.param("fc.b", np.zeros(3, np.float32)))
    _write_err(tmp_path, b, r"%fc \(synapse.dense\): key 'bias': a synapse bias")
    b = _dense_graph()
    b.nodes["fc"] = b.nodes["fc"].replace(mask=b.param("fc.m", np.full((3, 4), 0.5, np.float32)))
    _write_err(tmp_path, b, r"%fc \(synapse.dense\): key 'mask': only a 0/1 mask")
    _write_err(tmp_path, _dense_graph(), "unknown target 'loihi3'", target="loihi3")
    b = _dense_graph()
    b.nodes["y"] = b.nodes["y"].replace(inputs=("nope",))
    _write_err(tmp_path, b, r"graph @main cannot be written: .*unknown input %nope")


def test_write_masks_fold_and_cum_error_is_refused(tmp_path: Path) -> None:
    b = _dense_graph()
    m = np.ones((3, 4), np.float32)
    m[0, 0] = 0
    b.nodes["fc"] = b.nodes["fc"].replace(mask=b.param("fc.m", m))
    hdf5.write(b.build(), tmp_path / "m.net")
    with h5py.File(tmp_path / "m.net", "r") as f:
        assert f["layer/0/weight"][0, 0] == 0 and f["layer/0/weight"][0, 1] == 32
    b = GraphBuilder()
    x = b.add(o.Input, "x", shape=(4,), dtype="f32")
    x = b.add(o.Delta, "d", [x], cum_error=True)
    b.add(o.Output, "y", [x])
    with pytest.raises(BackendError, match=r"%d \(axon.delta\): key 'cum_error'"):
        hdf5.write(b.build(), tmp_path / "c.net")


def test_write_delay_errors(tmp_path: Path) -> None:
    g = hdf5.read(_ref("cuba_conv"), input_shape=(2, 10, 12))
    nodes = []
    for n in g:
        if n.name == "layer0":
            nodes.append(o.Delay(name="layer0_delay", inputs=("layer0_syn",),
                                 delay=1, loc=n.loc))
            n = n.replace(inputs=("layer0_delay",))
        nodes.append(n)
    bad = g.replace(nodes=nodes, facts=())
    with pytest.raises(BackendError, match=r"%layer0_delay \(axon.delay, from module layer/0 "
                       r".*cuba_conv.net\): key 'delay': netx 0.6 ignores delays on conv"):
        hdf5.write(bad, tmp_path / "d.net")
    hdf5.write(bad, tmp_path / "d.net", target="slayerc")
    (tmp_path / "d.net").unlink()
    b = _dense_graph()
    d = b.param("d", np.array([1, 2], np.int64))
    b.nodes["dl"] = o.Delay(name="dl", inputs=("fc",), delay=d)
    b.nodes["lif"] = b.nodes["lif"].replace(inputs=("dl",))
    b.nodes = {k: b.nodes[k] for k in ("x", "sh", "fc", "dl", "lif", "y")}
    _write_err(tmp_path, b, r"graph @main cannot be written|%dl \(axon.delay\): key 'delay'")


def _two_delay_layer(pre_steps: Any, post_steps: Any) -> GraphBuilder:
    """x → shift → [delay per column] → dense 4→3 → [delay per output] → cuba (Lava form)."""
    b = GraphBuilder()
    x = b.add(o.Input, "x", shape=(4,), dtype="f32")
    x = b.add(o.Shift, "sh", [x], steps=1)
    if pre_steps is not None:
        x = b.add(o.Delay, "pre", [x], delay=b.param("pre.d", np.asarray(pre_steps, np.float32)))
    x = b.add(o.Dense, "fc", [x], weight=b.param("fc.weight", np.full((3, 4), 0.5, np.float32)))
    if post_steps is not None:
        x = b.add(o.Delay, "post", [x], delay=post_steps)
    x = b.add(o.Cuba, "lif", [x])
    b.add(o.Output, "y", [x])
    return b


def test_a_layer_with_two_delays_is_refused_not_half_written(tmp_path: Path) -> None:
    """netx holds one delay vector per layer: a column delay and an output delay on the same
    layer are refused by name (the writer used to keep the first and drop the second)."""
    _write_err(tmp_path, _two_delay_layer([1, 2, 3, 4], 2),
               r"%post \(axon.delay\): a netlist layer holds one delay vector, but this layer "
               r"also has %pre before its synapse; move one of them to another layer")
    hdf5.write(_two_delay_layer([1, 2, 3, 4], None).build(), tmp_path / "pre.net")
    with h5py.File(tmp_path / "pre.net", "r") as f:
        assert list(f["layer/0/delay"][()]) == [1, 2, 3, 4]


def test_slayer_form_layer_reads_column_delays_after_a_flatten(tmp_path: Path) -> None:
    """flatten → delay → dense → cuba → shift (slayer's form, what legalize-delay leaves when
    it moves per-channel conv delays): the delay is the dense layer's per-column vector."""
    b = GraphBuilder()
    x = b.add(o.Input, "x", shape=(2, 1, 2), dtype="f32")
    x = b.add(o.Flatten, "f", [x])
    x = b.add(o.Delay, "cols", [x], delay=b.param("cols.d", np.array([0, 5, 1, 2], np.float32)))
    x = b.add(o.Dense, "fc", [x], weight=b.param("fc.weight", np.full((3, 4), 0.5, np.float32)))
    x = b.add(o.Cuba, "lif", [x])
    x = b.add(o.Shift, "s", [x])
    b.add(o.Output, "y", [x])
    hdf5.write(b.build(), tmp_path / "cols.net", target="loihi2")
    with h5py.File(tmp_path / "cols.net", "r") as f:
        assert [f[f"layer/{i}/type"][0] for i in range(2)] == [b"flatten", b"dense"]
        assert list(f["layer/1/delay"][()]) == [0, 5, 1, 2]
    g = hdf5.read(tmp_path / "cols.net", input_shape=(2, 1, 2))
    assert [g[u].OP for u in ("layer1_shift", "layer1_delay", "layer1_syn")] == [
        "axon.shift", "axon.delay", "synapse.dense"]


def test_loihi2_rejects_what_netx_drops(tmp_path: Path) -> None:
    g = hdf5.read(_ref("sdnn_dense"))
    g = g.with_node(g["layer1"].replace(activation="tanh"))
    with pytest.raises(BackendError, match=r"%layer1 \(neuron.sigma_delta.*key "
                       "'neuron/activation': netx 0.6 would run it as relu"):
        hdf5.write(g, tmp_path / "a.net")
    g = hdf5.read(_ref("cuba_dense"))
    nodes = [n for n in g if n.name != "layer1"]
    nodes = [n.replace(inputs=("layer1_syn",)) if n.name == "out" else n for n in nodes]
    g = g.replace(nodes=nodes)
    with pytest.raises(BackendError, match=r"%layer1_syn .*key 'neuron': netx 0.6 would give it "
                       "a default CUBA"):
        hdf5.write(g, tmp_path / "a.net")
    g = hdf5.read(_ref("rf"))
    b = g.param(g["layer0_syn"].weight)[:, 0].astype(np.float64) * 0
    g = g.replace(params={**g.params, "rb": b})
    g = g.with_node(g["layer0"].replace(bias=hdf5.reader.ParamRef("rb")))
    with pytest.raises(BackendError, match=r"%layer0 \(neuron.rf.*key 'bias': netx 0.6 would "
                       "ignore the bias"):
        hdf5.write(g, tmp_path / "a.net")
