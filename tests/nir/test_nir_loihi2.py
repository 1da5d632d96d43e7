"""Imported NIR graphs compiled for loihi2: pools without a neuron, pools before a neuron."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

nir = pytest.importorskip("nir")

import slayerc  # noqa: E402
from slayerc import driver  # noqa: E402
from slayerc.backends.hdf5.h5io import load_tree  # noqa: E402
from slayerc.errors import BackendError  # noqa: E402
from slayerc.ir import ops  # noqa: E402
from slayerc.passes import PassManager  # noqa: E402
from slayerc.passes.lower_pool import conv_adjoint  # noqa: E402

DATA = Path(__file__).resolve().parents[1] / "data" / "nir"


def _spikes(shape, seed=0, p=0.3):
    return (torch.rand(*shape, generator=torch.Generator().manual_seed(seed)) < p).float()


def _layers(path):
    layers = load_tree(path)["layer"]
    return [layers[k] for k in sorted(layers, key=int)]


def _compile(path, out, **opts):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return driver.compile_file(path, output=out, **opts)


def test_conv_pool_without_neuron_is_folded_and_every_layer_has_a_neuron(tmp_path):
    """snnTorch's Conv2d → LIF → AvgPool2d → Flatten → Linear → LIF: the pool has no neuron,
    so lower-pool folds it into the Linear (netx loads no synaptic layer without one)."""
    res = _compile(DATA / "snntorch_conv.nir", tmp_path / "c.net")
    layers = _layers(tmp_path / "c.net")
    types = [ly["type"][0].decode() for ly in layers]
    assert types == ["conv", "flatten", "dense"], types
    assert all("neuron" in ly for ly, t in zip(layers, types) if t in ("conv", "dense"))
    assert layers[2]["weight"].shape == (10, 256)
    notes = [t for r in res.passes.reports for t in r.lines()]
    assert any("folded %n2 (synapse.pool" in t and "into %n4" in t for t in notes), notes
    # the fold is exact: the imported graph and the folded one spike alike
    g = slayerc.load(DATA / "snntorch_conv.nir")
    folded = PassManager.from_string("shape-infer,lower-pool{target=loihi2}").run(g)
    assert not any(n.OP in ("synapse.pool", "synapse.conv") and n.name == "n2" for n in folded)
    x = _spikes((4, 2, 8, 8, 40))
    a, b = slayerc.interpret(g, x), slayerc.interpret(folded, x)
    assert a.sum() > 50
    torch.testing.assert_close(a, b)
    # and the netlist runs in slayerc's fixed-point runtime
    out = driver.run_netlist(tmp_path / "c.net", x[0].numpy())
    assert out.shape == (10, 40)


def test_pool_without_neuron_kept_is_refused_by_name(tmp_path):
    g = slayerc.load(DATA / "snntorch_conv.nir")
    pipeline = ("shape-infer,lower-pool{target=loihi2,fold=false},legalize-layers,"
                "legalize-quant{target=loihi2}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        kept = PassManager.from_string(pipeline).run(g)
    with pytest.raises(BackendError, match=r"%n2 \(synapse.conv.*key 'neuron'.*without a neuron"):
        slayerc.save(kept, tmp_path / "k.net", target="loihi2")
    assert not (tmp_path / "k.net").exists()


def test_avgpool_before_a_neuron_is_a_conv_layer_with_that_neuron(tmp_path):
    """AvgPool2d → LIF is a netlist conv layer (the pool's depthwise conv, weight 1/4)."""
    rng = np.random.default_rng(1)
    lif = lambda *s: nir.LIF(tau=np.full(s, 1e-3), r=np.full(s, 10.0),  # noqa: E731
                             v_leak=np.zeros(s), v_threshold=np.full(s, 1.0),
                             v_reset=np.zeros(s))
    graph = nir.NIRGraph(nodes={
        "in": nir.Input(input_type={"input": np.array([2, 8, 8])}),
        "conv": nir.Conv2d(input_shape=(8, 8), weight=rng.normal(0, 1, (4, 2, 3, 3)),
                           stride=1, padding=1, dilation=1, groups=1, bias=np.zeros(4)),
        "lif1": lif(4, 8, 8), "pool": nir.AvgPool2d(kernel_size=np.array([2, 2]),
                                                     stride=np.array([2, 2]),
                                                     padding=np.array([0, 0])),
        "lif2": lif(4, 4, 4),
        "flat": nir.Flatten(input_type={"input": np.array([4, 4, 4])}, start_dim=0),
        "fc": nir.Linear(weight=rng.normal(0, 1, (5, 64))), "lif3": lif(5),
        "out": nir.Output(output_type={"output": np.array([5])})},
        edges=[("in", "conv"), ("conv", "lif1"), ("lif1", "pool"), ("pool", "lif2"),
               ("lif2", "flat"), ("flat", "fc"), ("fc", "lif3"), ("lif3", "out")])
    nir.write(tmp_path / "p.nir", graph)
    _compile(tmp_path / "p.nir", tmp_path / "p.net")
    layers = _layers(tmp_path / "p.net")
    assert [ly["type"][0].decode() for ly in layers] == ["conv", "conv", "flatten", "dense"]
    pool = layers[1]
    assert "neuron" in pool and int(np.asarray(pool["groups"])) == 4
    w = np.asarray(pool["weight"])
    assert w.shape == (4, 1, 2, 2) and np.all(w == w.flat[0]) and w.flat[0] > 0


@pytest.mark.parametrize("groups,stride,padding,dilation", [(1, 1, 0, 1), (2, 2, 1, 1),
                                                            (4, 2, 0, 2), (1, 3, 2, 1)])
def test_conv_adjoint_is_the_transpose(groups, stride, padding, dilation):
    """Row o of the fold equals W[o] · P with P the conv's matrix, built column by column."""
    rng = np.random.default_rng(groups + stride)
    c, h, w, cout = 4, 9, 7, 8
    k = rng.normal(size=(cout, c // groups, 3, 2))
    conv = ops.Conv(name="c", inputs=("x",), stride=(stride, stride), padding=(padding, padding),
                    dilation=(dilation, dilation), groups=groups)
    run = lambda x: torch.nn.functional.conv2d(  # noqa: E731
        torch.tensor(x), torch.tensor(k), stride=stride, padding=padding, dilation=dilation,
        groups=groups).numpy()
    eye = np.eye(c * h * w).reshape(-1, c, h, w)
    p = run(eye).reshape(c * h * w, -1).T  # [out features, in features]
    out_shape = run(eye[:1]).shape[1:]
    wd = rng.normal(size=(3, int(np.prod(out_shape))))
    got = conv_adjoint(wd.reshape(3, *out_shape), k, (c, h, w), conv).reshape(3, -1)
    np.testing.assert_allclose(got, wd @ p, rtol=1e-10, atol=1e-10)
