"""lower-pool: sum pools become depthwise convs with exactly the same outputs, or are refused."""

from __future__ import annotations

import numpy as np
import pytest
import refcases
import torch
import torch.nn.functional as F
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import slayerc
from slayerc.driver import run_netlist
from slayerc.errors import PassError, SlayerError
from slayerc.frontend.trace import trace
from slayerc.ir import GraphBuilder
from slayerc.ir import ops as o
from slayerc.ir.core import Loc
from slayerc.passes import PassManager
from slayerc.passes import lower_pool as lp
from slayerc.passes.pipelines import default_pipeline
from slayerc.runtime.fixed_point import simulate
from slayerc.runtime.interpreter import interpret

CUBA = {"threshold": 0.5, "current_decay": 0.25, "voltage_decay": 0.125}


def _pool_net(c, h, w, kernel, stride, padding=0, dilation=1, seed=0, neuron=False, bias=False):
    """x → synapse.pool (random kernel on the 1/32 grid) → [neuron.cuba] → output, shaped."""
    rng = np.random.default_rng(seed)
    k = (kernel, kernel) if isinstance(kernel, int) else kernel
    pair = lambda v: (v, v) if isinstance(v, int) else v  # noqa: E731
    b = GraphBuilder()
    x = b.add(o.Input, "x", shape=(c, h, w))
    weight = b.param("p.weight", (rng.integers(-24, 64, (1, 1, *k)) / 32).astype(np.float32))
    extra = {"bias": b.param("p.bias", np.array([0.25], np.float32))} if bias else {}
    y = b.add(o.Pool, "p", [x], kernel=k, stride=pair(stride), padding=pair(padding),
              dilation=pair(dilation), weight=weight, loc=Loc("blk.synapse", "net.py", 3),
              **extra)
    if neuron:
        y = b.add(o.Cuba, "n", [y], **CUBA)
    b.add(o.Output, "y", [y])
    return PassManager.from_string("shape-infer").run(b.build())


def _inputs(g, seed: int, graded: bool, steps: int = 12) -> torch.Tensor:
    """Seeded spikes, or graded integers 0..7 (integer sums: exact in any order)."""
    rng = np.random.default_rng(seed)
    shape = (2, *g["x"].shape, steps)
    x = rng.integers(0, 8, shape) if graded else rng.random(shape) < 0.4
    return torch.as_tensor(x.astype(np.float32))


# (C, H, W, kernel, stride, padding, dilation): the geometries lava-dl's pool runs per channel
GEOMETRIES = [
    (3, 8, 8, 2, 2, 0, 1),                       # the usual 2x2 pool
    (2, 9, 6, 3, 3, 0, 1),                       # kernel 3
    (2, 6, 7, 2, 3, 0, 1),                       # stride > kernel, width remainder read
    (2, 5, 5, 2, 3, 0, 1),                       # remainder rows no window reads
    (2, 8, 9, (2, 3), (2, 1), (0, 1), (1, 2)),   # overlapping, padded, dilated columns
    (1, 7, 7, 3, 2, 1, 1),                       # one channel: overlap and padding in rows
    (2, 10, 10, 4, 4, 0, 1),                     # NMNIST-like remainder (10 mod 4 = 2)
    (2, 9, 11, 3, (3, 2), 0, 1),                 # width remainder 2 with kernel 3, stride 2
    (1, 5, 4, 2, (1, 2), 0, (2, 1)),             # remainder under dilation: spread out
    (2, 4, 5, 2, (2, 1), 0, (1, 2)),             # the same in the width, two channels
]


@pytest.mark.parametrize("geom", GEOMETRIES, ids=[str(i) for i in range(len(GEOMETRIES))])
@pytest.mark.parametrize("graded", [False, True], ids=["spikes", "graded"])
def test_interpreter_outputs_are_exactly_equal(geom, graded: bool) -> None:
    for neuron in (False, True):
        g = _pool_net(*geom, seed=len(str(geom)), neuron=neuron)
        h = lp.run(g)
        conv = h["p"]
        assert conv.OP == "synapse.conv" and conv.groups == geom[0] and conv.loc == g["p"].loc
        assert conv.shape == g["p"].shape and not [n for n in h if n.OP == "synapse.pool"]
        x = _inputs(g, 7, graded)
        before, after = interpret(g, x), interpret(h, x)
        assert torch.equal(before, after)
        assert before.abs().sum() > 0


@pytest.mark.parametrize("geom", GEOMETRIES, ids=[str(i) for i in range(len(GEOMETRIES))])
def test_fixed_point_outputs_are_exactly_equal(geom) -> None:
    for neuron, graded in ((True, False), (False, True)):
        g = _pool_net(*geom, seed=3, neuron=neuron)
        h = lp.run(g)
        x = _inputs(g, 11, graded).numpy()
        before, after = simulate(g, x)["y"], simulate(h, x)["y"]
        assert np.array_equal(before, after) and np.abs(before).sum() > 0


def test_bias_becomes_per_channel() -> None:
    g = _pool_net(3, 6, 6, 2, 2, neuron=True, bias=True)
    h = lp.run(g)
    assert np.array_equal(h.param(h["p"].bias.name), np.full(3, 0.25, np.float32))
    x = _inputs(g, 1, False)
    assert torch.equal(interpret(g, x), interpret(h, x))


def test_report_says_what_was_lowered() -> None:
    g = _pool_net(2, 10, 10, 4, 4)
    _, report = lp.run_with_report(g)
    assert report.lines() == [
        "note: lower-pool: lowered %p (synapse.pool, from module blk.synapse at net.py:3) to a "
        "depthwise synapse.conv (groups = 2, weight [2, 1, 6, 6]); slayer's bottom/right "
        "remainder padding became 2 leading zero kernel row(s), 2 column(s) and padding [2, 2]"]


def test_remainder_is_zero_kernel_rows_and_padding() -> None:
    g = _pool_net(1, 5, 4, 2, (1, 2), 0, (2, 1))
    h = lp.run(g)
    conv, k = h["p"], g.param("p.weight")[0, 0]
    assert conv.padding == (1, 0) and conv.dilation == (1, 1) and conv.stride == (1, 2)
    spread = np.zeros((4, 2), np.float32)
    spread[[1, 3]] = k  # one leading zero row, then the taps two rows apart (dilation 2)
    assert np.array_equal(h.param(conv.weight.name), spread[None, None])


@pytest.mark.parametrize("geom, match", [
    ((2, 8, 8, 3, 2, 0, 1), r"stacks the 2 channels into one image of 2·10 rows"),
    ((3, 7, 8, 4, 4, 0, 1), r"stacks the 3 channels into one image of 3·10 rows"),
    ((2, 8, 8, 2, 2, 1, 1), r"stacks the 2 channels"),
])
def test_inexact_geometries_raise_naming_the_node(geom, match: str) -> None:
    """Shape inference refuses them (the IR's pool is per channel); lower-pool checks again."""
    with pytest.raises(PassError, match="read rows of two channels") as err:
        _pool_net(*geom)
    assert "%p (synapse.pool, from module blk.synapse at net.py:3)" in str(err.value)


def test_target_slayerc_leaves_the_graph_unchanged() -> None:
    g = _pool_net(2, 8, 8, 2, 2)
    h, report = lp.run_with_report(g, lp.Options(target="slayerc"))
    assert h == g and report.notes == ()
    assert PassManager.from_string("lower-pool{target=slayerc}").run(g) == g


def test_unknown_target_is_refused() -> None:
    with pytest.raises(PassError, match="unknown target 'tpu'"):
        lp.run(_pool_net(2, 4, 4, 2, 2), lp.Options(target="tpu"))


def _per_channel(x: torch.Tensor, node, w: torch.Tensor) -> torch.Tensor:
    """The IR docstring's pool: each channel padded bottom/right, then the shared kernel ``w``."""
    kh, kw = node.kernel
    n, c, h, wd = x.shape
    x = F.pad(x, (0, wd % kw, 0, h % kh)).reshape(n * c, 1, h + h % kh, wd + wd % kw)
    y = F.conv2d(x, w, None, node.stride, node.padding, node.dilation)
    return y.reshape(n, c, *y.shape[2:])


def _differs_per_channel(g, x: torch.Tensor) -> bool:
    """Whether lava-dl's pool (as the interpreter runs it) fails, or differs from a per-channel
    pool, with a kernel of distinct values ``1, 2, ...`` (so no tap can stand in for another).
    """
    node = g["p"]
    w = np.arange(1, np.prod(node.kernel) + 1, dtype=np.float32).reshape(1, 1, *node.kernel)
    try:
        got = interpret(g.replace(params={**g.params, "p.weight": w}), x)
    except SlayerError:
        return True
    n, c, h, wd, t = x.shape
    want = _per_channel(x.permute(0, 4, 1, 2, 3).reshape(n * t, c, h, wd), node,
                        torch.from_numpy(w))
    return got.shape[1:4] != want.shape[1:] or not torch.equal(
        got.permute(0, 4, 1, 2, 3).reshape(want.shape), want)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(1, 3), st.integers(3, 9), st.integers(3, 9), st.integers(1, 4),
       st.integers(1, 4), st.integers(1, 4), st.integers(0, 1), st.integers(1, 2),
       st.integers(1, 3), st.integers(0, 1000))
def test_random_geometries_are_lowered_exactly_or_refused(c, h, w, kh, sh, sw, ph, dh, dw,
                                                          seed):
    """Lowered: bit-equal.  Refused: lava-dl's pool really is not a pool of each channel."""
    try:
        g = _pool_net(c, h, w, (kh, 2), (sh, sw), (ph, 1), (dh, dw), seed=seed)
    except SlayerError:
        return  # the kernel does not fit the input
    x = _inputs(g, seed, graded=True, steps=3)
    try:
        lowered = lp.run(g)
    except PassError as e:
        assert "stacks the" in str(e) and _differs_per_channel(g, x)
        return
    assert torch.equal(interpret(g, x), interpret(lowered, x))


# ------------------------------------------------------------------------------ end to end


def _loihi2_pipeline(lower: bool = True) -> str:
    """The default loihi2 pipeline with ``lower-pool`` right after ``sparsify-masks`` (or not)."""
    steps = [s for s in default_pipeline("loihi2").split(",") if not s.startswith("lower-pool")]
    at = steps.index("sparsify-masks") + 1
    return ",".join([*steps[:at], *(["lower-pool{target=loihi2}"] if lower else []), *steps[at:]])


def test_cuba_conv_pool_writes_a_loihi2_netlist_that_matches_slayer(tmp_path) -> None:
    net, x = refcases.build("cuba_conv_pool")
    g = PassManager.from_string(_loihi2_pipeline()).run(trace(net, x))
    assert not [n for n in g if n.OP == "synapse.pool"]
    path = tmp_path / "cuba_conv_pool.net"
    slayerc.save(g, path)
    back = slayerc.load(path, input_shape=(2, 8, 8))
    assert [n.groups for n in back if n.OP == "synapse.conv"] == [1, 4]
    want = np.load(refcases.REF_DIR / "cuba_conv_pool.slayer_out.npy")
    out = run_netlist(path, x[0].numpy())
    assert want.sum() > 0 and np.array_equal(out, want)  # shift 0: cuba blocks (README)
    layers = np.load(refcases.REF_DIR / "cuba_conv_pool.slayer_layers.npz")
    _, got = run_netlist(path, x[0].numpy(), all_layers=True)
    for key in layers.files:
        assert np.array_equal(got[key], layers[key]), key
    assert np.array_equal(simulate(back, x[0].numpy())[back.outputs[0].name], want)


def test_without_lowering_loihi2_refuses_the_pool(tmp_path) -> None:
    net, x = refcases.build("cuba_conv_pool")
    g = PassManager.from_string(_loihi2_pipeline(lower=False)).run(trace(net, x))
    with pytest.raises(SlayerError, match="layer type 'pool' cannot be loaded by netx"):
        slayerc.save(g, tmp_path / "x.net")
