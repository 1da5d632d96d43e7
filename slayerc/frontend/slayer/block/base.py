"""Abstract blocks: synapse → neuron → 1-step ``delay_shift`` → axonal delay.

A block bundles a synapse, a neuron and optional axonal delay, with lava-dl's constructor
keywords and state_dict keys.  Family modules (``cuba``, ``sigma_delta``, ``rf``, …) subclass
these with a family mixin that names the neuron class and the synapse module (real or complex).

Forward of the synaptic blocks (Dense, Conv, Pool, ConvT, Unpool)::

    z = synapse(x)                 # W_eff = pre_hook_fx(W · mask), never written back
    s = neuron(z)
    s = step_delay(s)              # if delay_shift: s[t] ← s[t−1]; s[−1] = 0, or the last frame
                                   # of the previous call when the neuron is persistent
    s = delay(s)                   # axonal Delay, if delay=True

``export_hdf5(group)`` writes one netx layer group (``spec/netx-hdf5.md`` §2–3) without changing
the module, and works before the first forward whenever the shape is known from construction
(Dense, Affine, Recurrent, KWTA, Output); otherwise it raises :class:`ExportError`.
"""

from __future__ import annotations

import numpy as np
import torch

from slayerc.errors import BlockError, SlayerError  # noqa: F401
from slayerc.runtime import buffers
from slayerc.runtime.buffers import huge_empty
from slayerc.runtime.dynamics import is_time_major

from ..synapse.layer import ExportError, SynapseShapeError
from . import _export as ex

__all__ = [
    "BlockError", "ExportError", "AbstractInput", "AbstractFlatten", "AbstractAverage",
    "AbstractAffine", "AbstractTimeDecimation", "AbstractDense", "AbstractConv", "AbstractPool",
    "AbstractConvT", "AbstractUnpool", "AbstractKWTA", "AbstractRecurrent", "AbstractResidual",
    "step_delay",
]

_UNSET = object()
"""Default of ``pre_hook_fx``: install ``neuron.quantize_8bit`` (any given value is kept)."""


def _t(z, t):
    """Time slice ``z[..., t]`` of a tensor or a (real, imag) pair."""
    return (z[0][..., t], z[1][..., t]) if isinstance(z, tuple) else z[..., t]


def _add(a, b):
    if isinstance(a, tuple):
        return (a[0] + b[0], a[1] + b[1]) if isinstance(b, tuple) else (a[0] + b, a[1] + b)
    return a + b


def _unsqueeze(z):
    return (z[0][..., None], z[1][..., None]) if isinstance(z, tuple) else z[..., None]


def step_delay(module: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    """lava-dl's one-step delay between layers: ``y[..., t] = x[..., t−1]``, ``y[..., 0] = 0``.

    When ``module.neuron.persistent_state`` is True, ``y[..., 0]`` is the last frame of the
    previous call, kept in ``module.delay_buffer`` (dropped when the batch size changes).  A
    slayerc block does the same in its :meth:`Block.step_delay` method.
    """
    persistent = bool(getattr(getattr(module, "neuron", None), "persistent_state", False))
    buffer = getattr(module, "delay_buffer", None)
    if buffer is not None and buffer.shape[0] != x.shape[0]:
        buffer = None
    y = torch.cat([x.new_zeros(x.shape[:-1] + (1,)), x[..., :-1]], dim=-1)  # no full zero fill
    if persistent:
        if buffer is not None:
            y = torch.cat([buffer.to(y.dtype)[..., None], y[..., 1:]], dim=-1)
        module.delay_buffer = x[..., -1].detach()
    elif not hasattr(module, "delay_buffer"):
        module.delay_buffer = None
    return y


class _StepShift(torch.autograd.Function):
    """``y[..., t] = s[..., t−1]``, ``y[..., 0] = first`` (0 when None; never differentiated)
    on a time-last ``s``, into one buffer each way: no zero fill of the whole gradient (as
    ``torch.cat``'s slice backward does) and numpy's huge-page buffers (fewer page faults)."""

    @staticmethod
    def forward(ctx, s, first):
        out = huge_empty(tuple(s.shape), s.dtype, s.device)
        out[..., 0] = 0 if first is None else first
        out[..., 1:] = s[..., :-1]
        return out

    @staticmethod
    def backward(ctx, g):
        gs = huge_empty(tuple(g.shape), g.dtype, g.device)
        gs[..., :-1] = g[..., 1:]
        gs[..., -1] = 0
        return gs, None


class AbstractResidual(torch.nn.Module):
    """Placeholder base class of residual blocks (empty in lava-dl too)."""


class Block(torch.nn.Module):
    """Shared machinery: neuron construction, ``delay_shift`` with persistence, shape, logging."""

    neuron_cls = None
    """The family's neuron class (set by the family mixin)."""
    synapses = None
    """The family's synapse module: ``synapse.layer`` or ``synapse.complex``."""
    delay_shift_default = True
    """Whether ``delay_shift`` defaults to True (False for sigma-delta)."""

    _static_shape = None
    _delay_state = None

    def _make_neuron(self, neuron_params, **override):
        if not isinstance(neuron_params, dict):
            raise BlockError(
                f"{type(self).__qualname__} needs a dict of neuron parameters; got "
                f"{type(neuron_params).__name__}"
            )
        neuron = self.neuron_cls(**{**neuron_params, **override})
        neuron.time_major_output = True  # the block's shift/delay/synapse read it without a copy
        return neuron

    def _make_delay(self, delay):
        if not delay:
            return None
        from ..axon import Delay

        return Delay(max_delay=ex.MAX_DELAY)

    def _hook(self, pre_hook_fx):
        return self.neuron.quantize_8bit if pre_hook_fx is _UNSET else pre_hook_fx

    def _set_delay_shift(self, delay_shift):
        self.delay_shift = self.delay_shift_default if delay_shift is None else delay_shift

    def _persistent(self) -> bool:
        neuron = getattr(self, "neuron", None)
        return bool(getattr(neuron, "persistent_state", False))

    def step_delay(self, s: torch.Tensor) -> torch.Tensor:
        """One-step output delay; a persistent block starts from the previous call's last frame."""
        first = None
        if self._persistent():
            last = self._delay_state
            if last is not None and last.shape == s.shape[:-1]:
                first = last.to(s.dtype)
            self._delay_state = s[..., -1].detach().clone()
        if is_time_major(s):  # shift rows of the time-major storage: no transposing copy
            st = s.movedim(-1, 0)
            if first is None:  # cat, not pad: no fill of the whole output, views in backward
                first = torch.zeros((), dtype=s.dtype, device=s.device).expand(st.shape[1:])
            return torch.cat([first.unsqueeze(0), st[:-1]], dim=0).movedim(0, -1)
        if s.shape[-1] == 0:
            return s
        return _StepShift.apply(s, first)

    def _post(self, s: torch.Tensor) -> torch.Tensor:
        if isinstance(s, torch.Tensor) and s.device.type == "cpu":  # freed buffers reused
            buffers.ensure_default()
        if self.delay_shift:
            s = self.step_delay(s)
        if self.delay is not None:
            s = self.delay(s)
        return s

    def _log(self, x, count: bool = True):
        if isinstance(x, torch.Tensor):
            x = x.contiguous()
        if not self.count_log:
            return x
        return x, (torch.mean((x > 0).to(x.dtype)) if count else None)

    @property
    def shape(self):
        """Neuron shape ``(C,)`` or ``(C, H, W)``: known after the first forward, or at
        construction for dense-like blocks; None when unknown."""
        neuron = getattr(self, "neuron", None)
        shape = getattr(neuron, "shape", None)
        if shape is not None:
            return torch.Size(shape)
        return None if self._static_shape is None else torch.Size(self._static_shape)

    def export_shape(self):
        """:attr:`shape`, or :class:`ExportError` when it is not known yet."""
        shape = self.shape
        if shape is None:
            raise ExportError(
                f"{type(self).__module__.rsplit('.', 1)[-1]}.{type(self).__qualname__}: the "
                "output shape depends on the input shape; run one forward pass (any input of "
                "the right shape) before export_hdf5"
            )
        return shape

    def _register_mask(self, mask):
        if mask is None:
            self.mask = None
        else:
            mask = torch.as_tensor(mask)
            self.register_buffer("mask", mask.reshape(*mask.shape[:2], *([1] * 3)))

    def _mask_for(self, weight_shape):
        if self.mask is None:
            return None
        if self.mask.numel() != weight_shape.numel():
            raise SynapseShapeError(
                f"mask has shape {list(self.mask.shape[:2])}; expected "
                f"{list(weight_shape[:2])} (one entry per synapse)"
            )
        return self.mask.reshape(weight_shape)


class AbstractInput(Block):
    """Input block: ``z = q(x)·q(weight) + q(bias)`` (q = ``quantize_8bit``), ``s = neuron(z)``.

    Without neuron parameters the input passes through (with the ``delay_shift``).
    """

    def __init__(self, neuron_params=None, weight=None, bias=None, delay_shift=None,
                 count_log=False):
        super().__init__()
        self.count_log = count_log
        self.weight = None if weight is None else torch.nn.Parameter(torch.tensor([float(weight)]))
        self.bias = None if bias is None else torch.nn.Parameter(torch.tensor([float(bias)]))
        self.neuron = None if neuron_params is None else self._make_neuron(neuron_params)
        self.delay = None
        self.input_shape = None
        self.pre_hook_fx = self.neuron.quantize_8bit if self.neuron is not None else _identity
        self._set_delay_shift(delay_shift)

    def _encode(self, z):
        if getattr(self.neuron, "complex", False):
            # a complex (RF) neuron gets the input as its real part (lava-dl unpacks the
            # batch dimension instead)
            return self.neuron((z, torch.zeros_like(z)))
        return self.neuron(z)

    def forward(self, x):
        """Forward of an ``NCT`` or ``NCHWT`` input."""
        if self.neuron is not None:
            z = self.pre_hook_fx(x)
            if self.weight is not None:
                z = z * self.pre_hook_fx(self.weight)
            if self.bias is not None:
                z = z + self.pre_hook_fx(self.bias)
            x = self._encode(z)
        if self.delay_shift:
            x = self.step_delay(x)
        if self.input_shape is None:
            self.input_shape = torch.Size(x.shape[1:-1])
        return self._log(x)

    @property
    def shape(self):
        """Shape of the input, known after the first forward."""
        return super().shape or self.input_shape

    @ex.through_writer
    def export_hdf5(self, handle):
        """Writes an ``input`` layer group."""
        shape = self.export_shape()
        ex.write_type(handle, "input")
        ex.write_shape(handle, shape)
        if self.neuron is None:
            return
        for key in ("weight", "bias"):
            p = getattr(self, key)
            if p is not None:
                with torch.no_grad():
                    v = self.pre_hook_fx(p, descale=True)
                handle.create_dataset(key, data=v.detach().cpu().numpy().astype(np.float32))
        ex.write_neuron(handle, self.neuron)


def _identity(x, descale=False):
    return x


class AbstractFlatten(torch.nn.Module):
    """Flatten ``NCHWT`` → ``N(C·H·W)T`` (C order); ``shape`` is ``[C·H·W, 1, 1]``."""

    def __init__(self, count_log=False):
        super().__init__()
        self.count_log = count_log
        self.shape = None

    def forward(self, x):
        """Flattens every dimension between batch and time."""
        if self.shape is None:
            self.shape = [int(np.prod(x.shape[1:-1])), 1, 1]
        x = x.reshape(x.shape[0], -1, x.shape[-1])
        return (x, None) if self.count_log else x

    @ex.through_writer
    def export_hdf5(self, handle):
        """Writes a ``flatten`` layer group."""
        if self.shape is None:
            raise ExportError(
                "Flatten: the flattened size depends on the input shape; run one forward pass "
                "before export_hdf5"
            )
        ex.write_type(handle, "flatten")
        ex.write_shape(handle, self.shape)


class AbstractAverage(torch.nn.Module):
    """Average the neurons of ``num_outputs`` equal groups: ``N × num_outputs × T``."""

    def __init__(self, num_outputs, count_log=False):
        super().__init__()
        self.count_log = count_log
        self.num_outputs = num_outputs

    def forward(self, x):
        """Mean over each group of consecutive neurons."""
        n, t = x.shape[0], x.shape[-1]
        if x[0, ..., 0].numel() % self.num_outputs:
            raise SynapseShapeError(
                f"Average({self.num_outputs}) needs a neuron count divisible by "
                f"{self.num_outputs}; got input shape {list(x.shape)}"
            )
        x = torch.mean(x.reshape(n, self.num_outputs, -1, t), dim=2)
        return (x, None) if self.count_log else x

    @property
    def shape(self):
        """Shape of the block."""
        return torch.Size([self.num_outputs, 1, 1])

    @ex.through_writer
    def export_hdf5(self, handle):
        """Writes an ``average`` layer group (netx 0.6 cannot load it)."""
        ex.write_type(handle, "average")
        ex.write_shape(handle, self.shape)


class AbstractTimeDecimation(torch.nn.Module):
    """Mean over bins of ``factor`` (a power of 2) time steps, zero-padding T up to a multiple."""

    def __init__(self, factor, count_log=False):
        super().__init__()
        if factor <= 0 or factor & (factor - 1):
            raise BlockError(f"TimeDecimation factor must be a power of 2; got {factor}")
        self.count_log = count_log
        self.factor = int(factor)

    def forward(self, x):
        """Decimates the time axis."""
        pad = -x.shape[-1] % self.factor
        x = torch.nn.functional.pad(x, (0, pad))
        x = x.reshape(*x.shape[:-1], -1, self.factor).mean(-1)
        return (x, None) if self.count_log else x

    @ex.through_writer
    def export_hdf5(self, handle):
        """TimeDecimation has no netx layer type."""
        raise ExportError("TimeDecimation has no netx layer type; it cannot be exported")


class AbstractSynaptic(Block):
    """Synapse → neuron → delay_shift → axonal delay (Dense, Conv, Pool, ConvT, Unpool)."""

    layer_type = "dense"
    synapse_kind = "Dense"

    def _finish(self, neuron_params, delay, delay_shift, count_log, synapse_args, pre_hook_fx,
                channels=None, drop_norm=False):
        self.count_log = count_log
        if drop_norm and isinstance(neuron_params, dict) and "norm" in neuron_params:
            neuron_params = {**neuron_params, "norm": None}
        self.neuron = self._make_neuron(neuron_params)
        self.delay = self._make_delay(delay)
        self._set_delay_shift(delay_shift)
        factory = getattr(self.synapses, self.synapse_kind)
        self.synapse = factory(*synapse_args, pre_hook_fx=self._hook(pre_hook_fx))
        if channels is not None:
            self._set_channels(int(channels))

    def _set_channels(self, channels: int) -> None:
        """Create per-channel neuron parameters and delays now (lava-dl: at the first forward),
        so a fresh block has its final state_dict shapes and never re-draws loaded values."""
        if hasattr(self.neuron, "set_channels"):
            self.neuron.set_channels(channels)
        if self.delay is not None and hasattr(self.delay, "set_channels"):
            self.delay.set_channels(channels)

    def _synapse_mask(self):
        if getattr(self, "mask", None) is None:
            return None
        real = self.synapse.real if self.synapse.complex else self.synapse
        return self._mask_for(real.shape)

    def forward(self, x):
        """Forward of the block; returns ``(s, rate)`` with ``count_log``."""
        z = self.synapse(x, self._synapse_mask())
        return self._log(self._post(self.neuron(z)))

    def _write_geometry(self, handle):
        ex.write_conv_geometry(handle, self.synapse)

    @ex.through_writer
    def export_hdf5(self, handle):
        """Writes the layer group (``dense``, ``conv``, ``pool``, ``convT`` or ``unpool``)."""
        shape = self.export_shape()
        ex.write_type(handle, self.layer_type)
        ex.write_shape(handle, shape)
        self._write_geometry(handle)
        dims = 2 if self.layer_type == "dense" else 4
        ex.write_weight(handle, self.synapse, mask=self._synapse_mask(), dims=dims)
        ex.write_norm_bias(handle, self.neuron)
        ex.write_delay(handle, self.delay, shape[0])
        ex.write_neuron(handle, self.neuron)


class AbstractDense(AbstractSynaptic):
    """Dense block. ``mask`` (``[out, in]``) enables only some synapses, with or without
    weight norm."""

    def __init__(self, neuron_params, in_neurons, out_neurons, weight_scale=1, weight_norm=False,
                 pre_hook_fx=_UNSET, delay=False, delay_shift=None, mask=None, count_log=False):
        super().__init__()
        self._register_mask(mask)
        self._finish(neuron_params, delay, delay_shift, count_log,
                     (in_neurons, out_neurons, weight_scale, weight_norm), pre_hook_fx,
                     channels=out_neurons)
        self._static_shape = (int(out_neurons),)

    def _write_geometry(self, handle):
        ex.write_dense_features(handle, self.synapse)


class AbstractConv(AbstractSynaptic):
    """Convolution block (NCHWT). ``mask`` (weight-shaped) is a slayerc extension."""

    layer_type, synapse_kind = "conv", "Conv"

    def __init__(self, neuron_params, in_features, out_features, kernel_size, stride=1, padding=0,
                 dilation=1, groups=1, weight_scale=1, weight_norm=False, pre_hook_fx=_UNSET,
                 delay=False, delay_shift=None, count_log=False, mask=None):
        super().__init__()
        self._register_mask(None if mask is None else torch.as_tensor(mask).reshape(
            out_features, -1))
        self._finish(neuron_params, delay, delay_shift, count_log,
                     (in_features, out_features, kernel_size, stride, padding, dilation, groups,
                      weight_scale, weight_norm), pre_hook_fx, channels=out_features)


class AbstractConvT(AbstractSynaptic):
    """Transposed convolution block (NCHWT)."""

    layer_type, synapse_kind = "convT", "ConvTranspose"

    def __init__(self, neuron_params, in_features, out_features, kernel_size, stride=1, padding=0,
                 dilation=1, groups=1, weight_scale=1, weight_norm=False, pre_hook_fx=_UNSET,
                 delay=False, delay_shift=None, count_log=False):
        super().__init__()
        self.mask = None
        self._finish(neuron_params, delay, delay_shift, count_log,
                     (in_features, out_features, kernel_size, stride, padding, dilation, groups,
                      weight_scale, weight_norm), pre_hook_fx, channels=out_features)


class AbstractPool(AbstractSynaptic):
    """Sum-pooling block; the neuron gets no ``norm`` (as lava-dl, without editing the dict)."""

    layer_type, synapse_kind = "pool", "Pool"

    def __init__(self, neuron_params, kernel_size, stride=None, padding=0, dilation=1,
                 weight_scale=1, weight_norm=False, pre_hook_fx=_UNSET, delay=False,
                 delay_shift=None, count_log=False):
        super().__init__()
        self.mask = None
        self._finish(neuron_params, delay, delay_shift, count_log,
                     (kernel_size, stride, padding, dilation, weight_scale, weight_norm),
                     pre_hook_fx, drop_norm=True)

    def _write_geometry(self, handle):
        ex.write_conv_geometry(handle, self.synapse, with_channels=False)


class AbstractUnpool(AbstractPool):
    """Unpooling block."""

    layer_type, synapse_kind = "unpool", "Unpool"


from ._recurrent import AbstractAffine, AbstractKWTA, AbstractRecurrent  # noqa: E402
