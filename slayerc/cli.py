"""The ``slayerc`` command line: parses arguments and calls the library, nothing more.

Diagnostics go to stderr as one ``slayerc: error: ...`` message (exit 1); ``--traceback`` shows
the Python traceback as well.  Usage errors exit 2.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

import slayerc
from slayerc.errors import SlayerError

SPLIT_MARKER = "# -----"


# ------------------------------------------------------------------------------------- commands


def cmd_passes(args: argparse.Namespace) -> int:
    """List every registered pass with a one-line description."""
    from slayerc.passes import REGISTRY
    from slayerc.passes.manager import load_pass

    width = max(len(n) for n in REGISTRY)
    for name in sorted(REGISTRY):
        mod = load_pass(name)
        summary = getattr(mod, "SUMMARY", (mod.__doc__ or "").strip().splitlines()[0])
        print(f"{name:<{width}}  {summary}")
    return 0


def cmd_inspect(args: argparse.Namespace) -> int:
    """Print the IR text of a file and a per-layer table."""
    from slayerc.driver import load
    from slayerc.ir.printer import print_graph
    from slayerc.ir.summary import layer_table
    from slayerc.passes.manager import PassManager

    g = load(args.file, **_reader_options(args))
    if "shapes" not in g.facts:
        g = PassManager.from_string("shape-infer").run(g)
    sys.stdout.write(print_graph(g, inline_limit=args.inline_limit))
    print()
    print(layer_table(g))
    if args.graph:
        from slayerc.plot import graph_picture

        boxes = graph_picture(g, args.graph)
        print(f"wrote {args.graph}: the layer graph ({boxes} layers)", file=sys.stderr)
    return 0


def cmd_opt(args: argparse.Namespace) -> int:
    """Run a pass pipeline over a file and write or print the result."""
    from slayerc.driver import load, save
    from slayerc.ir.parser import parse
    from slayerc.ir.printer import print_graph

    if args.split_input_file:
        text = Path(args.input).read_text()
        chunks, offset = [], 0
        for chunk in text.split(SPLIT_MARKER):
            chunks.append("\n" * offset + chunk)  # keep file line numbers in diagnostics
            offset += chunk.count("\n")
        results = [_opt_one(args, lambda c=c: parse(c, filename=args.input)) for c in chunks]
        print(f"\n{SPLIT_MARKER}\n".join(r.rstrip("\n") for r in results))
        return 0
    options = {**_reader_options(args), **_nir_options(args, args.input)}
    out = _opt_one(args, lambda: load(args.input, **options), keep_graph=True)
    if isinstance(out, str):  # --verify-diagnostics matched an error
        print(out)
        return 0
    if args.output:
        _check_netlist_ready(out, args.output, args.target, args.passes)
        save(out, args.output, target=args.target)
    else:
        sys.stdout.write(print_graph(out, inline_limit=args.inline_limit))
    return 0


NETLIST_FACTS = ("delays-legal", "quant-legal")
"""What a graph must have been made before ``opt`` writes it as a netlist for a target."""


def _check_netlist_ready(g, output: str, target: str, passes: str) -> None:
    """``opt -o X.net`` refuses a graph not legalized for the target (values off its grid,
    delays it cannot hold) instead of writing it or legalizing silently: it says what to run."""
    from slayerc.passes.pipelines import default_pipeline

    missing = [f for f in NETLIST_FACTS if f not in g.facts]
    if not str(output).lower().endswith(".net") or not missing:
        return
    pipeline = default_pipeline(target, True)
    raise SlayerError(f"{output}: the graph was not legalized for target {target} (it lacks "
                      f"{', '.join(missing)}), so a netlist could hold values or delays the "
                      f"target cannot; add the target's legalization to the pipeline, e.g. "
                      f"-p '{passes + ',' if passes else ''}{pipeline}', or write the netlist "
                      f"with `slayerc compile GRAPH -o {output} --target {target}` (it runs "
                      "that pipeline)")


def _opt_one(args: argparse.Namespace, read: Callable, keep_graph: bool = False):
    """Run the pipeline on one input; with --verify-diagnostics return the error text."""
    from slayerc.ir.printer import print_graph
    from slayerc.passes.manager import PassManager

    pm = PassManager.from_string(args.passes or "", verify_each=not args.no_verify,
                                 print_after_all=args.print_ir_after_all,
                                 print_after=frozenset(args.print_ir_after or ()),
                                 time_passes=args.time_passes,
                                 printer=lambda s: print(s, file=sys.stderr))
    bar = _progress(keep_graph and not args.quiet and sys.stderr.isatty())
    if bar is not None:
        count = len(pm.pipeline)
        pm.on_pass = lambda i, n, spec: bar(i, n, f"pass {i + 1}/{n}: {spec.name}")
    try:
        g = pm.run(read())
        if bar is not None and count:
            bar(count, count, "done")
    except SlayerError as e:
        if args.verify_diagnostics:
            return f"error: {e}"
        raise
    if args.verify_diagnostics:
        raise SlayerError("--verify-diagnostics: expected an error, but the pipeline succeeded")
    _print_reports(pm, args.report)
    if args.time_passes:
        print(pm.timing_report(), file=sys.stderr)
    if keep_graph and args.report_json:
        from slayerc import report

        report.write(args.report_json, "opt", report.graph_report(g, pm), inputs=[args.input],
                     outputs=[args.output] if args.output else [], pipeline=args.passes)
    return g if keep_graph else print_graph(g, inline_limit=args.inline_limit)


def cmd_compile(args: argparse.Namespace) -> int:
    """Trace a model file, run a pipeline, write a .sir or .net and print a summary."""
    from slayerc.driver import compile_file, compile_model
    from slayerc.frontend.loader import clipped_weights, load_model, load_weights, user_code
    from slayerc.ir.summary import layer_table

    steps = _progress(not args.quiet and sys.stderr.isatty())
    _check_compile_extras(args)
    nir_options = _nir_options(args, args.model)
    if not _is_model_spec(args.model):  # a graph file: .sir, .net or an imported format
        if args.weights or args.quant_report:
            raise SlayerError("--weights and --quant-report apply to MODEL.py:NAME inputs")
        options = {"input_shape": args.input_shape} if args.input_shape else {}
        options.update(nir_options)
        options.update(_onnx_options(args, args.model))
        done = compile_file(args.model, target=args.target, pipeline=args.passes,
                            output=args.output, time_passes=args.time_passes, progress=steps,
                            **options)
    else:
        if args.input_shape is None or args.steps is None:
            raise SlayerError("compiling MODEL.py:NAME needs --input-shape and --steps")
        example = _example_input(args.input_shape, args.steps)
        model = load_model(args.model)
        if args.weights:
            load_weights(model, args.weights)
        with user_code(args.model.rpartition(":")[0], "building the model"):
            model.eval()
        for text in clipped_weights(model):
            print(f"slayerc: warning: {text}", file=sys.stderr)
        with user_code(args.model.rpartition(":")[0], "tracing it (its forward)"):
            done = compile_model(model, example, target=args.target, pipeline=args.passes,
                                 output=args.output, quant=args.quant_report,
                                 time_passes=args.time_passes, progress=steps)
    _print_reports(done.passes, args.report)
    if done.quant is not None:
        print(done.quant.table(), file=sys.stderr)
    _compile_extras(args, done)
    if not args.quiet:
        print(layer_table(done.graph))
        _onnx_report(args, done)
        lat = done.output_latency
        if lat:
            print(f"output latency: {lat:+d} steps (the compiled output at step t{lat:+d} is the "
                  "model's at step t)")
    if args.time_passes:
        print(done.passes.timing_report(), file=sys.stderr)
    return 0


def _check_compile_extras(args: argparse.Namespace) -> None:
    """Refuse ``--plot`` without ``--quant-report`` before compiling anything."""
    if args.plot and not args.quant_report:
        raise SlayerError("--plot draws the quantization report: add --quant-report")


def _compile_extras(args: argparse.Namespace, done) -> None:
    """``--plot`` (the quantization chart) and ``--report-json`` of ``compile``."""
    if args.plot:
        from slayerc.plot import quant_picture

        quant_picture(done.quant, args.plot)
        print(f"wrote {args.plot}: the quantization report", file=sys.stderr)
    if args.report_json:
        from slayerc import report

        report.write(args.report_json, "compile", report.compiled(done), inputs=[args.model],
                     outputs=[args.output], target=args.target)


def _is_model_spec(text: str) -> bool:
    """``MODEL.py:NAME`` (a model to trace), as opposed to a graph file to read."""
    return text.endswith(".py") or text.rpartition(":")[0].endswith(".py")


def _example_input(shape: tuple[int, ...], steps: int):
    """The all-zero example input ``[1, *shape, steps]`` to trace with, if it fits in memory."""
    import torch

    from slayerc.ir.fileio import memory_limit

    if steps < 1:
        raise SlayerError(f"--steps must be at least 1, got {steps}")
    count = int(np.prod(shape, dtype=object)) * steps
    # tracing keeps every node's value for the example: count a few copies per element
    need, limit = count * 4 * 8, memory_limit()
    if need > limit:
        raise SlayerError(f"an example input of {list(shape)} x {steps} steps ({count} values) "
                          f"would need about {need / 2**30:.3g} GiB to trace (more than the "
                          f"{limit / 2**30:.3g} GiB allowed); trace with fewer --steps (the "
                          "compiled network runs any number of steps) or a smaller "
                          "--input-shape")
    return torch.zeros((1, *shape, steps))


def _print_reports(pm, everything: bool) -> None:
    """Pass warnings (always) and notes (with ``--report``) to stderr."""
    for report in pm.reports:
        for line in report.lines(warnings_only=not everything):
            print(f"slayerc: {line}", file=sys.stderr)


_BARS: list = []
"""The progress bars this command drew; :func:`main` closes them before it prints an error, so
the message does not land on a half-drawn bar."""


def _close_bars() -> None:
    while _BARS:
        _BARS.pop().close()


def _progress(show: bool) -> Callable[[int, int, str], None] | None:
    """A progress bar over the compile stages (read or trace, each pass, write) on stderr, for
    ``driver``'s ``progress(done, total, what)``; None (no bar) when not ``show``."""
    if not show:
        return None
    from tqdm import tqdm

    state: dict = {}

    def update(done: int, total: int, what: str) -> None:
        bar = state.get("bar")
        if bar is None:
            bar = state["bar"] = tqdm(total=total, file=sys.stderr, leave=False,
                                      bar_format="{desc:<40.40}{bar:20}{n}/{total} {elapsed}")
            _BARS.append(bar)
        bar.set_description_str(what, refresh=False)
        bar.n = done
        bar.refresh()  # stages are few and may be long: show each as it starts
        if done >= total:
            bar.close()
    return update


def cmd_run(args: argparse.Namespace) -> int:
    """Simulate a netlist bit-accurately in fixed point on an .npy input, streamed to files."""
    from slayerc.driver import check_outputs, run_netlist_to

    outputs = [args.output] + ([args.all_layers] if args.all_layers else [])
    check_outputs(outputs, [args.netlist, args.input])
    x = _load_npy(args.input)
    bar = _step_bar(not args.quiet and sys.stderr.isatty())
    started = time.perf_counter()
    try:
        shape, dtype, nonzero = run_netlist_to(
            args.netlist, x, args.output, args.all_layers, steps=args.steps,
            input_shape=args.input_shape, target=args.target, progress=bar)
    except MemoryError:
        raise SlayerError(f"ran out of memory simulating {args.netlist} (one chunk of steps of "
                          "every sample, the network's widest layer and the recorded layers "
                          "must fit): give fewer samples per input file or record fewer "
                          "layers; nothing was written") from None
    finally:
        bar(-1, 0)
    seconds = time.perf_counter() - started
    if args.plot:
        from slayerc.report import run_raster

        panels = run_raster(args.netlist, x, args.plot, args.layers, steps=args.steps,
                            input_shape=args.input_shape, target=args.target)
        print(f"wrote {args.plot}: spike rasters of sample 0 ({panels} panels)", file=sys.stderr)
    if args.report_json:
        from slayerc import report

        report.write(args.report_json, "run", {"run": {
            "shape": list(shape), "dtype": dtype, "nonzero": nonzero, "steps": shape[-1],
            "seconds": seconds}}, inputs=[args.netlist, args.input],
            outputs=[args.output] + ([args.all_layers] if args.all_layers else []),
            target=args.target)
    if not args.quiet:
        print(f"wrote {args.output}: {dtype}[{', '.join(map(str, shape))}], {nonzero} nonzero "
              f"outputs (spikes or messages) over {shape[-1]} steps")
    return 0


def _step_bar(show: bool) -> Callable[[int, int], None]:
    """``progress(done, total)`` drawing a tqdm bar of simulated steps on stderr (a TTY);
    ``progress(-1, 0)`` closes it."""
    if not show:
        return lambda done, total: None
    from tqdm import tqdm

    state: dict = {}

    def update(done: int, total: int) -> None:
        bar = state.get("bar")
        if done < 0:
            if bar is not None:
                bar.close()
            return
        if bar is None:
            bar = state["bar"] = tqdm(total=total, file=sys.stderr, unit="step",
                                      unit_scale=True, leave=False)
            _BARS.append(bar)
        bar.update(done - bar.n)
    return update


def _load_npy(path: str) -> np.ndarray:
    """The array of a ``.npy`` file, memory-mapped (read as the simulation streams).

    Only a regular file is opened (a FIFO or device would block or never end), and the header's
    shape and dtype must account for exactly the bytes the file holds, so a header claiming
    10^12 elements is an error, not an allocation.
    """
    from slayerc.ir.fileio import open_regular

    with open_regular(path, "input array (.npy)", SlayerError) as f:
        size = os.fstat(f.fileno()).st_size
        try:
            version = np.lib.format.read_magic(f)
            read = np.lib.format.read_array_header_1_0 if version == (1, 0) else \
                np.lib.format.read_array_header_2_0
            shape, fortran, dtype = read(f)
        except (ValueError, OSError, SyntaxError) as e:
            raise SlayerError(f"{path}: not a .npy array file ({str(e).split('.')[0]}); save "
                              "it with numpy.save") from None
        if dtype.hasobject or dtype.kind not in "biuf":
            raise SlayerError(f"{path}: holds {dtype} values; the input must be a numeric "
                              "array (spikes or values, float or int)")
        offset = f.tell()
        count = int(np.prod(shape, dtype=object))
        need = count * dtype.itemsize
        if need != size - offset:
            raise SlayerError(f"{path}: the header declares {list(shape)} {dtype} values "
                              f"({need} bytes), but the file holds {size - offset} bytes of "
                              "data; the file is truncated or not written by numpy.save")
        if count == 0:
            return np.zeros(shape, dtype)
        return np.memmap(f, dtype=dtype, mode="r", offset=offset, shape=shape,
                         order="F" if fortran else "C")


def _reader_options(args: argparse.Namespace) -> dict:
    shape = getattr(args, "input_shape", None)
    return {"input_shape": shape} if shape else {}


def _nir_arguments(s: argparse.ArgumentParser) -> None:
    """``--dt`` and ``--convention``: how a .nir input is discretised (the NIR importer's)."""
    s.add_argument("--dt", type=_seconds, metavar="SECONDS",
                   help="NIR inputs: the time step that discretises the neurons (default: the "
                        "file's metadata dt, else 1e-4, snnTorch's)")
    s.add_argument("--convention", choices=("snntorch", "euler", "norse", "norse-export"),
                   help="NIR inputs: snntorch/euler (NIR's equations, forward Euler; default), "
                        "norse (the synaptic current takes its input undecayed) or "
                        "norse-export (a file from Norse 1.1's to_nir: tau = dt/tau_inv, "
                        "dt 1e-3 unless --dt)")


def _nir_options(args: argparse.Namespace, path: str) -> dict:
    """The importer keywords of ``--dt``/``--convention`` (a usage error for other inputs)."""
    opts = {k: v for k in ("dt", "convention") if (v := getattr(args, k, None)) is not None}
    if opts and not str(path).lower().endswith(".nir"):
        raise SlayerError(f"--{'/--'.join(opts)} appl{'ies' if len(opts) == 1 else 'y'} only "
                          f"to .nir inputs, not {path}")
    return opts


def _onnx_report(args: argparse.Namespace, done) -> None:
    """For an .onnx input: the SDNN report (threshold, message rate, quantization error per
    layer; the netlist output's decoding), see docs/onnx.md."""
    if str(args.model).lower().endswith(".onnx"):
        from slayerc.frontend.onnx import compile_report

        print(compile_report(done.traced, done.graph, args.steps).table())


def _onnx_options(args: argparse.Namespace, path: str) -> dict:
    """The importer keyword of ``--threshold`` (a usage error for inputs other than .onnx)."""
    if getattr(args, "threshold", None) is None:
        return {}
    if not str(path).lower().endswith(".onnx"):
        raise SlayerError(f"--threshold applies only to .onnx inputs, not {path}")
    return {"threshold": args.threshold}


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected seconds, e.g. 1e-3, got {text!r}") from None
    if not (value > 0 and value < float("inf")):
        raise argparse.ArgumentTypeError(f"the time step must be positive, got {text!r}")
    return value


def _shape(text: str) -> tuple[int, ...]:
    try:
        dims = tuple(int(d) for d in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected C or C,H,W integers, got {text!r}") from None
    if not dims or min(dims) < 1:
        raise argparse.ArgumentTypeError(f"dimensions must be positive, got {text!r}")
    return dims


# --------------------------------------------------------------------------------------- parser


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``slayerc``."""
    p = argparse.ArgumentParser(prog="slayerc", description="A compiler toolchain for spiking "
                                "neural networks: SLAYER models -> SNN IR -> netx netlists.")
    p.add_argument("--version", action="version", version=f"slayerc {slayerc.__version__}")
    p.add_argument("--traceback", action="store_true", help="show the Python traceback of errors")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    s = sub.add_parser("passes", help="list the passes with a one-line description")
    s.set_defaults(func=cmd_passes)

    s = sub.add_parser("inspect", help="print a graph's IR and a per-layer table")
    s.add_argument("file", help="a .sir file or an hdf5 netlist (.net)")
    s.add_argument("--input-shape", type=_shape, help="C,H,W for conv netlists without input")
    s.add_argument("--inline-limit", type=int, default=16, metavar="N",
                   help="print parameters with at most N elements inline (default 16)")
    s.add_argument("--graph", metavar="NET.svg|NET.png",
                   help="also draw the layer graph (needs matplotlib: slayerc[plot])")
    s.set_defaults(func=cmd_inspect)

    s = sub.add_parser("opt", help="run a pass pipeline over a graph")
    s.add_argument("input", help="a .sir file or an hdf5 netlist (.net)")
    s.add_argument("-p", "--passes", default="", metavar="PIPELINE",
                   help="e.g. 'shape-infer' (see `slayerc passes`)")
    s.add_argument("-o", "--output", help="write here (.sir or .net) instead of stdout")
    s.add_argument("--target", default="loihi2", choices=("loihi2", "slayerc"),
                   help="netlist target when writing .net (default loihi2)")
    s.add_argument("--input-shape", type=_shape, help="C,H,W for conv netlists without input")
    _nir_arguments(s)
    s.add_argument("--print-ir-after-all", action="store_true", help="print IR after each pass")
    s.add_argument("--print-ir-after", action="append", metavar="PASS",
                   help="print IR after this pass (repeatable)")
    s.add_argument("--time-passes", action="store_true", help="print a table of pass times")
    s.add_argument("--report", action="store_true",
                   help="print every pass note to stderr (warnings are always printed)")
    s.add_argument("--no-verify", action="store_true", help="do not verify after each pass")
    s.add_argument("--verify-diagnostics", action="store_true",
                   help="expect an error: print it to stdout and exit 0 (for golden tests)")
    s.add_argument("--split-input-file", action="store_true",
                   help=f"treat '{SPLIT_MARKER}' lines as separators of independent inputs")
    s.add_argument("--inline-limit", type=int, default=16, metavar="N",
                   help="print parameters with at most N elements inline (default 16)")
    s.add_argument("--report-json", metavar="FILE",
                   help="write pass notes, timings and the per-layer table as JSON")
    s.add_argument("-q", "--quiet", action="store_true",
                   help="no progress bar (it is drawn only when stderr is a terminal)")
    s.set_defaults(func=cmd_opt)

    s = sub.add_parser("compile", help="trace a PyTorch model (or read a graph file) into the IR "
                       "or a netlist")
    s.add_argument("model", metavar="MODEL.py:NAME|GRAPH",
                   help="an nn.Module class (no constructor arguments) or a function returning "
                        "one; or a graph file (.sir, .net, and the imported formats)")
    s.add_argument("--weights", metavar="CKPT.pt", help="state dict, loaded with weights_only")
    s.add_argument("--input-shape", type=_shape, metavar="C[,H,W]",
                   help="per-step input shape, without batch and time (needed for a model)")
    s.add_argument("--steps", type=int, metavar="T", help="time steps to trace (needed for a "
                   "model)")
    _nir_arguments(s)
    s.add_argument("--threshold", type=float, metavar="TH", help=".onnx inputs: each "
                   "sigma-delta layer sends changes of at least TH times its largest "
                   "activation (default 1/256; 0 sends every change)")
    s.add_argument("-p", "--passes", default=None, metavar="PIPELINE",
                   help="passes to run (default: the target's default pipeline; '' for none)")
    s.add_argument("--quant-report", action="store_true",
                   help="print per-layer weight error and fixed-point vs float spike agreement "
                        "on a seeded random input")
    s.add_argument("--target", default="loihi2", choices=("loihi2", "slayerc"),
                   help="netlist target when writing .net (default loihi2)")
    s.add_argument("-o", "--output", required=True, metavar="OUT.sir|OUT.net")
    s.add_argument("--time-passes", action="store_true", help="print a table of pass times")
    s.add_argument("--report", action="store_true",
                   help="print every pass note to stderr (warnings are always printed)")
    s.add_argument("-q", "--quiet", action="store_true", help="no progress bar and summary")
    s.add_argument("--plot", metavar="Q.png|Q.svg", help="draw the --quant-report as a chart "
                   "(needs matplotlib: slayerc[plot])")
    s.add_argument("--report-json", metavar="FILE", help="write pass notes, the per-layer "
                   "table, latency and the quantization report as JSON")
    s.set_defaults(func=cmd_compile)

    s = sub.add_parser("run", help="simulate a netlist in bit-accurate fixed point")
    s.add_argument("netlist", help="an hdf5 netlist (.net)")
    s.add_argument("--input", required=True, metavar="IN.npy",
                   help="input [C(,H,W),T] or batched [N,C(,H,W),T], slayer layout")
    s.add_argument("--output", required=True, metavar="OUT.npy", help="int32 output to write")
    s.add_argument("--steps", type=int, metavar="T", help="time steps (default: the input's)")
    s.add_argument("--all-layers", metavar="LAYERS.npz",
                   help="also write every layer's output (keys layer0, layer1, ...)")
    s.add_argument("--input-shape", type=_shape, help="C,H,W for conv netlists without input")
    s.add_argument("--target", default="loihi2", choices=("loihi2", "slayerc"),
                   help="graded-message width to enforce: loihi2 16 bits (netx's SDNN "
                   "setting, default), slayerc 24")
    s.add_argument("-q", "--quiet", action="store_true", help="no summary line")
    s.add_argument("--plot", metavar="RASTER.png|RASTER.svg", help="draw spike rasters (heat "
                   "maps for graded outputs) of sample 0: input, --layers and output (needs "
                   "matplotlib: slayerc[plot])")
    s.add_argument("--layers", metavar="L", help="layers to draw with --plot: layerK names or "
                   "indices K, comma separated (default: up to 6, spread evenly)")
    s.add_argument("--report-json", metavar="FILE", help="write the run's output shape, "
                   "nonzero count and time as JSON")
    s.set_defaults(func=cmd_run)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``slayerc`` with ``argv``; return the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help(sys.stderr)
        return 2
    np.set_printoptions(linewidth=120)
    try:
        return args.func(args)
    except SlayerError as e:
        _close_bars()
        if args.traceback:
            traceback.print_exc()
        print(f"slayerc: error: {e}", file=sys.stderr)
        return 1
    except (KeyboardInterrupt, BrokenPipeError):
        _close_bars()
        return 130
    except Exception as e:  # a bug in slayerc: still one line, with the way to see more
        _close_bars()
        if args.traceback:
            traceback.print_exc()
        else:
            print(f"slayerc: internal error: {type(e).__name__}: {e} "
                  "(rerun with --traceback and report it)", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
