"""``trace(model, example_input) -> Graph``: torch.fx tracing of SNN models into the IR.

slayerc.slayer blocks, neurons, synapses and axons are fx leaves and are lowered to IR ops by
the converters in :mod:`slayerc.frontend.lower_slayer`; plain torch modules and functions by
:mod:`slayerc.frontend.lower_torch`.  Shapes come from running the traced module on the example
input (runtime shape identification), on a copy so that the model's own state is untouched.

Layouts.  SNN tensors are ``[N, *S, T]`` (slayer layout, time last).  Plain torch layers such as
``nn.Linear`` or ``nn.Conv2d`` need time elsewhere, so models move it: ``x.transpose(1, 2)``
gives ``[N, T, C]`` ("time-second"), and a reshape to ``[N·T, *S]`` folds time into the batch
("folded").  The tracer follows these moves without emitting ops, and each converter checks
that its input has a layout it can handle.

What is traced.  ``forward`` with its first argument as the input; later arguments that have
defaults (``sparsity_monitor=None``) are fixed to them.  A model whose forward also does host
work that has no IR form (the YOLO models' input normalisation and box decoding) defines
``ir_forward(x)``, the part that runs on the chip, and that method is traced instead.
"""

from __future__ import annotations

import copy
import inspect
import operator
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.fx

from slayerc.errors import FrontendError
from slayerc.ir.core import Graph, GraphBuilder, Loc, Op, ParamRef
from slayerc.ir.ops import Input, Output

CANON, TIME2, FOLD = "canonical", "time-second", "folded"


@dataclass(frozen=True)
class Val:
    """An IR value flowing through the trace: node name, layout, per-step shape ``S``."""

    name: str
    layout: str
    shape: tuple[int, ...]


class Lowering:
    """Conversion state: the graph under construction and the fx run's recorded values."""

    def __init__(self, model: torch.nn.Module, gm: torch.fx.GraphModule,
                 probe: torch.fx.GraphModule, values: dict[str, Any], example: torch.Tensor):
        self.model, self.gm, self.values, self.example = model, gm, values, example
        self.probe = probe
        self.b = GraphBuilder(name=_graph_name(model))
        self.batch, self.steps = int(example.shape[0]), int(example.shape[-1])
        self.fx_node: torch.fx.Node | None = None

    # -- helpers used by the converters ----------------------------------------------------
    def loc(self, module: str | None = None) -> Loc:
        """The origin of the fx node being converted (module path and user source line)."""
        file, line = _user_frame(self.fx_node)
        target = self.fx_node.target if self.fx_node is not None else None
        return Loc(module if module is not None else (target if isinstance(target, str)
                                                      else None), file, line)

    def add(self, cls: type[Op], name: str, inputs: list[str], module: str | None = None,
            **attrs: Any) -> str:
        """Add an op (name made unique), located at the current fx node."""
        return self.b.add(cls, name, inputs, loc=self.loc(module), **attrs)

    def param(self, name: str, array: Any) -> ParamRef:
        """Store a parameter (a tensor or array) under a fresh name."""
        if isinstance(array, torch.Tensor):
            array = array.detach().cpu().numpy()
        return self.b.param(name, array)

    def error(self, what: str) -> FrontendError:
        """A FrontendError naming the fx node, module path and source line."""
        return FrontendError(_describe(self.fx_node, self.gm) + what)

    def out_shape(self, node: torch.fx.Node | None = None) -> tuple[int, ...]:
        """The recorded tensor shape of an fx node's output."""
        value = self.values[(node or self.fx_node).name]  # type: ignore[union-attr]
        if isinstance(value, (tuple, list)):
            value = value[0]
        return tuple(value.shape)

    def step_shape(self, full: tuple[int, ...], layout: str) -> tuple[int, ...]:
        """Per-step shape ``S`` of a full tensor shape in a layout."""
        if layout == CANON:
            return tuple(full[1:-1])
        if layout == TIME2:
            return tuple(full[2:])
        return tuple(full[1:])

    def want(self, v: Any, *layouts: str, what: str = "") -> Val:
        """Check an argument is a traced tensor in one of ``layouts``."""
        if not isinstance(v, Val):
            raise self.error(f"{what or 'this op'} needs a tensor input, got {v!r}")
        if v.layout not in layouts:
            hint = {CANON: "[N, C(, H, W), T] (slayer layout, time last)",
                    TIME2: "[N, T, C] (time second)", FOLD: "[N·T, C(, H, W)] (time folded "
                    "into the batch)"}
            raise self.error(f"{what or 'this op'} needs its input in layout "
                             f"{' or '.join(hint[la] for la in layouts)}, but it is "
                             f"{hint[v.layout]}")
        return v


# ----------------------------------------------------------------------------------- tracing


def _leaf_types() -> tuple[type, ...]:
    from slayerc.frontend import lower_slayer, lower_torch

    return tuple(lower_slayer.MODULES) + tuple(lower_torch.MODULES)


class SNNTracer(torch.fx.Tracer):
    """fx tracer that keeps SNN modules and supported torch layers as leaves."""

    def __init__(self) -> None:
        super().__init__()
        self.record_stack_traces = True
        self._leaves = _leaf_types()

    def is_leaf_module(self, m: torch.nn.Module, module_qualified_name: str) -> bool:
        """SNN modules and converted torch layers stay whole (they become IR ops)."""
        if isinstance(m, self._leaves):
            return True
        return super().is_leaf_module(m, module_qualified_name)


def _chip_part(model: torch.nn.Module) -> torch.nn.Module:
    """The module whose forward is traced: ``model``, or, when its class defines
    ``ir_forward``, a shallow view of it whose forward is that method (same submodules and
    qualnames, so IR names and parameters are the model's own)."""
    fn = getattr(type(model), "ir_forward", None)
    if fn is None:
        return model
    view = copy.copy(model)
    view.__class__ = type(type(model).__name__, (type(model),), {"forward": fn})
    return view


def _defaults(root: torch.nn.Module) -> dict[str, Any]:
    """Forward arguments after the input that have defaults (``sparsity_monitor=None``): fx
    traces them as those constants instead of as extra graph inputs."""
    params = list(inspect.signature(type(root).forward).parameters.values())[2:]
    return {p.name: p.default for p in params if p.default is not inspect.Parameter.empty
            and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}


def _drop_specialized(graph: torch.fx.Graph) -> None:
    """Remove what fx adds for constant arguments (their placeholders and value checks), so
    the traced module takes the input alone."""
    checks = {torch._assert, torch.fx._symbolic_trace._assert_is_none}
    for node in reversed(list(graph.nodes)):
        if node.op == "call_function" and node.target in checks:
            graph.erase_node(node)
        elif node.op == "call_function" and node.target is operator.eq and not node.users:
            graph.erase_node(node)
    for node in [n for n in graph.nodes if n.op == "placeholder"][1:]:
        if not node.users:
            graph.erase_node(node)


def _symbolic(model: torch.nn.Module) -> torch.fx.GraphModule:
    tracer = SNNTracer()
    root = _chip_part(model)
    try:
        defaults = _defaults(root)
        graph = tracer.trace(root, concrete_args=defaults or None)
        if defaults:
            _drop_specialized(graph)
    except torch.fx.proxy.TraceError as e:
        file, line = _frame_of_exception(e)
        where = f" at {file}:{line}" if file else ""
        raise FrontendError(f"cannot trace {type(model).__name__}{where}: {e}. Data-dependent "
                            "control flow (if/while on tensor values) cannot be compiled; "
                            "express it with tensor ops or move it out of forward") from None
    except (TypeError, AttributeError, RuntimeError, NotImplementedError) as e:
        file, line = _frame_of_exception(e)
        where = f" at {file}:{line}" if file else ""
        raise FrontendError(f"cannot trace {type(model).__name__}{where}: "
                            f"{type(e).__name__}: {e}") from None
    return torch.fx.GraphModule(root, graph)


class _Recorder(torch.fx.Interpreter):
    """Runs the traced module once and keeps every node's value (shapes, sizes, constants)."""

    def __init__(self, gm: torch.fx.GraphModule):
        super().__init__(gm)
        self.recorded: dict[str, Any] = {}

    def run_node(self, n: torch.fx.Node) -> Any:
        try:
            out = super().run_node(n)
        except FrontendError:
            raise
        except Exception as e:
            file, line = _user_frame(n)
            where = f" at {file}:{line}" if file else ""
            first = str(e).strip().splitlines()[0] if str(e).strip() else ""
            raise FrontendError(f"running the model on the example input failed at fx node "
                                f"'{n.name}'{where}: {type(e).__name__}: {first}") from e
        self.recorded[n.name] = _detach(out)
        return out


def _detach(v: Any) -> Any:
    if isinstance(v, torch.Tensor):
        return v.detach()
    if isinstance(v, tuple):
        return tuple(_detach(x) for x in v)
    return v


def _copy(gm: torch.fx.GraphModule) -> torch.fx.GraphModule:
    """A deep copy; tensors computed by hooks (weight norm's ``weight``) are copied detached."""
    memo: dict[int, Any] = {}
    for m in gm.modules():
        for value in vars(m).values():
            if isinstance(value, torch.Tensor) and not value.is_leaf:
                memo[id(value)] = value.detach().clone()
    return copy.deepcopy(gm, memo)


def _adopt_first_draws(gm: torch.fx.GraphModule, probe: torch.fx.GraphModule) -> None:
    """Give the model the random initial values its probe copy drew at its first forward
    (``slayerc.slayer`` draws per-channel decays and delays then, as lava-dl does), so the
    traced graph and the model agree afterwards, as if the model had run first."""
    mine = dict(gm.named_modules())
    for name, ran in probe.named_modules():
        own = mine.get(name)
        if own is None or not hasattr(ran, "_drawn") or own._drawn or not ran._drawn:
            continue
        with torch.no_grad():
            for pname, value in ran.named_parameters(recurse=False):
                getattr(own, pname).data = value.detach().clone().to(
                    getattr(own, pname).device)
        for attr in ("_drawn", "_params_ready", "init", "shape", "num_neurons"):
            if attr in vars(ran):  # instance state only (a Delay's ``shape`` is a property)
                setattr(own, attr, copy.copy(vars(ran)[attr]))


def trace(model: torch.nn.Module, example_input: torch.Tensor) -> Graph:
    """Trace ``model`` on ``example_input`` (``[N, *S, T]``) into a shape-inferred IR graph."""
    from slayerc.frontend import lower_slayer, lower_torch
    from slayerc.passes.manager import PassManager

    if not isinstance(example_input, torch.Tensor) or example_input.dim() < 3:
        raise FrontendError("the example input must be a tensor [N, C(, H, W), T] (batch first, "
                            f"time last); got {getattr(example_input, 'shape', example_input)!r}")
    gm = _symbolic(model)
    _check_modules(gm, lower_slayer, lower_torch)
    probe = _copy(gm)  # running it must not change the model's state
    rec = _Recorder(probe)
    with torch.no_grad():
        try:
            rec.run(example_input.detach().clone())
        except FrontendError as e:  # torch.fx appends "While executing …" and a traceback
            first = str(e.args[0] if e.args else e).split("\n\nWhile executing")[0]
            shape = list(example_input.shape)
            raise FrontendError(f"{first} (the example input had shape {shape}: [N, C(, H, W), "
                                "T]; is the input shape right?)") from e.__cause__
    _adopt_first_draws(gm, probe)
    low = Lowering(model, gm, probe, rec.recorded, example_input)
    env: dict[str, Any] = {}
    for node in gm.graph.nodes:
        low.fx_node = node
        env[node.name] = _convert(low, node, env, lower_slayer, lower_torch)
    g = low.b.build()
    return PassManager.from_string("shape-infer").run(g)


def _check_modules(gm: torch.fx.GraphModule, ls, lt) -> None:
    """Reject unsupported modules before running anything (clearer than a run-time failure)."""
    for node in gm.graph.nodes:
        if node.op != "call_module":
            continue
        mod = gm.get_submodule(node.target)
        if _lookup(type(mod), ls.MODULES) is None and _lookup(type(mod), lt.MODULES) is None:
            raise FrontendError(_describe(node, gm) + f"unsupported module "
                                f"{type(mod).__module__}.{type(mod).__name__}; supported: "
                                f"{_supported(ls, lt)}")


def _convert(low: Lowering, node: torch.fx.Node, env: dict[str, Any], ls, lt) -> Any:
    args = torch.fx.node.map_arg(node.args, lambda n: env[n.name])
    kwargs = torch.fx.node.map_arg(node.kwargs, lambda n: env[n.name])
    if node.op == "placeholder":
        return _placeholder(low, node)
    if node.op == "output":
        return _output(low, args[0])
    if node.op == "call_module":
        mod = low.gm.get_submodule(node.target)
        conv = _lookup(type(mod), ls.MODULES) or _lookup(type(mod), lt.MODULES)
        if conv is None:
            raise low.error(f"unsupported module {type(mod).__module__}.{type(mod).__name__}; "
                            f"supported: {_supported(ls, lt)}")
        return conv(low, mod, node.target, args, kwargs)
    if node.op == "get_attr":
        return _attr(low, node)
    if not _has_tensor(args, kwargs):
        return _static_or_fail(low, node, args, kwargs, lt)
    fn = lt.FUNCTIONS.get(node.target) if node.op == "call_function" else \
        lt.METHODS.get(node.target)
    if fn is None:
        return _static_or_fail(low, node, args, kwargs, lt)
    return fn(low, args, kwargs)


def _has_tensor(args: Any, kwargs: dict) -> bool:
    found: list[bool] = []
    torch.fx.node.map_aggregate((args, kwargs), lambda v: found.append(isinstance(v, Val)))
    return any(found)


def _static_or_fail(low: Lowering, node: torch.fx.Node, args, kwargs, lt) -> Any:
    """Size arithmetic (``x.shape[0]``, ``x.size(-1)``) is constant folded; other ops fail."""
    value = low.values.get(node.name)
    if not _has_tensor(args, kwargs) and not isinstance(value, torch.Tensor):
        return value
    if node.op == "call_method" and node.target in ("size", "dim") or \
            node.target in (getattr, operator.getitem) and not isinstance(value, torch.Tensor):
        return value
    name = node.target if isinstance(node.target, str) else getattr(
        node.target, "__name__", str(node.target))
    raise low.error(f"unsupported operation '{name}'; supported functions and methods: "
                    f"{', '.join(sorted(lt.SUPPORTED_CALLS))}")


def _placeholder(low: Lowering, node: torch.fx.Node) -> Val:
    if sum(n.op == "placeholder" for n in low.gm.graph.nodes) > 1:
        raise low.error("models with more than one input are not supported by trace()")
    shape = tuple(int(d) for d in low.example.shape[1:-1])
    name = low.add(Input, node.name, [], shape=shape, dtype="f32")
    return Val(name, CANON, shape)


def _output(low: Lowering, result: Any) -> Any:
    outs = result if isinstance(result, (tuple, list)) else (result,)
    outs = [o for o in outs if o is not None]
    for i, v in enumerate(outs):
        v = low.want(v, CANON, what="a model output")
        low.add(Output, "output" if len(outs) == 1 else f"output_{i}", [v.name])
    return None


def _attr(low: Lowering, node: torch.fx.Node) -> Any:
    value = low.values.get(node.name)
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        return float(value)
    raise low.error(f"a tensor attribute ('{node.target}') used directly in forward is not "
                    "supported; wrap it in a module")


def _lookup(cls: type, table: dict[type, Callable]) -> Callable | None:
    for base in cls.__mro__:
        if base in table:
            return table[base]
    return None


def _supported(ls, lt) -> str:
    names = sorted({c.__name__ for c in (*ls.MODULES, *lt.MODULES)})
    return ", ".join(names)


# ----------------------------------------------------------------------------------- origins

_FRAME_RE = re.compile(r'File "([^"]+)", line (\d+)')


def _user_frame(node: torch.fx.Node | None) -> tuple[str | None, int | None]:
    """The innermost ``file:line`` of an fx node's stack trace (the user's forward)."""
    if node is None:
        return None, None
    trace = node.meta.get("stack_trace") or ""
    frames = [(f, ln) for f, ln in _FRAME_RE.findall(trace) if not _internal(f)]
    if not frames:
        return None, None
    file, line = frames[-1]
    return file, int(line)


_TORCH_DIR = str(Path(torch.__file__).parent)
_SLAYERC_DIR = str(Path(__file__).resolve().parents[1])


def _internal(file: str) -> bool:
    """Frames inside torch or the slayerc package are not the user's code."""
    return file.startswith(_TORCH_DIR) or file.startswith(_SLAYERC_DIR)


def _frame_of_exception(e: BaseException) -> tuple[str | None, int | None]:
    """The innermost frame of a traceback that is not in torch or slayerc itself."""
    import traceback

    found: tuple[str | None, int | None] = (None, None)
    for fs in traceback.extract_tb(e.__traceback__):
        if not _internal(fs.filename):
            found = (fs.filename, fs.lineno)
    return found


def _describe(node: torch.fx.Node | None, gm: torch.fx.GraphModule) -> str:
    if node is None:
        return ""
    file, line = _user_frame(node)
    module = f", module '{node.target}'" if node.op == "call_module" else ""
    where = f" at {file}:{line}" if file else ""
    return f"fx node '{node.name}'{module}{where}: "


def _graph_name(model: torch.nn.Module) -> str:
    name = re.sub(r"[^A-Za-z0-9_]", "_", type(model).__name__)
    return name if name and not name[0].isdigit() else "model"
