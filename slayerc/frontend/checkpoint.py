"""Slayer checkpoints and the modules ``slayerc.compile`` makes: the state-dict mapping, both ways.

``slayerc.compile(model, x, backend="torch" | "triton")`` returns the ``to_module`` module of
``trace(model, x)``: its parameters are the IR graph's, so its ``state_dict`` keys and units are
the graph's, not the slayer model's.  This module holds the mapping between the two, built once
from the traced graph and the model (:func:`build_map`, attached to the compiled module), and
applied either way::

    m = slayerc.compile(model, x, backend="triton")
    load_model_state(m, torch.load("slayer_ckpt.pt"))  # a slayer checkpoint into m
    ...                                                 # train m
    model.load_state_dict(model_state(m, model))        # back into the slayer model (strict)

The mapping (model key → compiled module key: model → graph; graph → model):

* synapse ``S.weight`` ``[out, in, 1, 1, 1]`` / ``[out, in, kH, kW, 1]`` → ``S.weight``
  ``[out, in]`` / ``[out, in, kH, kW]``: reshape (× ``S.mask`` if any); reshape.
* weight norm ``S.weight_g``, ``S.weight_v`` → ``S.weight``: ``W = g·v/‖v‖`` (× mask);
  ``v = W``, ``g = ‖W‖`` per output channel (torch ``weight_norm``'s dim 0).
* complex synapses ``S.real.*``, ``S.imag.*`` → ``S.weight``, ``S.weight_imag``: as above.
* decays ``N.<x>_decay`` per channel / neuron → ``N.<x>_decay``: ``D/4096``; ``f·4096``.
* decays ``N.<x>_decay`` of one element (shared) → ``<node>.<x>_decay`` (e.g.
  ``n0_neuron.current_decay``): ``D/4096``; ``f·4096``.
* axonal delays ``B.delay.delay`` → ``B.delay``: ``d/sampling_time``; ``steps·sampling_time``.
* sigma-delta ``N.delta.threshold`` (an Input block's too), ``N.bias`` → ``N.threshold`` or
  ``<node>.threshold``, ``N.bias``: copy.
* cuba/alif ``MeanOnlyBatchNorm`` ``N.norm.running_mean`` → ``N.bias``: ``−q(mean)`` (the
  neuron's 8-bit quantizer); ``−bias``.  Not trained (a buffer in the model).
* same key (torch layers: ``Linear``, ``Conv2d``, ``BatchNorm``) → same key: copy (reshape).
* anything else (carried states such as ``spike_state``, an unused sigma-delta bias): not
  loaded; mapped back as the model's own value.

Scalar neuron parameters are attributes in the IR; ``compile`` makes them one-element module
parameters (``to_module(..., learn_neuron=True)``, named ``<node>.<attr>``) so that a checkpoint
can set them and the model's ``requires_grad`` decides whether they train.

Why the forward stays exact: the compiled module applies what the eager forward applies (8-bit
re-quantization of the weights, ``round(f·4096)`` decays, ``trunc`` delays), so loading the
model's latent values (unquantized weights, unrounded decays, fractional delays) gives the eager
forward, and mapping back gives a model whose forward equals the compiled module's.  Mapping a
weight-normed synapse back computes ``g`` with the norm kernel weight norm divides by
(``torch._weight_norm_interface``), so ``g/‖v‖`` is exactly 1 and the model's effective weight
is exactly ``W``.

Units differ: a decay is trained as a fraction ``f = D/4096``, so an optimizer step on it moves
``D`` 4096× as far as the same step on the eager model.  To train as the eager model does, give
the decay parameters (:func:`decay_parameters`) ``lr/4096`` (and Adam ``eps·4096``).  A
weight-normed model trains ``g`` and ``v``; the compiled module trains ``W`` itself.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import torch

from slayerc.errors import FrontendError
from slayerc.ir.core import Graph, Op

P_SCALE = 4096
ATTR = "slayer_map"
"""Attribute of a compiled module that holds its :class:`CheckpointMap`."""


@dataclass(frozen=True)
class Entry:
    """How one graph parameter relates to model state-dict keys.

    ``kind``: ``copy`` (graph = model / ``scale``, reshaped), ``masked`` (graph = weight × mask),
    ``weight_norm`` (graph = ``g·v/‖v‖``, keys ``g, v`` [, mask]), ``norm_bias`` (graph =
    ``−q(running_mean)``, ``scale`` the quantizer's ``w_scale``, 0 for none).
    """

    param: str
    kind: str
    keys: tuple[str, ...]
    scale: float = 1.0

    @property
    def source(self) -> str:
        """The model key that holds the value (for messages and ``requires_grad``)."""
        return self.keys[1] if self.kind == "weight_norm" else self.keys[0]


@dataclass(frozen=True)
class CheckpointMap:
    """The mapping of one compiled module: one :class:`Entry` per mapped graph parameter, and
    the model's state-dict keys with their shapes (in the model's order)."""

    entries: tuple[Entry, ...]
    model_shapes: tuple[tuple[str, tuple[int, ...]], ...]

    def model_keys(self) -> list[str]:
        """The model's state-dict keys, in order."""
        return [k for k, _ in self.model_shapes]


# ------------------------------------------------------------------------------ building


def build_map(graph: Graph, model: torch.nn.Module) -> CheckpointMap:
    """The mapping between ``model``'s state dict and the parameters of ``to_module(graph)``,
    where ``graph`` was traced from ``model``.  Graph parameters with no model counterpart are
    left out (they keep their traced values)."""
    sd = model.state_dict()
    entries = []
    for node in graph:
        for attr, ref in node.param_refs():
            entry = _entry(node, attr, ref.name, model, sd)
            if entry is not None:
                entries.append(entry)
    shapes = tuple((k, tuple(v.shape)) for k, v in sd.items())
    return CheckpointMap(tuple(entries), shapes)


def _entry(node: Op, attr: str, param: str, model: torch.nn.Module,
           sd: Mapping[str, torch.Tensor]) -> Entry | None:
    q = node.loc.module or ""
    if node.OP.startswith("synapse.") and attr in ("weight", "weight_imag"):
        return _weight_entry(q, attr, param, sd)
    if attr.endswith("_decay") and f"{q}.{attr}" in sd:
        return Entry(param, "copy", (f"{q}.{attr}",), P_SCALE)
    if node.OP == "axon.delay" and f"{q}.delay" in sd:
        ts = float(getattr(model.get_submodule(q), "sampling_time", 1) or 1)
        return Entry(param, "copy", (f"{q}.delay",), ts)
    if attr == "bias" and f"{q}.norm.running_mean" in sd:
        return Entry(param, "norm_bias", (f"{q}.norm.running_mean",), _norm_scale(model, q))
    for key in (param, f"{q}.{attr}", f"{q}.delta.{attr}", f"{q}.neuron.delta.{attr}"):
        if key in sd:
            return Entry(param, "copy", (key,))
    return None


def _weight_entry(q: str, attr: str, param: str, sd: Mapping[str, torch.Tensor]) -> Entry | None:
    base = q
    if attr == "weight_imag":
        base = f"{q}.imag"
    elif f"{q}.real.weight" in sd or f"{q}.real.weight_v" in sd:
        base = f"{q}.real"
    mask = (f"{base}.mask",) if f"{base}.mask" in sd else ()
    if f"{base}.weight_v" in sd:
        return Entry(param, "weight_norm", (f"{base}.weight_g", f"{base}.weight_v", *mask))
    if f"{base}.weight" in sd:
        return Entry(param, "masked" if mask else "copy", (f"{base}.weight", *mask))
    return None


def _norm_scale(model: torch.nn.Module, q: str) -> float:
    """``w_scale`` of a neuron norm's 8-bit quantizer (0 for no quantizer)."""
    from slayerc.frontend.slayer.neuron.base import Neuron

    hook = getattr(model.get_submodule(f"{q}.norm"), "pre_hook_fx", None)
    if getattr(hook, "__func__", None) is Neuron.quantize_8bit:
        return float(hook.__self__.w_scale)  # type: ignore[union-attr]
    if getattr(hook, "__name__", "") == "_identity":
        return 0.0
    raise FrontendError(f"{q}.norm: its pre_hook_fx {hook!r} has no checkpoint mapping; use the "
                        "neuron's quantize_8bit (the default) or none")


# ------------------------------------------------------------------------------- applying


def _map_of(module: torch.nn.Module) -> CheckpointMap:
    cmap = getattr(module, ATTR, None)
    if not isinstance(cmap, CheckpointMap):
        raise FrontendError(f"{type(module).__name__} has no slayer checkpoint mapping: it is not "
                            "a module made by slayerc.compile(model, x, backend='torch' or "
                            "'triton'); attach one with build_map(module.graph, model)")
    return cmap


def _to_graph(e: Entry, state: Mapping[str, torch.Tensor], shape: torch.Size) -> torch.Tensor:
    from slayerc.frontend.slayer.utils.quantize import quantize

    vals = [state[k].detach() for k in e.keys]
    if e.kind == "weight_norm":
        value = torch._weight_norm(vals[1], vals[0], 0)
        value = value * vals[2] if len(vals) > 2 else value
    elif e.kind == "masked":
        value = vals[0] * vals[1]
    elif e.kind == "norm_bias":
        w = e.scale
        value = -(quantize(vals[0], step=2 / w).clamp(-256 / w, 254 / w) if w else vals[0])
    else:
        value = vals[0] / e.scale if e.scale != 1 else vals[0]
    if value.numel() != shape.numel():
        raise FrontendError(f"checkpoint key '{e.source}' has shape {list(vals[-1].shape)}, which "
                            f"does not fit the compiled parameter '{e.param}' {list(shape)}; was "
                            "the checkpoint saved from a model of this architecture?")
    return value.reshape(shape)


def to_graph_state(module: torch.nn.Module, model_state: Mapping[str, torch.Tensor],
                   strict: bool = True, skip_misfit: bool = False) -> dict[str, torch.Tensor]:
    """The compiled module's state (by its own ``state_dict`` keys) from a slayer model's state
    dict (a checkpoint of the model ``module`` was compiled from).

    ``strict``: every mapped model key must be present, and every key must be one the model has.
    Model keys without a graph counterpart (carried states, unused biases) are ignored.
    ``skip_misfit``: leave out values of the wrong size instead of raising (``compile`` uses it
    for lazily sized parameters that the model has not sized yet).
    """
    cmap = _map_of(module)
    if strict:
        _check_keys(cmap, model_state)
    keys = _module_keys(module)
    live = module.tensors()  # type: ignore[operator]
    out = {}
    for e in cmap.entries:
        if not all(k in model_state for k in e.keys):
            continue
        try:
            out[keys[e.param]] = _to_graph(e, model_state, live[e.param].shape)
        except FrontendError:
            if not skip_misfit:
                raise
    return out


def misfits(module: torch.nn.Module, model_state: Mapping[str, torch.Tensor]) -> list[str]:
    """Model keys whose size does not fit their compiled parameter (lazily sized parameters
    that the model has not sized yet, or a checkpoint of another architecture)."""
    cmap = _map_of(module)
    live = module.tensors()  # type: ignore[operator]
    bad = []
    for e in cmap.entries:
        if not all(k in model_state for k in e.keys):
            continue
        try:
            _to_graph(e, model_state, live[e.param].shape)
        except FrontendError:
            bad.append(e.source)
    return bad


def _check_keys(cmap: CheckpointMap, state: Mapping[str, torch.Tensor]) -> None:
    needed = {k for e in cmap.entries for k in e.keys}
    missing = sorted(needed - set(state))
    unexpected = sorted(set(state) - set(cmap.model_keys()))
    if missing or unexpected:
        raise FrontendError(f"the checkpoint does not fit the compiled model: missing keys "
                            f"{missing}, unexpected keys {unexpected}; pass strict=False to load "
                            "the keys that fit")


def _module_keys(module: torch.nn.Module) -> dict[str, str]:
    """Graph parameter name -> the module's state-dict key (the same unless flattened)."""
    by_id = {id(t): k for k, t in module.state_dict(keep_vars=True).items()}
    return {name: by_id[id(t)] for name, t in module.tensors().items()}  # type: ignore[operator]


def load_model_state(module: torch.nn.Module, model_state: Mapping[str, torch.Tensor],
                     strict: bool = True, skip_misfit: bool = False) -> None:
    """Load a slayer model's state dict into a compiled module (see :func:`to_graph_state`)."""
    state = to_graph_state(module, model_state, strict, skip_misfit)
    own = module.state_dict(keep_vars=True)
    with torch.no_grad():
        for key, value in state.items():
            own[key].copy_(value)


def model_state(module: torch.nn.Module, model: torch.nn.Module | None = None
                ) -> dict[str, torch.Tensor]:
    """A state dict for the model class ``module`` was compiled from, with the compiled
    module's current values (see the module docstring).  Keys with no graph counterpart take
    ``model``'s own values (so the result loads with ``strict=True``); without ``model`` they
    are left out."""
    cmap = _map_of(module)
    live = module.tensors()  # type: ignore[operator]
    shapes = dict(cmap.model_shapes)
    mapped: dict[str, torch.Tensor] = {}
    for e in cmap.entries:
        value = live[e.param].detach().clone()
        mapped.update(_to_model(e, value, shapes))
    base = model.state_dict() if model is not None else {}
    out = {}
    for key in cmap.model_keys():
        if key in mapped:
            out[key] = mapped[key]
        elif key in base:
            out[key] = base[key].detach().clone()
    return out


def _to_model(e: Entry, value: torch.Tensor, shapes: Mapping[str, tuple[int, ...]]
              ) -> dict[str, torch.Tensor]:
    if e.kind == "weight_norm":
        g_key, v_key = e.keys[:2]
        v = value.reshape(shapes[v_key])
        # the norm weight norm's own kernel divides by, so that g/‖v‖ is exactly 1
        norm = torch._weight_norm_interface(v, torch.ones(shapes[g_key], dtype=v.dtype), 0)[1]
        return {g_key: norm.reshape(shapes[g_key]), v_key: v}
    if e.kind == "norm_bias":
        return {e.keys[0]: (-value).reshape(shapes[e.keys[0]])}
    value = value * e.scale if e.scale != 1 else value
    return {e.keys[0]: value.reshape(shapes[e.keys[0]])}


def decay_parameters(module: torch.nn.Module) -> list[torch.nn.Parameter]:
    """The compiled module's decay parameters (fractions of 4096; see the module docstring)."""
    cmap = _map_of(module)
    live = module.tensors()  # type: ignore[operator]
    return [live[e.param] for e in cmap.entries
            if e.scale == P_SCALE and e.kind == "copy" and live[e.param].requires_grad]


def mirror_requires_grad(module: torch.nn.Module, model: torch.nn.Module) -> None:
    """Train in ``module`` what ``model`` trains: each mapped parameter requires gradients
    when its model parameter does (a buffer, such as a norm's running mean, never does)."""
    cmap = _map_of(module)
    grads = {k: p.requires_grad for k, p in model.named_parameters()}
    live = module.tensors()  # type: ignore[operator]
    for e in cmap.entries:
        t = live[e.param]
        if isinstance(t, torch.nn.Parameter):
            t.requires_grad_(grads.get(e.source, False))
