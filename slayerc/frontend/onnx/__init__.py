"""ONNX in: a trained ANN becomes a sigma-delta network (SDNN) in the IR.

``slayerc.load("model.onnx")`` (the driver's ``.onnx`` importer) is :func:`load_onnx`:

* the input gets a delta encoder (``axon.delta``), after an input scale (``tensor.affine``,
  the netlist input layer's weight) when normalizing;
* ``Conv`` / ``Gemm`` / ``MatMul`` become synapses, ``AveragePool`` / ``GlobalAveragePool``
  sum pools (or depthwise convs) with weight ``1/k``, each followed by a ReLU neuron when its
  input is a ReLU output (the pool is then exact and is a netlist layer);
* ``Relu`` (and ``Clip(0, inf)``) becomes ``neuron.sigma_delta``: the sigma of its input
  messages plus its ``bias`` through relu, sent as changes of at least ``threshold``; a
  saturating ``Clip(0, m)`` is refused (Lava's sigma-delta has relu and identity only);
* biases and batch-norm shifts never travel as messages (a sigma would add them every
  step): they become the next neuron's bias; the batch norm's scale stays a ``norm.batch``
  (mean 0) that ``fold-batchnorm`` folds into the synapse before it, or, for a batch norm
  after a ReLU, folds into the next Conv/Gemm/MatMul's input columns (:mod:`.batchnorm`);
* residual ``Add`` / ``Concat`` become ``tensor.add`` / ``tensor.concat``; ``Flatten`` /
  ``Reshape`` the tensor ops; ``Identity`` / ``Dropout`` disappear; a final ``Softmax`` is
  dropped with a warning;
* every output gets a sigma decoder (``dendrite.sigma``); the last layer's bias becomes a
  constant neuron of the layer before (:mod:`slayerc.frontend.onnx.outbias`).

**Scales and thresholds.**  A loihi2 netlist's sigma-delta weights are 8-bit mantissas on a
fixed grid (1/64 or 2/64, no free exponent), so with ``normalize`` (default) the importer
chooses every layer's activation scale (ReLU networks are positively homogeneous; the next
layer undoes it):
the output synapse is scaled by ``2^k`` to the top of the mantissa and an output decoder
(``tensor.affine{scale=2^-k}`` after the sigma) gives the model's units back
(:func:`netlist_outputs` drops it for a netlist, whose output is then ``2^(18+k)`` times the
model's); hidden layers reach ``activation_max`` (4) divided by ``ramp`` per hidden weighted
layer before the output, or (``ramp="balanced"``) scales that give the input and every hidden
layer the same resolution; the choice is made on the calibration batch (:mod:`.scales`).  Each
layer's ``threshold`` is ``threshold`` (default 1/256) times its largest activation, on the
netlist's 1/64 grid.  ``threshold`` may be a dict from ONNX node (or input) name to an absolute
threshold, with ``"*"`` for the relative default.  ``calibration`` is a batch ``[N, *S]`` (or a
dict by input); without it a seeded uniform [0, 1) batch of 16 is used.

A model whose opset imports the ``slayerc`` domain was written by ``slayerc.save(g,
"x.onnx")``; it is read back exactly (:mod:`slayerc.backends.onnx`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch

from slayerc.errors import FrontendError, SlayerError
from slayerc.frontend.onnx import model as _model
from slayerc.frontend.onnx.convert import Converter, Options
from slayerc.frontend.onnx.outbias import add_output_biases
from slayerc.frontend.onnx.report import (
    SdnnReport,
    compile_report,
    netlist_outputs,
    sdnn_report,
    settle_steps,
)
from slayerc.frontend.onnx.rescale import fold_rescales
from slayerc.frontend.onnx.scales import best_ramp
from slayerc.ir.core import Graph
from slayerc.ir.shapes import infer_shapes
from slayerc.ir.verify import verify

__all__ = ["SdnnReport", "compile_report", "load_onnx", "netlist_outputs", "sdnn_report"]


def load_onnx(path: str | os.PathLike, *, input_shape: Sequence[int] | None = None,
              steps: int | None = None, threshold: float | Mapping[str, float] = 1.0 / 256,
              normalize: bool = True, activation_max: float = 4.0,
              calibration: Any = None, ramp: float | str | None = None,
              output_exp: int | None = None) -> Graph:
    """Read an ONNX file as a sigma-delta IR graph (see the module docstring).

    ``input_shape``: the per-sample input shape (``(C, H, W)``), needed when the file's is
    dynamic; ``steps`` is accepted for the CLI's sake (a static input settles within
    ``depth`` steps; the graph itself has no length).  ``ramp`` (a number or "balanced"; None:
    the best of :data:`~slayerc.frontend.onnx.scales.RAMPS` on the calibration batch) and
    ``output_exp`` (None: the top of the weight mantissa) choose the scales (:mod:`.scales`).
    """
    del steps
    onnx_model = _model.read(path)
    if any(o.domain == "slayerc" for o in onnx_model.opset_import):
        from slayerc.backends.onnx import from_model

        return from_model(onnx_model, os.fspath(path))
    _model.check(path, onnx_model)
    inits = _model.constants(onnx_model)
    dims = _model.input_dims(path, onnx_model, inits, input_shape)
    calib = _calibration(path, dims, calibration)
    th = dict(threshold) if isinstance(threshold, Mapping) else float(threshold)

    def convert(r: float | str, weights: tuple[float, ...] | None = None) -> Graph:
        opts = Options(th, bool(normalize), float(activation_max), output_exp, r, weights)
        return _convert(path, onnx_model, inits, opts, dims, calib)

    if ramp is not None or not normalize or len(calib) != 1:
        return convert(1.0 if ramp is None else ramp if ramp == "balanced" else float(ramp))
    first = convert(1.0)
    return best_ramp(convert, next(iter(calib.values())), settle_steps(first))[0]


def _convert(path: str | os.PathLike, onnx_model: Any, inits: dict[str, np.ndarray],
             opts: Options, dims: dict[str, tuple[int, ...]],
             calib: dict[str, torch.Tensor]) -> Graph:
    conv = Converter(path, onnx_model, inits, opts)
    conv.run(dims, calib)
    add_output_biases(conv.b, getattr(conv, "pending_out", {}), os.fspath(path))
    g = fold_rescales(conv.b.build())
    try:
        return verify(infer_shapes(g))
    except SlayerError as e:
        first = str(e).strip().splitlines()
        raise FrontendError(f"{os.fspath(path)}: the converted graph does not check: "
                            f"{' '.join(first[:3])}") from e


def _calibration(path: str | os.PathLike, dims: dict[str, tuple[int, ...]],
                 data: Any) -> dict[str, torch.Tensor]:
    """Per input a float batch ``[N, *S]`` for the scales (seeded uniform when not given)."""
    if data is None:
        gen = torch.Generator().manual_seed(0)
        return {k: torch.rand((16, *s), generator=gen) for k, s in dims.items()}
    if not isinstance(data, Mapping):
        data = {next(iter(dims)): data}
    out = {}
    for k, s in dims.items():
        if k not in data:
            raise FrontendError(f"{os.fspath(path)}: calibration data has no input '{k}'")
        arr = torch.as_tensor(np.asarray(data[k], np.float32))
        if tuple(arr.shape[1:]) != s:
            raise FrontendError(f"{os.fspath(path)}: calibration data for '{k}' has shape "
                                f"{list(arr.shape)}, expected [N, {', '.join(map(str, s))}]")
        out[k] = arr
    return out
