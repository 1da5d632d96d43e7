"""Reading an ONNX file for the importer: load, check, constants, attributes, input shapes.

Every problem is a one-line :class:`~slayerc.errors.FrontendError` that names the file and, where
there is one, the ONNX node (its name and ``op_type``) and says what to do.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from slayerc.errors import FrontendError


def node_label(node: Any) -> str:
    """``node 'conv1' (Conv)``: how messages name an ONNX node."""
    name = node.name or (node.output[0] if node.output else "?")
    return f"node '{name}' ({node.op_type})"


def fail(path: str | os.PathLike, node: Any | None, msg: str) -> FrontendError:
    """A :class:`FrontendError` naming the file and the node, on one line."""
    where = f"{os.fspath(path)}: " + (f"{node_label(node)}: " if node is not None else "")
    return FrontendError(where + " ".join(str(msg).split()))


def read(path: str | os.PathLike) -> Any:
    """Load and check an ONNX model (``onnx.checker``); one-line errors naming the file."""
    import onnx

    if not os.path.isfile(path):
        raise fail(path, None, "no such file")
    try:
        model = onnx.load(os.fspath(path))
    except Exception as e:  # protobuf decode errors have many classes
        raise fail(path, None, f"not an ONNX model ({type(e).__name__}: {e}); export it "
                   "with torch.onnx.export or another ONNX writer") from e
    return model


def check(path: str | os.PathLike, model: Any) -> None:
    """``onnx.checker.check_model``, its first line as the error."""
    import onnx

    try:
        onnx.checker.check_model(model)
    except Exception as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise fail(path, None, f"the ONNX checker rejects the model: {first}; re-export it "
                   "(a model from torch.onnx.export with opset >= 11 passes)") from e


def attributes(node: Any) -> dict[str, Any]:
    """The node's attributes as Python values (bytes decoded)."""
    import onnx

    out = {}
    for a in node.attribute:
        v = onnx.helper.get_attribute_value(a)
        out[a.name] = v.decode() if isinstance(v, bytes) else v
    return out


def constants(model: Any) -> dict[str, np.ndarray]:
    """Initializers by name (Constant nodes are read by the converter)."""
    from onnx import numpy_helper

    return {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}


def input_dims(path: str | os.PathLike, model: Any, inits: dict[str, np.ndarray],
               input_shape: Sequence[int] | None) -> dict[str, tuple[int, ...]]:
    """Per graph input (not an initializer): its shape without the batch axis.

    ``input_shape`` (``(C, H, W)`` or ``(F,)``) replaces the file's shape; without it every axis
    after the batch must be a fixed number.
    """
    graph_inputs = [i for i in model.graph.input if i.name not in inits]
    if not graph_inputs:
        raise fail(path, None, "the graph has no input")
    out: dict[str, tuple[int, ...]] = {}
    for i, vi in enumerate(graph_inputs):
        dims = [d.dim_value if d.HasField("dim_value") else None
                for d in vi.type.tensor_type.shape.dim]
        if input_shape is not None and i == 0:
            shape = tuple(int(d) for d in input_shape)
            if dims and len(dims) != len(shape) + 1:
                raise fail(path, None, f"input '{vi.name}' has {len(dims)} axes (batch first) "
                           f"but input_shape {list(shape)} gives {len(shape) + 1}")
            if any(d < 1 for d in shape):
                raise fail(path, None, f"input_shape {list(shape)} must be positive")
            out[vi.name] = shape
            continue
        if len(dims) < 2 or any(d is None or d < 1 for d in dims[1:]):
            shown = ["?" if d is None else d for d in dims]
            raise fail(path, None, f"input '{vi.name}' has the dynamic or batch-less shape "
                       f"{shown}; pass input_shape=(C, H, W) (slayerc compile --input-shape "
                       "C,H,W) for the axes after the batch")
        out[vi.name] = tuple(int(d) for d in dims[1:])
    return out


ADVICE = {
    "MaxPool": "a max of changes is not the change of the max, so a sigma-delta network "
               "cannot compute it; use AveragePool or a strided Conv",
    "GlobalMaxPool": "use GlobalAveragePool (a max cannot be computed from changes)",
    "Sigmoid": "Loihi 2's sigma-delta neurons (netx) run only relu; use Relu",
    "Tanh": "Loihi 2's sigma-delta neurons (netx) run only relu; use Relu",
    "LeakyRelu": "the sigma-delta neuron's activations are relu/identity; use Relu",
    "Elu": "use Relu", "Selu": "use Relu", "Gelu": "use Relu", "HardSigmoid": "use Relu",
    "Mul": "elementwise products of two signals are not linear in their changes; fold "
           "constant scales into the weights before export",
    "Div": "fold constant scales into the weights before export",
    "Sub": "fold constants into biases before export",
    "LSTM": "recurrent ANN cells have no sigma-delta equivalent",
}


def unsupported(op_type: str, supported: Iterable[str]) -> str:
    """The message for an operator slayerc does not convert."""
    why = ADVICE.get(op_type, "not supported")
    return (f"{why}. Supported: {', '.join(sorted(supported))}")
