"""The driver: flows that the CLI and the Python API share, above every layer of slayerc.

The runtime does not load files and backends do not simulate; a flow that does both lives here.
``slayerc compile`` and :func:`slayerc.compile` are both :func:`compile_model` (same defaults:
target ``loihi2``, its default pipeline); ``slayerc run`` and :func:`run_netlist` are one.

* :func:`compile` / :func:`compile_model`: trace a model, run the target's default pipeline (or
  the one given), optionally measure the quantization report, write the result;
* :func:`run_netlist`: run a netx netlist file through the fixed-point simulator, fed as
  ``netx_run.py`` feeds Lava;
* :func:`load` / :func:`save`: every file format by suffix: ``.sir`` and netlists (the backends'
  own), and the formats whose importer lives in the frontend or whose writer is a backend of its
  own (:data:`IMPORTERS`, :data:`EXPORTERS`: ``"module:function"`` entries, loaded on use);
* :func:`compile_file`: a graph file (any importer) through the target's default pipeline.

Netlists whose layer 0 is an ``input`` layer with a neuron take the data through that neuron
(after the input transform ``x·weight + bias``, 64 and 0 by default); all others take it through
the first synapse.  Both routes are explicit in the graph the hdf5 reader builds, so this module
only reads the file, picks the input shape and renames the recorded layers.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from slayerc.backends import files
from slayerc.errors import FrontendError, SlayerError
from slayerc.ir.core import Graph
from slayerc.ir.target import Target
from slayerc.passes.manager import PassManager
from slayerc.passes.pipelines import default_pipeline
from slayerc.runtime.agreement import QuantReport, latencies, quant_report
from slayerc.runtime.fixed.simulator import layer_nodes, simulate

TRAINING_BACKENDS = ("torch", "triton")

IMPORTERS: dict[str, str] = {
    ".nir": "slayerc.frontend.nir_import:load_nir",
    ".onnx": "slayerc.frontend.onnx:load_onnx",
}
"""File suffix -> ``"module:function"`` of an importer ``(path, **options) -> Graph`` (formats
beyond ``.sir`` and netlists, e.g. ``.onnx``/``.nir`` from :mod:`slayerc.frontend`)."""
EXPORTERS: dict[str, str] = {
    ".nir": "slayerc.backends.nir_export:save_nir",
    ".onnx": "slayerc.backends.onnx:write",
}
"""File suffix -> ``"module:function"`` of a writer ``(graph, path, **options) -> None``."""


def _entry(table: dict[str, str], path: str | os.PathLike) -> Callable | None:
    import importlib
    from pathlib import Path

    target = table.get(Path(path).suffix.lower())
    if target is None:
        return None
    module, _, name = target.partition(":")
    return getattr(importlib.import_module(module), name)


def suffixes() -> tuple[str, ...]:
    """Every file suffix :func:`load` reads."""
    return (*files.SUFFIXES, *IMPORTERS)


def load(path: str | os.PathLike, **options: Any) -> Graph:
    """Read a graph from any supported file, by suffix (``options`` go to its reader)."""
    reader = _entry(IMPORTERS, path)
    if reader is not None:
        return reader(path, **options)
    if os.fspath(path).lower().endswith(files.SUFFIXES):
        return files.load(path, **options)
    raise SlayerError(f"{path}: unknown file type; slayerc reads {', '.join(suffixes())}")


def save(g: Graph, path: str | os.PathLike, target: str = "loihi2", **options: Any) -> None:
    """Write ``g`` to any supported file, by suffix (netlists for ``target``)."""
    writer = _entry(EXPORTERS, path)
    if writer is not None:
        writer(g, path, **options)
        return
    files.save(g, path, target=target)


Progress = Callable[[int, int, str], None]
"""``progress(done, total, what)``: called as each compile stage starts (``done`` stages of
``total`` finished, ``what`` is starting) and once with ``done == total`` at the end."""


class _Stages:
    """Counts the stages of one compile (read or trace, each pass of ``pm``, the quantization
    report, the write) for a :data:`Progress` callback; ``pm`` tells it each pass."""

    def __init__(self, progress: Progress | None, pm: PassManager, extra: int) -> None:
        self.progress, self.done = progress, 0
        self.total = len(pm.resolve()) + extra  # a bad pipeline fails before a long read
        pm.on_pass = self.on_pass

    def start(self, what: str) -> None:
        """Stage ``what`` starts (the previous one has finished)."""
        if self.progress is not None:
            self.progress(self.done, self.total, what)
        self.done += 1

    def on_pass(self, index: int, count: int, spec: Any) -> None:
        self.start(f"pass {index + 1}/{count}: {spec.name}")

    def finish(self) -> None:
        """Every stage has finished."""
        self.done = self.total
        if self.progress is not None:
            self.progress(self.total, self.total, "done")


def _manager(target: str, pipeline: str | None, output: str | os.PathLike | None,
             time_passes: bool) -> PassManager:
    """The manager of the pipeline that runs: ``pipeline``, or the target's default (for a
    netlist when ``output`` is a ``.net``); ``""`` means shape inference only."""
    if pipeline is None:
        pipeline = default_pipeline(target, output is not None and str(output).endswith(".net"))
    return PassManager.from_string(pipeline or "shape-infer", time_passes=time_passes)


def compile_file(path: str | os.PathLike, *, target: str = "loihi2",
                 pipeline: str | None = None, output: str | os.PathLike | None = None,
                 time_passes: bool = False, progress: Progress | None = None,
                 **options: Any) -> Compiled:
    """Read a graph file (any importer, ``options`` to it), run ``pipeline`` (None: the
    target's default), and write ``output`` if given: ``slayerc compile net.onnx -o net.net``.
    ``progress`` is told each stage (see :data:`Progress`)."""
    pm = _manager(target, pipeline, output, time_passes)
    stages = _Stages(progress, pm, 1 + (output is not None))
    stages.start(f"reading {os.fspath(path)}")
    g = load(path, **options)
    out, lat = _run(pm, g)
    if output is not None:
        stages.start(f"writing {os.fspath(output)}")
        written = out
        if str(output).endswith(".net") and str(path).endswith(".onnx"):
            # a converted model's output decoders (2^-k after the sigma) stay on the host
            from slayerc.frontend.onnx import netlist_outputs

            written = netlist_outputs(out)[0]
        save(written, output, target=target)
    stages.finish()
    return Compiled(out, g, pm, lat)


def _run(pm: PassManager, g: Graph) -> tuple[Graph, dict[str, int]]:
    """Run ``pm`` on ``g``; return the graph and the latencies ``legalize-layers`` added."""
    out = pm.run(g)
    return out, latencies({k: v for r in pm.reports for k, v in r.values.items()})


@dataclass
class Compiled:
    """What :func:`compile_model` made: the compiled and the traced graph, the pass manager (its
    ``reports`` and timings), per node the steps ``legalize-layers`` added, and the quantization
    report when asked for."""

    graph: Graph
    traced: Graph
    passes: PassManager
    latency: dict[str, int] = field(default_factory=dict)
    quant: QuantReport | None = None

    @property
    def output_latency(self) -> int:
        """Steps the (single) output comes later than the model's (0 with several outputs)."""
        outs = self.graph.outputs
        return self.latency.get(outs[0].name, 0) if len(outs) == 1 else 0


def compile_model(model: torch.nn.Module, example_input: torch.Tensor, *,
                  target: str = "loihi2", pipeline: str | None = None,
                  output: str | os.PathLike | None = None, quant: bool = False,
                  time_passes: bool = False, progress: Progress | None = None) -> Compiled:
    """Trace ``model`` on ``example_input`` (``[N, *S, T]``), run ``pipeline`` (None: the
    target's default, for a netlist when ``output`` is a ``.net``; ``""``: none), measure the
    quantization report (``quant``, on a seeded random spike input of the example's shape) and
    write ``output`` (``.sir`` or ``.net``) if given.  ``progress`` is told each stage (see
    :data:`Progress`)."""
    from slayerc.frontend.trace import trace

    if not isinstance(example_input, torch.Tensor) or example_input.dim() < 3:
        raise FrontendError("the example input must be a tensor [N, C(, H, W), T] (batch first, "
                            f"time last); got {getattr(example_input, 'shape', example_input)!r}")
    pm = _manager(target, pipeline, output, time_passes)
    stages = _Stages(progress, pm, 1 + bool(quant) + (output is not None))
    stages.start("tracing the model")
    traced = trace(model, example_input)
    g, lat = _run(pm, traced)
    report = None
    if quant:
        stages.start("measuring the quantization report")
        gen = torch.Generator().manual_seed(0)
        x = (torch.rand(example_input.shape, generator=gen) < 0.1).float()
        values = {k: v for r in pm.reports if r.pass_name == "legalize-quant"
                  for k, v in r.values.items()}
        report = quant_report(traced, g, x, values, lat, pm.inputs.get("legalize-quant"),
                              target=target)
    if output is not None:
        stages.start(f"writing {os.fspath(output)}")
        files.save(g, output, target=target)
    stages.finish()
    return Compiled(g, traced, pm, lat, report)


def compile(model: torch.nn.Module, example_input: torch.Tensor, pipeline: str | None = None,
            backend: str = "ir", *, target: str = "loihi2",
            output: str | os.PathLike | None = None) -> Graph | torch.nn.Module:
    """``slayerc.compile``: the model compiled for ``backend``.

    * ``"ir"`` (default): the IR graph after ``pipeline`` (None: the default pipeline of
      ``target``, as ``slayerc compile``; ``""``: the traced graph only), written to ``output``
      if given;
    * ``"torch"`` / ``"triton"``: a trainable module of the traced graph
      (:func:`slayerc.frontend.compile.compile`, through :func:`slayerc.to_module`).
    """
    if backend in TRAINING_BACKENDS:
        from slayerc.frontend.compile import compile as training

        return training(model, example_input, pipeline or "", backend)
    if backend != "ir":
        raise FrontendError(f"unknown backend {backend!r}; available: 'ir', "
                            f"{', '.join(map(repr, TRAINING_BACKENDS))}")
    return compile_model(model, example_input, target=target, pipeline=pipeline,
                         output=output).graph


def load_netlist(path: str | os.PathLike, input_shape: tuple[int, ...] | None = None) -> Graph:
    """Read a netlist with the hdf5 backend."""
    options = {"input_shape": tuple(input_shape)} if input_shape else {}
    return files.load(path, **options)


def _load_for(path: str | os.PathLike, x: Any, input_shape: tuple[int, ...] | None) -> Graph:
    """Read the netlist; a conv netlist without input layer gets its input shape from ``x``."""
    if input_shape:
        return load_netlist(path, input_shape)
    try:
        return load_netlist(path)
    except SlayerError:
        guess = _shape_from(x)
        if guess is None:
            raise
        return load_netlist(path, guess)


def _shape_from(x: Any) -> tuple[int, ...] | None:
    """(C, H, W) of a conv input ``[C,H,W,T]`` / ``[N,C,H,W,T]``; None for dense inputs."""
    ndim = np.ndim(x)
    return tuple(int(d) for d in np.shape(x)[-4:-1]) if ndim >= 4 else None


def run_netlist(path: str | os.PathLike, x: Any, steps: int | None = None,
                all_layers: bool = False, input_shape: tuple[int, ...] | None = None,
                target: str | Target | None = "loihi2"
                ) -> np.ndarray | tuple[np.ndarray, dict[str, np.ndarray]]:
    """Simulate the netlist at ``path`` on ``x`` (slayer layout, optionally batched).

    Returns the int32 output ``[N?, out..., T]``; with ``all_layers`` also a dict ``layerK`` →
    output of the K-th netx layer (flatten not counted), as ``netx_run.py --all-layers`` records.
    ``input_shape`` (C, H, W) is needed only for a conv netlist without input layer, and is taken
    from ``x`` when not given.  Graded messages must fit ``target``'s message bits (see
    :func:`~slayerc.runtime.fixed.simulator.simulate`): ``"loihi2"`` (16 bits, what netx
    configures), ``"slayerc"`` (24) or None (no check).
    """
    g = _load_for(path, x, input_shape)
    layers = layer_nodes(g)
    res = simulate(g, x, steps=steps, record=layers if all_layers else None, target=target)
    out = res[g.outputs[0].name]
    if not all_layers:
        return out
    return out, {f"layer{k}": res[name] for k, name in enumerate(layers)}


# ------------------------------------------------------------------------- streamed runs


def check_outputs(outputs: list[str | os.PathLike], inputs: list[str | os.PathLike]) -> None:
    """Refuse an output path that is one of the inputs or another output of the same command
    (through symlinks and hard links too): writing it would lose data or keep only one."""
    def same(a: str | os.PathLike, b: str | os.PathLike) -> bool:
        if os.path.realpath(a) == os.path.realpath(b):
            return True
        try:
            return os.path.samefile(a, b)
        except OSError:
            return False
    for i, out in enumerate(outputs):
        for other in inputs:
            if same(out, other):
                raise SlayerError(f"{out}: is also an input of this command ({other}); write "
                                  "the output to another path")
        for other in outputs[:i]:
            if same(out, other):
                raise SlayerError(f"{out}: given as two outputs of one command (also "
                                  f"{other}); give each output its own path")


def run_netlist_to(path: str | os.PathLike, x: Any, output: str | os.PathLike,
                   all_layers: str | os.PathLike | None = None, steps: int | None = None,
                   input_shape: tuple[int, ...] | None = None,
                   target: str | Target | None = "loihi2",
                   progress: Callable[[int, int], None] | None = None) -> tuple[tuple, str, int]:
    """:func:`run_netlist`, streamed into files: ``slayerc run``.

    The simulation runs in chunks of steps (:meth:`Simulator.stream`: state carried, memory
    independent of the number of steps); each chunk is appended to the output ``.npy`` (and,
    with ``all_layers``, to one temporary ``.npy`` per layer, zipped into the ``.npz`` at the
    end) as it is made.  The arrays are written in Fortran order (time-major bytes, so chunks
    append); ``np.load`` returns the same values as :func:`run_netlist`.  Both files are put in
    place together, only when the whole run succeeded (``atomic_write_many``).
    ``progress(done, total)`` is called after each chunk.  Returns the output's shape, dtype
    name and nonzero count.
    """
    from slayerc.ir.fileio import atomic_write_many
    from slayerc.runtime.fixed.simulator import Simulator

    g = _load_for(path, x, input_shape)
    layers = layer_nodes(g) if all_layers is not None else []
    stream = Simulator(g, target).stream(x, steps, record=layers)
    out_name = g.outputs[0].name
    _check_disk([(output, [out_name])] + ([(all_layers, layers)] if layers else []), stream)
    side = _SideFiles(all_layers, layers) if layers else None
    summary: dict[str, Any] = {}

    def write_main(tmp: str) -> None:
        with open(tmp, "wb") as f:
            files_ = {out_name: f, **(side.open() if side else {})}
            _write_stream(stream, files_, summary, progress)
    jobs: list[tuple[str | os.PathLike, Callable[[str], None]]] = [(output, write_main)]
    if side is not None:
        jobs.append((all_layers, side.zip_into))  # type: ignore[arg-type]
    try:
        atomic_write_many(jobs)
    finally:
        if side is not None:
            side.remove()
    return summary["shape"], summary["dtype"], summary["nonzero"]


def _check_disk(outs: list[tuple[Any, list[str]]], stream: Any) -> None:
    """Refuse outputs that cannot fit on their file system, before running (an output to a
    device or FIFO is not checked)."""
    import shutil
    import stat

    for path, names in outs:
        try:
            if not stat.S_ISREG(os.stat(path).st_mode):
                continue
        except FileNotFoundError:
            pass
        except OSError:
            continue
        elems = sum(int(np.prod(stream.shapes[m], dtype=np.int64)) for m in names)
        need = stream.steps * stream.n * elems * 4 * (2 if len(names) > 1 else 1)
        folder = os.path.dirname(os.path.realpath(path)) or "."
        try:
            free = shutil.disk_usage(folder).free
        except OSError:
            continue
        if need > free:
            raise SlayerError(f"{path}: {stream.steps} steps of {stream.n} sample(s) of "
                              f"{', '.join('%' + m for m in names)} need about {_gib(need)} on "
                              f"disk, but {folder} has {_gib(free)} free; run fewer steps or "
                              "record fewer layers")


def _gib(nbytes: float) -> str:
    return f"{nbytes / (1 << 30):.3g} GiB" if nbytes >= 1 << 30 else \
        f"{nbytes / (1 << 20):.3g} MiB"


def _npy_header(shape: tuple[int, ...], dtype: np.dtype) -> bytes:
    """The ``.npy`` header of a Fortran-order array (time-major bytes, appendable per chunk)."""
    import io

    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": np.lib.format.dtype_to_descr(dtype),
                                               "fortran_order": True, "shape": shape})
    return buf.getvalue()


def _write_stream(stream: Any, files_: dict[str, Any], summary: dict[str, Any],
                  progress: Callable[[int, int], None] | None) -> None:
    """Run the stream, appending each chunk to its file (headers before the first chunk)."""
    done, nonzero, first = 0, 0, True
    out_name = next(iter(files_))
    for chunk in stream:
        for name, f in files_.items():
            arr = chunk[name]
            if first:
                per = stream.shapes[name]
                shape = ((stream.n,) if stream.batched else ()) + per + (stream.steps,)
                f.write(_npy_header(shape, arr.dtype))
                if name == out_name:
                    summary.update(shape=shape, dtype=arr.dtype.name)
            # [t, N, *shape] -> C-order [t, *reversed(shape), N]: Fortran order of [N, *shape, T]
            f.write(np.ascontiguousarray(arr.transpose(0, *range(arr.ndim - 1, 0, -1))).data)
        nonzero += int(np.count_nonzero(chunk[out_name]))
        first = False
        done += len(chunk[out_name])
        if progress is not None:
            progress(done, stream.steps)
    summary["nonzero"] = nonzero


class _SideFiles:
    """The per-layer temporary ``.npy`` files of a streamed ``--all-layers`` recording, next to
    the ``.npz`` they are zipped into (deterministic bytes: fixed member dates)."""

    def __init__(self, npz: str | os.PathLike, layers: list[str]):
        import tempfile

        folder = os.path.dirname(os.path.realpath(npz)) or "."
        try:
            self.dir = tempfile.mkdtemp(prefix=".slayerc-layers.", dir=folder)
        except OSError:
            self.dir = tempfile.mkdtemp(prefix="slayerc-layers.")
        self.paths = {m: os.path.join(self.dir, f"layer{k}.npy") for k, m in enumerate(layers)}
        self.handles: list[Any] = []

    def open(self) -> dict[str, Any]:
        """Open every layer file for writing (closed by :meth:`zip_into` / :meth:`remove`)."""
        out = {m: open(p, "wb") for m, p in self.paths.items()}  # noqa: SIM115
        self.handles = list(out.values())
        return out

    def close(self) -> None:
        """Close the layer files."""
        for f in self.handles:
            f.close()
        self.handles = []

    def zip_into(self, tmp: str) -> None:
        """Write the ``.npz`` (deflated members ``layerK.npy``) at ``tmp``."""
        import shutil
        import zipfile

        self.close()
        with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as zf:
            for path in self.paths.values():
                info = zipfile.ZipInfo(os.path.basename(path), date_time=(1980, 1, 1, 0, 0, 0))
                info.compress_type = zipfile.ZIP_DEFLATED
                info.external_attr = 0o644 << 16
                with open(path, "rb") as src, zf.open(info, "w", force_zip64=True) as dst:
                    shutil.copyfileobj(src, dst, 1 << 20)

    def remove(self) -> None:
        """Delete the temporary folder."""
        import shutil

        self.close()
        shutil.rmtree(self.dir, ignore_errors=True)
