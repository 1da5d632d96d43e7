"""Converters from slayerc.slayer blocks, neurons, synapses and axons to IR ops.

Parameters in the IR are the effective ones the eager forward uses: weights after weight norm,
mask and the quantization pre-hook; decays rounded as the kernels round them; delays clamped
and truncated.  They are read from the probe copy of the model that ran the example input, so
anything its forward settles lazily (clamps, lazily sized parameters) is as the forward saw it.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from slayerc.frontend.slayer import axon as sl_axon
from slayerc.frontend.slayer import dendrite as sl_dendrite
from slayerc.frontend.slayer.block import _recurrent as sl_rec
from slayerc.frontend.slayer.block import base as sl_block
from slayerc.frontend.slayer.block import sigma_delta as sl_sd
from slayerc.frontend.slayer.neuron import base as sl_neuron
from slayerc.frontend.slayer.neuron import norm as sl_norm
from slayerc.frontend.slayer.synapse import complex as sl_cx
from slayerc.frontend.slayer.synapse import layer as sl_syn
from slayerc.frontend.trace import CANON, Lowering, Val
from slayerc.ir import ops as o
from slayerc.ir.core import ParamRef, sanitize

P_SCALE = 4096

# ------------------------------------------------------------------------------------ values


def _probe(low: Lowering, q: str) -> torch.nn.Module:
    """The module at ``q`` in the copy that ran the example input."""
    return low.probe.get_submodule(q)


def _value(low: Lowering, name: str, t: torch.Tensor, scale: float = 1.0) -> float | ParamRef:
    """A scalar attribute, or a parameter for a per-channel / per-neuron tensor."""
    t = t.detach().reshape(-1) if t.numel() == 1 else t.detach()
    if t.numel() == 1:
        return float(t.reshape(-1)[0]) / scale
    return low.param(name, (t.to(torch.float64) / scale).cpu().numpy())


def _decay(low: Lowering, q: str, neuron: torch.nn.Module, attr: str) -> float | ParamRef:
    """A decay as the kernels use it: ``round(D) / 4096``."""
    return _value(low, f"{q}.{attr}", torch.round(getattr(neuron, attr).detach()), P_SCALE)


# ------------------------------------------------------------------------------------ neurons


def _bias(low: Lowering, q: str, n: torch.nn.Module) -> float | ParamRef | None:
    offset = _norm_offset(low, n)
    return None if offset is None else _value(low, f"{q}.bias", offset)


def _norm_offset(low: Lowering, n: torch.nn.Module) -> torch.Tensor | None:
    """The per-channel shift ``−q(running_mean)`` an eval-mode MeanOnlyBatchNorm adds (None
    without a norm or when it is zero)."""
    norm = getattr(n, "norm", None)
    if norm is None:
        return None
    if not isinstance(norm, sl_norm.MeanOnlyBatchNorm) or type(norm) is not \
            sl_norm.MeanOnlyBatchNorm:
        raise low.error(f"neuron norm {type(norm).__name__} is not supported by trace(); "
                        "MeanOnlyBatchNorm is")
    if norm.training and norm.update:
        raise low.error("the neuron's MeanOnlyBatchNorm is in training mode (it would use batch "
                        "statistics); call model.eval() before tracing")
    with torch.no_grad():
        offset = -norm.pre_hook_fx(norm.running_mean.detach().reshape(-1))
    return None if not bool(offset.any()) else offset  # a zero shift is no bias


def _common(n: torch.nn.Module) -> dict[str, Any]:
    th = float(torch.as_tensor(n.threshold).detach().reshape(-1)[0])
    return {"threshold": th, "scale": int(n.w_scale), "persistent": bool(n.persistent_state),
            "tau_grad": float(n.tau_rho) / th if th else 1.0, "scale_grad": float(n.scale_rho)}


def _neuron_attrs(low: Lowering, q: str, n: torch.nn.Module) -> tuple[type[o.Op], dict]:
    from slayerc.frontend.slayer.neuron import adrf, adrf_iz, alif, cuba, rf, rf_iz, sigma_delta

    if isinstance(n, sigma_delta.Neuron):
        return o.SigmaDelta, _sigma_delta_attrs(low, q, n)
    attrs = {**_common(n), "graded": bool(n.graded_spike)}
    table = {cuba.Neuron: (o.Cuba, ("current_decay", "voltage_decay")),
             alif.Neuron: (o.Alif, ("current_decay", "voltage_decay", "threshold_decay",
                                    "refractory_decay")),
             rf.Neuron: (o.RF, ("sin_decay", "cos_decay")),
             rf_iz.Neuron: (o.RFIz, ("sin_decay", "cos_decay")),
             adrf.Neuron: (o.Adrf, ("sin_decay", "cos_decay", "threshold_decay",
                                    "refractory_decay")),
             adrf_iz.Neuron: (o.AdrfIz, ("sin_decay", "cos_decay", "threshold_decay",
                                         "refractory_decay"))}
    cls, decays = table[type(n)]
    for attr in decays:
        attrs[attr] = _decay(low, q, n, attr)
    if hasattr(n, "threshold_step"):
        attrs["threshold_step"] = float(n.threshold_step)
    if getattr(n, "real_norm", None) is not None or getattr(n, "imag_norm", None) is not None:
        raise low.error("resonator neurons with a norm are not supported by trace()")
    if cls in (o.Cuba, o.Alif):
        attrs["bias"] = _bias(low, q, n)
    return cls, attrs


def _sigma_delta_attrs(low: Lowering, q: str, n: torch.nn.Module) -> dict[str, Any]:
    name = getattr(n.activation, "__name__", None)
    if name not in o.ACTIVATIONS:
        raise low.error(f"sigma-delta activation {n.activation!r} is not supported; use one of "
                        f"{', '.join(o.ACTIVATIONS)}")
    attrs = _common(n)
    attrs["threshold"] = _value(low, f"{q}.threshold", n.delta.threshold)
    # the norm (eval mode: a fixed shift of σ) and the neuron's own bias add before act()
    offset = _norm_offset(low, n)
    if n.bias_is_set:
        own = n.bias.detach()
        if offset is not None and own.numel() not in (1, offset.numel()):
            raise low.error("a sigma-delta neuron with both a per-neuron bias and a norm is not "
                            "supported by trace(); fold one into the other")
        offset = own if offset is None else offset + own.reshape(-1)
    bias = None if offset is None else _value(low, f"{q}.bias", offset)
    return {**attrs, "activation": name, "bias": bias, "cum_error": bool(n.delta.cum_error)}


def lower_neuron(low: Lowering, q: str, x: Val, module: str | None = None) -> Val:
    """A neuron module (by qualname) applied to ``x``; adds dropout when it has one."""
    n = _probe(low, q)
    cls, attrs = _neuron_attrs(low, q, n)
    name = low.add(cls, f"{module or q}_neuron" if module else q, [x.name], module=q, **attrs)
    out = Val(name, CANON, x.shape)
    drop = getattr(n, "drop", None)
    if drop is not None:
        out = Val(low.add(o.Dropout, f"{q}_dropout", [name], module=q, p=float(drop.p)),
                  CANON, x.shape)
    return out


# ----------------------------------------------------------------------------------- synapses

_SYNAPSES = {sl_syn.Dense: o.Dense, sl_syn.Conv: o.Conv, sl_syn.Pool: o.Pool,
             sl_syn.ConvTranspose: o.ConvTranspose, sl_syn.Unpool: o.Unpool}


def _real_parts(syn: torch.nn.Module) -> tuple[torch.nn.Module, torch.nn.Module | None]:
    if getattr(syn, "complex", False):
        return syn.real, syn.imag
    return syn, None


def lower_synapse(low: Lowering, q: str, x: Val, mask: torch.Tensor | None = None) -> Val:
    """A synapse module (by qualname) applied to ``x`` with its effective weight."""
    syn = _probe(low, q)
    real, imag = _real_parts(syn)
    cls = _SYNAPSES.get(type(real))
    if cls is None:
        raise low.error(f"synapse {type(real).__name__} is not supported by trace()")
    attrs = _geometry(real, cls)
    if cls is o.Dense:
        if real.kernel_size != (1, 1, 1) or len(x.shape) != 1:
            raise low.error("a Dense synapse on a frame input (C, H, W) is not supported; add a "
                            "Flatten block before it")
    with torch.no_grad():
        weights = [_weight(p, mask, cls) for p in (real, imag) if p is not None]
    attrs["weight"] = low.param(f"{q}.weight", weights[0])
    attrs["quant_scale"] = _quant_scale(real)
    if imag is not None:
        attrs["weight_imag"] = low.param(f"{q}.weight_imag", weights[1])
    name = low.add(cls, sanitize(q), [x.name], module=q, **attrs)
    return Val(name, CANON, ())  # shape is filled in by the caller from the neuron/output


def _weight(syn: torch.nn.Module, mask: torch.Tensor | None, cls: type) -> np.ndarray:
    w = syn.effective_weight(mask, fresh=True).detach()
    w = w[..., 0]  # drop the time kernel
    if cls is o.Dense:
        w = w.reshape(w.shape[0], -1)
    return w.cpu().numpy().astype(np.float32)


def _quant_scale(syn: torch.nn.Module) -> int | None:
    """``w_scale`` of the 8-bit quantizer a block installs as the synapse's pre-hook (training
    re-quantizes to it), or None for any other hook (or none)."""
    hook = getattr(syn, "_pre_hook_fx", None)
    if getattr(hook, "__func__", None) is not sl_neuron.Neuron.quantize_8bit:
        return None
    return int(hook.__self__.w_scale)  # type: ignore[union-attr]


def _geometry(syn: torch.nn.Module, cls: type) -> dict[str, Any]:
    if cls is o.Dense:
        return {}
    attrs = {"stride": tuple(syn.stride[:2]), "padding": tuple(syn.padding[:2]),
             "dilation": tuple(syn.dilation[:2])}
    if cls in (o.Pool, o.Unpool):
        attrs["kernel"] = tuple(syn.kernel_size[:2])
    else:
        attrs["groups"] = int(syn.groups)
    return attrs


# -------------------------------------------------------------------------------------- axons


def _post(low: Lowering, q: str, block: torch.nn.Module, s: Val) -> Val:
    """The block's ``delay_shift`` and axonal delay after its neuron."""
    if block.delay_shift:
        s = Val(low.add(o.Shift, f"{q}_shift", [s.name], module=q,
                        persistent=block._persistent()), CANON, s.shape)
    if block.delay is not None:
        s = lower_delay(low, f"{q}.delay", s)
    return s


def lower_delay(low: Lowering, q: str, s: Val) -> Val:
    """An axonal ``Delay`` module: per-channel integer steps as the forward truncates them."""
    d = _probe(low, q)
    with torch.no_grad():
        steps = torch.trunc(d.delay.detach().clamp(min=0) / d.sampling_time)
    ref = low.param(f"{q}", steps.to(torch.float64).cpu().numpy())
    return Val(low.add(o.Delay, sanitize(q), [s.name], module=q, delay=ref,
                       max_delay=d.max_delay), CANON, s.shape)


# ------------------------------------------------------------------------------------- blocks


def _tensor_arg(low: Lowering, args) -> Val:
    return low.want(args[0], CANON, what="a slayer block")


def synaptic_block(low: Lowering, block, q: str, args, kwargs) -> Any:
    """Dense, Conv, Pool, ConvT, Unpool blocks: synapse → neuron → shift → delay."""
    x = _tensor_arg(low, args)
    probe = _probe(low, q)
    mask = probe._synapse_mask() if hasattr(probe, "_synapse_mask") else None
    z = lower_synapse(low, f"{q}.synapse", x, mask)
    s = lower_neuron(low, f"{q}.neuron", z, module=sanitize(q))
    return _count_log(block, _post(low, q, block, _shaped(low, s)))


def _shaped(low: Lowering, v: Val) -> Val:
    full = low.out_shape()
    return Val(v.name, CANON, tuple(full[1:-1]))


def _count_log(block, v: Val) -> Any:
    return (v, None) if getattr(block, "count_log", False) else v


def input_block(low: Lowering, block, q: str, args, kwargs) -> Any:
    """Input block: ``q(x)·q(w) + q(b)`` → neuron (or delta) → shift."""
    x = _tensor_arg(low, args)
    probe = _probe(low, q)
    if probe.neuron is not None:
        n = probe.neuron
        scale = float(n.w_scale)
        x = Val(low.add(o.Quantize, f"{q}_quantize", [x.name], module=q, step=2.0 / scale,
                        low=-256.0 / scale, high=254.0 / scale), CANON, x.shape)
        x = _input_transform(low, q, probe, x)
        if getattr(n, "complex", False):
            raise low.error("Input blocks of resonator (complex) neurons are not supported by "
                            "trace()")
        if isinstance(probe, sl_sd.Input):
            attrs = _sigma_delta_attrs(low, f"{q}.neuron", n)
            x = Val(low.add(o.Delta, f"{sanitize(q)}_delta", [x.name], module=q,
                            threshold=attrs["threshold"], cum_error=attrs["cum_error"],
                            scale=attrs["scale"], persistent=attrs["persistent"]), CANON, x.shape)
        else:
            x = lower_neuron(low, f"{q}.neuron", x, module=sanitize(q))
    if block.delay_shift:
        x = Val(low.add(o.Shift, f"{q}_shift", [x.name], module=q,
                        persistent=block._persistent()), CANON, x.shape)
    return _count_log(block, x)


def _input_transform(low: Lowering, q: str, probe, x: Val) -> Val:
    if probe.weight is None and probe.bias is None:
        return x
    with torch.no_grad():
        w = float(probe.pre_hook_fx(probe.weight)) if probe.weight is not None else 1.0
        b = float(probe.pre_hook_fx(probe.bias)) if probe.bias is not None else 0.0
    return Val(low.add(o.Affine, f"{q}_transform", [x.name], module=q, scale=w, bias=b),
               CANON, x.shape)


def output_block(low: Lowering, block, q: str, args, kwargs) -> Any:
    """sigma_delta Output: synapse → sigma decoder (→ delay)."""
    x = _tensor_arg(low, args)
    z = _shaped(low, lower_synapse(low, f"{q}.synapse", x))
    keep = bool(_probe(low, q).neuron.persistent_state)
    s = Val(low.add(o.Sigma, f"{sanitize(q)}_sigma", [z.name], module=q, persistent=keep), CANON,
            z.shape)
    return _count_log(block, _post(low, q, block, s))


def flatten_block(low: Lowering, block, q: str, args, kwargs) -> Any:
    """Flatten block → ``tensor.flatten``."""
    x = _tensor_arg(low, args)
    v = Val(low.add(o.Flatten, sanitize(q), [x.name], module=q), CANON,
            (int(np.prod(x.shape)),))
    return _count_log(block, v)


def average_block(low: Lowering, block, q: str, args, kwargs) -> Any:
    """Average block → ``tensor.average``."""
    x = _tensor_arg(low, args)
    v = Val(low.add(o.Average, sanitize(q), [x.name], module=q,
                    groups=int(block.num_outputs)), CANON, (int(block.num_outputs),))
    return _count_log(block, v)


def recurrent_block(low: Lowering, block, q: str, args, kwargs) -> Any:
    """Recurrent block: ``W x + R s[t−1]`` → neuron, a cycle through a one-step shift."""
    x = _tensor_arg(low, args)
    qn = sanitize(q)
    z = lower_synapse(low, f"{q}.input_synapse", x)
    back = low.add(o.Shift, f"{qn}_feedback", [f"{qn}_neuron"], module=q, persistent=True)
    r = lower_synapse(low, f"{q}.recurrent_synapse", Val(back, CANON, (block.num_neurons,)))
    total = low.add(o.Add, f"{qn}_sum", [z.name, r.name], module=q)
    s = lower_neuron(low, f"{q}.neuron", Val(total, CANON, ()), module=qn)
    _expect_name(low, s, f"{qn}_neuron")
    return _count_log(block, _post(low, q, block, _shaped(low, s)))


def _expect_name(low: Lowering, s: Val, want: str) -> None:
    if s.name != want:
        raise low.error(f"internal: recurrent neuron named {s.name}, expected {want}")


def kwta_block(low: Lowering, block, q: str, args, kwargs) -> Any:
    """KWTA block: ``W x + q(R) s[t−1] + q(b)`` → neuron → shift."""
    x = _tensor_arg(low, args)
    probe = _probe(low, q)
    qn = sanitize(q)
    z = lower_synapse(low, f"{q}.synapse", x)
    back = low.add(o.Shift, f"{qn}_feedback", [f"{qn}_neuron"], module=q, persistent=True)
    with torch.no_grad():
        probe.clamp()
        a = float(probe.self_excitation.detach().reshape(-1)[0])
    lat = low.add(o.KWTA, f"{qn}_lateral", [back], module=q, num_winners=probe.num_winners,
                  self_excitation=a, threshold=float(probe.neuron.threshold),
                  scale=int(probe.neuron.w_scale))
    total = low.add(o.Add, f"{qn}_sum", [z.name, lat], module=q)
    s = lower_neuron(low, f"{q}.neuron", Val(total, CANON, ()), module=qn)
    _expect_name(low, s, f"{qn}_neuron")
    s = _shaped(low, s)
    if block.delay_shift:
        s = Val(low.add(o.Shift, f"{qn}_shift", [s.name], module=q,
                        persistent=block._persistent()), CANON, s.shape)
    return _count_log(block, s)


def unsupported_block(low: Lowering, block, q: str, args, kwargs) -> Any:
    """Blocks with no IR lowering yet."""
    raise low.error(f"{type(block).__name__} blocks are not supported by trace() yet; "
                    "supported blocks: Input, Output, Dense, Conv, Pool, ConvT, Unpool, Flatten, "
                    "Average, Recurrent, KWTA")


# ---------------------------------------------------------------------- bare modules as leaves


def neuron_module(low: Lowering, n, q: str, args, kwargs) -> Val:
    """A slayer neuron used directly in a model."""
    x = args[0]
    if isinstance(x, tuple):
        raise low.error("a resonator neuron used outside a block is not supported by trace()")
    x = low.want(x, CANON, what="a slayer neuron")
    return lower_neuron(low, q, x)


def synapse_module(low: Lowering, syn, q: str, args, kwargs) -> Any:
    """A slayer synapse used directly in a model."""
    x = low.want(args[0], CANON, what="a slayer synapse")
    if getattr(syn, "complex", False):
        raise low.error("a complex synapse used outside a block is not supported by trace()")
    z = lower_synapse(low, q, x)
    return _shaped(low, z)


def delay_module(low: Lowering, d, q: str, args, kwargs) -> Val:
    """An axonal ``Delay`` used directly in a model."""
    return lower_delay(low, q, low.want(args[0], CANON, what="axon.Delay"))


def sigma_module(low: Lowering, m, q: str, args, kwargs) -> Val:
    """A ``Sigma`` dendrite used directly in a model."""
    x = low.want(args[0], CANON, what="dendrite.Sigma")
    return Val(low.add(o.Sigma, sanitize(q), [x.name], module=q,
                       persistent=bool(m.persistent_state)), CANON, x.shape)


def delta_module(low: Lowering, m, q: str, args, kwargs) -> Val:
    """A ``Delta`` axon used directly in a model."""
    x = low.want(args[0], CANON, what="axon.Delta")
    th = _value(low, f"{q}.threshold", m.threshold)
    return Val(low.add(o.Delta, sanitize(q), [x.name], module=q, threshold=th,
                       cum_error=bool(m.cum_error), scale=int(m.scale) // 64,
                       persistent=bool(m.persistent_state)), CANON, x.shape)


MODULES = {
    sl_sd.Output: output_block,
    sl_block.AbstractInput: input_block,
    sl_block.AbstractSynaptic: synaptic_block,
    sl_block.AbstractFlatten: flatten_block,
    sl_block.AbstractAverage: average_block,
    sl_block.AbstractTimeDecimation: unsupported_block,
    sl_rec.AbstractRecurrent: recurrent_block,
    sl_rec.AbstractKWTA: kwta_block,
    sl_rec.AbstractAffine: unsupported_block,
    sl_neuron.Neuron: neuron_module,
    sl_syn.GenericLayer: synapse_module,
    sl_cx.ComplexLayer: synapse_module,
    sl_axon.Delay: delay_module,
    sl_axon.Delta: delta_module,
    sl_dendrite.Sigma: sigma_module,
}
