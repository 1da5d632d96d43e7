"""ONNX out (issue 14): IR -> ONNX (standard ops + slayerc domain) -> IR is exact."""

from __future__ import annotations

import numpy as np
import onnx
from hypothesis import given, settings
from hypothesis import strategies as st
from onnx_models import export

import slayerc
from slayerc.backends.onnx import DOMAIN, from_model, to_model
from slayerc.ir import ops
from slayerc.ir.core import GraphBuilder, Loc
from slayerc.ir.shapes import infer_shapes

floats = st.floats(0.0, 2.0, allow_nan=False, width=64)


@st.composite
def graphs(draw):
    """Random SDNN-style graphs from the ops the ONNX importer produces."""
    b = GraphBuilder(name=draw(st.sampled_from(["main", "net"])))
    n = draw(st.integers(1, 6))
    x = b.add(ops.Input, "x", shape=(n,), dtype="f32", loc=Loc("x", "m.onnx"))
    cur = b.add(ops.Delta, "x_delta", [x], threshold=draw(floats))
    branches = [cur]
    for i in range(draw(st.integers(1, 4))):
        m = draw(st.integers(1, 6))
        w = np.asarray(draw(st.lists(floats, min_size=m * n, max_size=m * n)), np.float32)
        src = b.add(ops.Shift, f"h{i}", [cur], steps=1)
        syn = b.add(ops.Dense, f"fc{i}", [src], weight=b.param(f"fc{i}.weight",
                                                                  w.reshape(m, n)),
                    quant_scale=draw(st.sampled_from([None, 64])),
                    loc=Loc(f"/fc{i}/Gemm", "m.onnx", draw(st.sampled_from([None, 3]))))
        bias = draw(st.sampled_from([None, 0.5]))
        if bias is not None:
            bias = b.param(f"n{i}.bias", np.full(m, bias, np.float32))
        cur = b.add(ops.SigmaDelta, f"n{i}", [syn], threshold=draw(floats), bias=bias,
                    cum_error=draw(st.booleans()))
        n = m
        branches.append(cur)
    same = [br for br in branches if b.nodes[br].OP == "neuron.sigma_delta"]
    if draw(st.booleans()) and len(same) > 1:
        cur = b.add(ops.Concat, "cat", same[-2:], axis=0)
    if draw(st.booleans()):
        cur = b.add(ops.Affine, "aff", [cur], scale=draw(floats), bias=0.0)
    sig = b.add(ops.Sigma, "y_sigma", [cur])
    b.add(ops.Output, "y", [sig])
    g = b.build()
    return infer_shapes(g) if draw(st.booleans()) else g


@settings(max_examples=40, deadline=None)
@given(graphs())
def test_ir_onnx_ir_is_exact(g):
    model = to_model(g)
    assert any(o.domain == DOMAIN for o in model.opset_import)
    onnx.checker.check_model(model)
    back = from_model(onnx.load_from_string(model.SerializeToString()))
    assert back == g
    assert [n.loc for n in back] == [n.loc for n in g]


def test_imported_models_round_trip_through_files(tmp_path):
    for kind in ("cnn", "residual"):
        _, _, path = export(kind, tmp_path)
        g = slayerc.load(path)
        out = tmp_path / f"{kind}_ir.onnx"
        slayerc.save(g, out)
        model = onnx.load(str(out))
        onnx.checker.check_model(model)
        types = {n.op_type for n in model.graph.node}
        assert {"Conv", "neuron.sigma_delta", "axon.delta"} <= types
        assert slayerc.load(out) == g
