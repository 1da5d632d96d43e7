"""The float interpreter: IR graphs run to exactly what lava-dl's slayer computed.

The netlists lava-dl wrote for the reference cases are read into the IR (Lava's timing made
explicit) and interpreted in floating point with slayerc's own kernels; the result must equal
lava-dl slayer's stored output bit for bit, up to the time shift the reference README documents
(input layers run one step ahead in Lava; sigma-delta layers lag one step per synapse).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from slayerc.backends.files import load
from slayerc.errors import RuntimeSimError
from slayerc.ir import GraphBuilder
from slayerc.ir import ops as o
from slayerc.passes import PassManager
from slayerc.runtime.interpreter import Interpreter, interpret

DATA = Path(__file__).resolve().parents[1] / "data" / "lava-dl"
# case -> shift s with netlist[t] == slayer[t - s]
CASES = {"cuba_dense": 0, "cuba_conv": 0, "cuba_delay": 0, "cuba_rec": 0, "rf": 0, "rf_iz": 0,
         "alif_dense": 0, "adrf_dense": 0, "cuba_graded": 0, "cuba_conv_pool": 0,
         "cuba_input": -1, "sdnn_dense": 3, "sdnn_conv": 3, "sdnn_pool": 4}


def _load(case: str):
    x = np.load(DATA / f"{case}.input.npy")
    shape = {"input_shape": tuple(x.shape[:-1])} if x.ndim == 4 else {}
    return load(DATA / f"{case}.net", **shape), x


def _aligned(y: np.ndarray, ref: np.ndarray, s: int) -> tuple[np.ndarray, np.ndarray]:
    t = y.shape[-1]
    return (y[..., :t + s], ref[..., -s:]) if s < 0 else (y[..., s:], ref[..., :t - s])


@pytest.mark.parametrize("case", sorted(CASES))
def test_netlist_interpreted_equals_slayer(case: str) -> None:
    g, x = _load(case)
    y = interpret(g, torch.tensor(x)[None])[0].numpy()
    ref = np.load(DATA / f"{case}.slayer_out.npy")
    a, b = _aligned(y, ref, CASES[case])
    assert a.shape[-1] == ref.shape[-1] - abs(CASES[case])
    np.testing.assert_array_equal(a, b)
    assert np.abs(b).sum() > 0  # the case does something


def test_persistent_state_carries_across_calls() -> None:
    g, x = _load("cuba_persistent")
    x2 = np.load(DATA / "cuba_persistent.input_2.npy")
    it = Interpreter(g, persistent_state=True)
    y1 = it(torch.tensor(x)[None])[0].numpy()
    y2 = it(torch.tensor(x2)[None])[0].numpy()
    np.testing.assert_array_equal(y1, np.load(DATA / "cuba_persistent.slayer_out.npy"))
    np.testing.assert_array_equal(y2, np.load(DATA / "cuba_persistent.slayer_out_2.npy"))
    fresh = Interpreter(g)  # not persistent: the second call starts from rest
    assert not np.array_equal(fresh(torch.tensor(x2)[None])[0].numpy(), y2)


def test_recurrent_loop_is_persistent_too() -> None:
    g, x = _load("cuba_rec")
    whole = interpret(g, torch.tensor(x)[None])
    it = Interpreter(g, persistent_state=True)
    parts = [it(torch.tensor(x[..., a:b])[None]) for a, b in ((0, 17), (17, 33), (33, 50))]
    torch.testing.assert_close(torch.cat(parts, dim=-1), whole, rtol=0, atol=0)
    it.reset()
    torch.testing.assert_close(it(torch.tensor(x[..., :17])[None]), whole[..., :17], rtol=0,
                               atol=0)


def test_batch_equals_single_runs() -> None:
    g, x = _load("cuba_conv")
    rng = np.random.default_rng(1)
    batch = np.stack([x, np.roll(x, 3, axis=-1), (rng.random(x.shape) < 0.2).astype(np.float32)])
    ys = interpret(g, torch.tensor(batch))
    for i in range(3):
        torch.testing.assert_close(ys[i:i + 1], interpret(g, torch.tensor(batch[i])[None]),
                                   rtol=0, atol=0)


def test_input_shape_errors_name_the_node() -> None:
    g, x = _load("cuba_dense")
    with pytest.raises(RuntimeSimError, match=r"%inp? \(io.input.*expected input \[N, 16, T\]"):
        interpret(g, torch.zeros(1, 15, 10))
    b = GraphBuilder()
    b.add(o.Output, "y", [b.add(o.Input, "x", shape=(2,), dtype="f32")])
    with pytest.raises(RuntimeSimError, match="run the 'shape-infer' pass first"):
        Interpreter(b.build())


def test_two_inputs_need_a_dict() -> None:
    b = GraphBuilder()
    x1 = b.add(o.Input, "a", shape=(2,), dtype="f32")
    x2 = b.add(o.Input, "b", shape=(2,), dtype="f32")
    s = b.add(o.Add, "s", [x1, x2])
    b.add(o.Affine, "y0", [s], scale=0.5, bias=1.0)
    b.add(o.Output, "y", ["y0"])
    g = PassManager.from_string("shape-infer").run(b.build())
    with pytest.raises(RuntimeSimError, match="pass a dict"):
        interpret(g, torch.zeros(1, 2, 3))
    out = interpret(g, {"a": torch.ones(1, 2, 3), "b": torch.full((1, 2, 3), 3.0)})
    torch.testing.assert_close(out, torch.full((1, 2, 3), 3.0))
