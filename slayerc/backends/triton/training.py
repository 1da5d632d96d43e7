"""Training graphs: the model as an fx ``GraphModule`` whose neuron chains run fused.

:func:`build` takes the ``SNNTracer`` graph of a model (slayer blocks and neurons are fx leaves)
and rewrites each leaf whose neuron the kernels cover into a call of a fused runner:

=================================  ==========================================================
module (by slayer base class)      runs as
=================================  ==========================================================
synaptic block (Dense, Conv, …)    ``block.synapse`` (torch: cuBLAS / cuDNN), then the fused
                                   ``neuron → delay_shift → axonal delay`` tail
                                   (:func:`adapters.block_forward`)
Input block with a neuron          the block's input scaling (torch), then the fused tail
neuron module (used bare)          :func:`adapters.neuron_forward`
Recurrent, KWTA, Affine, neurons   the module's own (eager) forward, with one warning per
with norm / dropout, sigma-delta   process naming the layer and the reason
Input (delta only)
anything else                      unchanged (torch)
=================================  ==========================================================

Before::

    blocks_0 = getattr(self.blocks, "0")(x)

After (``_fused.blocks_0`` is a :class:`FusedLayer` calling ``run_synaptic(blocks[0], x)``)::

    blocks_0 = self._fused.blocks_0(x)

The returned ``GraphModule`` holds the model's own submodules (the same objects: parameters,
buffers and neuron states are shared with ``model``); the wrappers hold their layer outside the
module tree, so ``state_dict`` keys (and their order) are the model's and checkpoints load into
either.  Deep copies and pickles keep the sharing.  Which layer runs how is recorded in
``gm.meta["slayerc.triton"]``.

Slayer modules are recognised by the names of their base classes (this backend does not import
the frontend): see :data:`RULES`.
"""

from __future__ import annotations

import inspect
import warnings
from collections.abc import Callable
from pathlib import Path

import torch
import torch.fx

from slayerc.backends.triton import adapters, ops
from slayerc.errors import BackendError

__all__ = [
    "FUSED", "RULES", "FusedLayer", "build", "kernel_mode", "run_input", "run_neuron",
    "run_synaptic",
]

_warned: set[str] = set()


# ---------------------------------------------------------------------------- fused runners


def run_synaptic(block, x):
    """A synaptic block (Dense, Conv, Pool, ConvT, Unpool): torch synapse, fused tail."""
    z = block.synapse(x, block._synapse_mask())
    return block._log(adapters.block_forward(block, z))


def run_input(block, x):
    """An Input block with a (non sigma-delta) neuron: scaling in torch, fused tail."""
    z = block.pre_hook_fx(x)
    if block.weight is not None:
        z = z * block.pre_hook_fx(block.weight)
    if block.bias is not None:
        z = z + block.pre_hook_fx(block.bias)
    if getattr(block.neuron, "complex", False):  # the input is the real part (AbstractInput)
        z = (z, torch.zeros_like(z))
    s = adapters.block_forward(block, z)
    if block.input_shape is None:
        block.input_shape = torch.Size(s.shape[1:-1])
    return block._log(s)


def run_neuron(neuron, x):
    """A neuron module called on its own."""
    return adapters.neuron_forward(neuron, x)


# ------------------------------------------------------------------------------- the rules


def _synaptic(block) -> Callable | str:
    if not adapters.fused_supported(block.neuron):
        return _unsupported_neuron(block.neuron)
    return run_synaptic


def _input(block) -> Callable | str | None:
    if block.neuron is None:
        return None  # a pass-through input: nothing to fuse
    if adapters._family(block.neuron) == "sigma_delta":
        return "a sigma-delta Input block only delta-encodes (no fused op)"
    if not adapters.fused_supported(block.neuron):
        return _unsupported_neuron(block.neuron)
    return run_input


def _neuron(neuron) -> Callable | str:
    if not adapters.fused_supported(neuron):
        return _unsupported_neuron(neuron)
    return run_neuron


def _unsupported_neuron(neuron) -> str:
    return (f"its {adapters._family(neuron)} neuron has a norm, dropout or a non-ReLU "
            "activation, which the fused kernels do not cover")


def _eager(reason: str) -> Callable[[torch.nn.Module], str]:
    return lambda module: reason


_PER_STEP = "its neuron runs one step at a time with recurrent feedback (no per-step kernel)"

RULES: dict[str, Callable[[torch.nn.Module], Callable | str | None]] = {
    "block.base.AbstractSynaptic": _synaptic,
    "block.base.AbstractInput": _input,
    "block._recurrent.AbstractRecurrent": _eager(_PER_STEP),
    "block._recurrent.AbstractKWTA": _eager(_PER_STEP),
    "block._recurrent.AbstractAffine": _eager("it returns the membrane trace, not spikes"),
    "neuron.base.Neuron": _neuron,
}
"""Slayer base class (``slayerc.frontend.slayer.<key>``) → rule.  A rule returns the fused
runner for the module, a string saying why it runs eager, or None (nothing to fuse)."""


def _rule(module: torch.nn.Module):
    for cls in type(module).__mro__:
        _, sep, key = f"{cls.__module__}.{cls.__qualname__}".partition("slayer.")
        if sep and key in RULES:
            return RULES[key]
    return None


# -------------------------------------------------------------------------------- building


def kernel_mode(x: torch.Tensor) -> str:
    """How the fused ops run for inputs like ``x``: ``triton``, ``interpreter`` or ``reference``."""
    if not ops.use_triton(x):
        return "reference"
    return "triton" if x.is_cuda else "interpreter"


def _warn_once(message: str) -> None:
    if message in _warned:
        return
    _warned.add(message)
    warnings.warn(message, RuntimeWarning, stacklevel=_user_stacklevel())


_PACKAGE = str(Path(__file__).resolve().parents[2])


def _user_stacklevel() -> int:
    """The ``stacklevel`` of the innermost caller outside the slayerc package."""
    frame, level = inspect.currentframe(), 1
    while frame is not None and frame.f_code.co_filename.startswith(_PACKAGE):
        frame, level = frame.f_back, level + 1
    return level - 1


def _rewrite(graph: torch.fx.Graph, root: torch.nn.Module,
             wrappers: torch.nn.Module) -> dict[str, str]:
    """Point fusable ``call_module`` nodes at :class:`FusedLayer` wrappers (added to
    ``wrappers``); return ``{layer: how it runs}``."""
    plan: dict[str, str] = {}
    for node in list(graph.nodes):
        if node.op != "call_module":
            continue
        module = root.get_submodule(node.target)
        rule = _rule(module)
        how = rule(module) if rule is not None else None
        if isinstance(how, str):
            plan[node.target] = f"eager: {how}"
        elif how is not None:
            plan[node.target] = f"fused: {how.__name__}"
            _replace(graph, node, module, how, wrappers)
    return plan


def _warn_eager(plan: dict[str, str], root: torch.nn.Module) -> None:
    eager = [(k, v.removeprefix("eager: ")) for k, v in plan.items() if v.startswith("eager")]
    if not eager:
        return
    lines = "; ".join(f"'{k}' ({_qualname(root.get_submodule(k))}): {why}" for k, why in eager)
    _warn_once(f"slayerc.compile(backend='triton'): {len(eager)} layer(s) run their eager torch "
               f"forward instead of fused kernels: {lines}. This warning is shown once per "
               "process.")


def _warn_reference(x: torch.Tensor) -> None:
    if ops._state["warned"]:
        return
    ops._state["warned"] = True  # the dispatcher's own once-per-process flag
    why = ("triton is not installed" if not ops.triton_available()
           else f"the example input is on {x.device} and TRITON_INTERPRET is not 1")
    _warn_once(f"slayerc.compile(backend='triton'): {why}, so the compiled module runs the torch "
               "reference dynamics instead of the fused Triton kernels (same results, slower). "
               "Move the model and inputs to CUDA, or set TRITON_INTERPRET=1 before importing "
               "triton to run the kernels in Triton's interpreter. This warning is shown once "
               "per process.")


def _qualname(module: torch.nn.Module) -> str:
    cls = type(module)
    return f"{cls.__module__}.{cls.__qualname__}"


class FusedLayer(torch.nn.Module):
    """Runs ``runner(layer, x)``: one of the model's layers through the fused ops.

    The layer is held outside the module tree (in a one-element list), so the compiled module's
    parameters and ``state_dict`` keys stay exactly the model's; deep copies and pickles keep it
    the same object as the one in the model tree.
    """

    def __init__(self, layer: torch.nn.Module, runner: Callable, target: str):
        super().__init__()
        self.layer_ref = [layer]
        self.runner = runner
        self.target = target

    def forward(self, x):
        """The layer's output, computed by :attr:`runner`."""
        return self.runner(self.layer_ref[0], x)

    def extra_repr(self) -> str:
        """``run_synaptic: blocks.0``."""
        return f"{self.runner.__name__}: {self.target}"


FUSED = "_fused"
"""Attribute of the compiled module holding the :class:`FusedLayer` wrappers."""


def _replace(graph: torch.fx.Graph, node: torch.fx.Node, layer, runner: Callable,
             wrappers: torch.nn.Module) -> None:
    if node.kwargs or len(node.args) != 1:
        raise BackendError(f"layer '{node.target}' is called with {len(node.args)} positional "
                           f"and {len(node.kwargs)} keyword arguments; slayer layers take one "
                           "input")
    wrappers.add_module(node.name, FusedLayer(layer, runner, str(node.target)))
    node.target = f"{FUSED}.{node.name}"


def _adopt(gm: torch.fx.GraphModule, model: torch.nn.Module, graph: torch.fx.Graph) -> None:
    """Give ``gm`` the model's own children, parameters and buffers: the same objects under the
    same keys, in the model's order (so optimizer states interchange too); and the plain
    attributes the graph reads (``get_attr``)."""
    for name, child in model.named_children():
        gm.add_module(name, child)
    for name, p in model.named_parameters(recurse=False):
        gm.register_parameter(name, p)
    skip = model._non_persistent_buffers_set
    for name, b in model.named_buffers(recurse=False):
        gm.register_buffer(name, b, persistent=name not in skip)
    for node in graph.nodes:
        atom = str(node.target).split(".")[0]
        if node.op == "get_attr" and not hasattr(gm, atom):
            setattr(gm, atom, getattr(model, atom))


def build(model: torch.nn.Module, graph: torch.fx.Graph,
          example_input: torch.Tensor | None = None) -> torch.fx.GraphModule:
    """The training ``GraphModule`` of ``model`` from its ``SNNTracer`` graph (not modified).

    ``example_input`` only decides the kernel mode recorded in ``gm.meta`` and whether the
    one-time "reference dynamics run instead" warning is raised now rather than at the first
    forward.
    """
    if hasattr(model, FUSED):
        raise BackendError(f"the model has an attribute '{FUSED}', which the compiled module "
                           "uses for its fused layers; rename it")
    graph = _copy_graph(graph)
    wrappers = torch.nn.Module()
    plan = _rewrite(graph, model, wrappers)
    gm = torch.fx.GraphModule(torch.nn.Module(), torch.fx.Graph(),
                              class_name=f"{type(model).__name__}Fused")
    _adopt(gm, model, graph)
    gm.add_module(FUSED, wrappers)
    gm.graph = graph  # generates forward()
    graph.lint()
    gm.train(model.training)
    _warn_eager(plan, model)
    mode = kernel_mode(example_input) if example_input is not None else "unknown"
    if mode == "reference":
        _warn_reference(example_input)
    gm.meta["slayerc.triton"] = {"kernels": mode, "layers": plan}
    return gm


def _copy_graph(graph: torch.fx.Graph) -> torch.fx.Graph:
    new = torch.fx.Graph()
    out = new.graph_copy(graph, {})
    new.output(out)
    return new
