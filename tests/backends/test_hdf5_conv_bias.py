"""Per-neuron biases of conv layers: stored in netx's neuron order (W, H, C), read back as the
IR's (C, H, W); per-channel ones as they are."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest

import slayerc
from slayerc.backends import hdf5
from slayerc.ir import GraphBuilder
from slayerc.ir import ops as o
from slayerc.ir.shapes import infer_shapes
from slayerc.runtime.fixed.simulator import simulate


def _conv_sdnn(bias: np.ndarray) -> GraphBuilder:
    """delta input (2, 9, 13) → conv 2→3 (3×3, stride 2: output (3, 4, 6)) → sigma-delta."""
    b = GraphBuilder()
    x = b.add(o.Input, "x", shape=(2, 9, 13), dtype="f32")
    x = b.add(o.Delta, "x_delta", [x], threshold=1 / 64)
    x = b.add(o.Shift, "sh", [x], steps=1)
    w = np.random.default_rng(0).integers(-6, 7, (3, 2, 3, 3)) * (2 / 64)
    x = b.add(o.Conv, "c", [x], weight=b.param("c.weight", w.astype(np.float32)),
              stride=(2, 2))
    x = b.add(o.SigmaDelta, "n", [x], threshold=1 / 64,
              bias=b.param("n.bias", bias.astype(np.float32)))
    x = b.add(o.Flatten, "f", [x])
    x = b.add(o.Shift, "sh2", [x], steps=1)
    x = b.add(o.Dense, "d", [x], weight=b.param("d.weight", np.full((2, 72), 2 / 64,
                                                                          np.float32)))
    x = b.add(o.Sigma, "s", [x])
    b.add(o.Output, "y", [x])
    return b


def test_per_neuron_conv_bias_is_written_whc_and_read_back_chw(tmp_path: Path) -> None:
    bias = np.arange(72, dtype=np.float64).reshape(3, 4, 6) / 64 - 0.5  # all distinct
    g = _conv_sdnn(bias).build()
    hdf5.write(g, tmp_path / "b.net", target="loihi2")
    with h5py.File(tmp_path / "b.net") as f:
        stored = f["layer/1/bias"][()]
        shape = f["layer/1/shape"][()]
    assert stored.shape == (6, 4, 3) == tuple(shape[::-1])  # netx: neurons (W, H, C)
    assert np.array_equal(stored, (bias * 64).transpose(2, 1, 0))
    back = hdf5.read(tmp_path / "b.net", input_shape=(2, 9, 13))
    (n,) = [n for n in back if n.OP == "neuron.sigma_delta"]
    assert np.array_equal(back.param(n.bias), bias)


@pytest.mark.parametrize("per_neuron", [False, True])
def test_conv_bias_netlist_runs_as_the_graph(tmp_path: Path, per_neuron: bool) -> None:
    """The fixed-point run of the written netlist equals that of the graph (so the bias of
    neuron (c, h, w) stays on that neuron)."""
    rng = np.random.default_rng(1)
    bias = rng.integers(-20, 21, (3, 4, 6) if per_neuron else (3,)) / 64
    g = _conv_sdnn(bias).build()
    hdf5.write(g, tmp_path / "b.net", target="loihi2")
    x = np.round(rng.random((2, 2, 9, 13, 6)) * 64) / 64
    want = simulate(infer_shapes(g), x)["y"]
    got = slayerc.run_netlist(tmp_path / "b.net", x)
    assert np.array_equal(got, want) and np.any(want != 0)
