"""Real synapses of ``slayerc.slayer``: Dense, Conv, Pool, ConvTranspose, Unpool.

Every synapse is a ``torch.nn.Conv3d`` (or ``ConvTranspose3d``) whose time kernel is 1, as in
lava-dl, so ``state_dict`` keys and weight shapes are lava-dl's: ``weight`` is
``[out, in, 1, 1, 1]`` for Dense and ``[out, in/groups, kH, kW, 1]`` for Conv; with
``weight_norm=True`` the keys are ``weight_g``/``weight_v`` (``torch.nn.utils.weight_norm``).
2-D arguments (kernel, stride, padding, dilation) are in **(H, W)** order.

The synapse computes ``z = W_eff ⊛ x`` with ``W_eff = pre_hook_fx(weight · mask)``; the weight is
never changed in place (lava-dl multiplies ``weight.data`` by the mask on every forward, which
weight norm silently undoes).  :meth:`GenericLayer.export_weight` gives the exported integer
weights without touching the module (lava-dl's export strips weight norm).
"""

from __future__ import annotations

import warnings

import numpy as np
import torch
import torch.nn.functional as F
from torch.nn.utils.weight_norm import WeightNorm

from slayerc.errors import ExportError, SlayerError, SynapseShapeError  # noqa: F401

from ._products import dense_product


def pair3(value, name: str, fill: int, default=None) -> tuple[int, int, int]:
    """``int`` or ``(h, w)`` → ``(h, w, fill)``; ``None`` → ``default`` (already a triple)."""
    if value is None and default is not None:
        return default
    if isinstance(value, (int, np.integer)):
        return (int(value), int(value), fill)
    if isinstance(value, (tuple, list)) and len(value) == 2:
        return (int(value[0]), int(value[1]), fill)
    raise SynapseShapeError(f"{name} must be an int or a pair (H, W); got {value!r}")


def _time_last(x: torch.Tensor, weight: torch.Tensor) -> bool:
    """Whether a dense product should keep ``x``'s time-last layout: ``x`` is contiguous and no
    gradient is recorded (training keeps the time-major products its backward is tuned for)."""
    if torch.is_grad_enabled() and (x.requires_grad or weight.requires_grad):
        return False
    return x.is_contiguous() and x.shape[-1] > 1


class GenericLayer(torch.nn.Module):
    """Behaviour shared by all real synapses (weight norm, pre-hook, mask, export).

    Mixed into ``torch.nn.Conv3d``/``ConvTranspose3d`` subclasses; ``complex`` is False.
    """

    complex = False
    _pre_hook_fx = None
    weight_norm_enabled = False

    def _setup(self, weight_scale, weight_norm, pre_hook_fx, mask=None):
        if weight_scale != 1:
            self.weight = torch.nn.Parameter(weight_scale * self.weight.data)
        self._pre_hook_fx = pre_hook_fx
        if mask is None:
            self.mask = None
        else:
            self.register_buffer("mask", self._mask_shape(torch.as_tensor(mask)))
        if weight_norm:
            self.enable_weight_norm()

    def _mask_shape(self, mask: torch.Tensor) -> torch.Tensor:
        shape = self.weight.shape
        if mask.numel() != shape.numel():
            raise SynapseShapeError(
                f"mask has {mask.numel()} elements {list(mask.shape)}; expected one per weight, "
                f"shape {list(shape[:2])} (weight shape {list(shape)})"
            )
        return mask.to(self.weight.dtype).reshape(shape)

    def enable_weight_norm(self):
        """Enables weight normalization (``weight_g``, ``weight_v``; norm over dim 0)."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            torch.nn.utils.weight_norm(self, name="weight")
        self.weight_norm_enabled = True

    def disable_weight_norm(self):
        """Removes weight normalization, folding ``g·v/‖v‖`` into ``weight``."""
        if self.weight_norm_enabled:
            torch.nn.utils.remove_weight_norm(self, name="weight")
        self.weight_norm_enabled = False

    @property
    def grad_norm(self):
        """Norm of weight gradients (of ``weight_g`` with weight norm) per element."""
        p = self.weight_g if self.weight_norm_enabled else self.weight
        if p.grad is None:
            return 0
        return torch.norm(p.grad).item() / torch.numel(p.grad)

    @property
    def pre_hook_fx(self):
        """Function applied to the weight before the synaptic operation (quantization)."""
        return self._pre_hook_fx

    @pre_hook_fx.setter
    def pre_hook_fx(self, fx):
        self._pre_hook_fx = fx

    @property
    def shape(self):
        """Shape of the synapse weight."""
        return self.weight_v.shape if self.weight_norm_enabled else self.weight.shape

    def raw_weight(self) -> torch.Tensor:
        """The float weight the forward uses, computed from ``g``/``v`` without side effects."""
        if not self.weight_norm_enabled:
            return self.weight
        for hook in self._forward_pre_hooks.values():
            if isinstance(hook, WeightNorm):
                return hook.compute_weight(self)
        return self.weight

    def effective_weight(self, mask: torch.Tensor | None = None, fresh: bool = False):
        """``pre_hook_fx(weight · mask)``: the weight of the synaptic operation.

        With weight norm, ``weight`` is the one the forward pre-hook computed for this call;
        ``fresh=True`` recomputes it from ``g``/``v`` (for use outside the synapse's forward).
        """
        weight = self.raw_weight() if fresh else self.weight
        mask = self.mask if mask is None else mask
        if mask is not None:
            weight = weight * mask.reshape(weight.shape)
        if self._pre_hook_fx is not None:
            weight = self._pre_hook_fx(weight)
        return weight

    def export_weight(self, mask: torch.Tensor | None = None, dims: int = 2) -> np.ndarray:
        """Exported integer weight: ``pre_hook_fx(weight · mask, descale=True)`` as float32.

        ``dims=2`` gives ``[out, in]`` (dense; a frame kernel is flattened C-order, as Flatten
        orders its neurons), ``dims=4`` drops only the time kernel (conv).
        The module is not changed (weight norm stays).
        """
        if self._pre_hook_fx is None:
            raise ExportError(
                "the synapse has pre_hook_fx=None, so its weights are not quantized and have no "
                "exact integer form; build the block without pre_hook_fx=None (the default is "
                "neuron.quantize_8bit) before exporting"
            )
        with torch.no_grad():
            weight = self.raw_weight()
            mask = self.mask if mask is None else mask
            if mask is not None:
                weight = weight * mask.reshape(weight.shape)
            try:
                q = self._pre_hook_fx(weight, descale=True)
            except TypeError as e:
                raise ExportError(
                    f"pre_hook_fx {self._pre_hook_fx!r} does not accept descale=True, which export "
                    "needs to get integer weights"
                ) from e
        shape = (q.shape[0], -1) if dims == 2 else q.shape[:-1]
        return q.reshape(shape).detach().cpu().numpy().astype(np.float32)


class Dense(torch.nn.Conv3d, GenericLayer):
    """Dense synapse ``z[n, o, t] = Σ_i W[o, i]·x[n, i, t]`` as a 1×1×1 Conv3d.

    ``in_neurons`` is an int, or ``(W, H)``/``(W, H, C)`` for a kernel that covers the whole frame.
    An ``NCT`` input is handled as ``(N, C, 1, 1, T)``; a 5-D input with an int ``in_neurons`` is a
    pointwise convolution.  ``mask`` (``[out, in]``) enables only some synapses.
    """

    def __init__(
        self, in_neurons, out_neurons, weight_scale=1, weight_norm=False, pre_hook_fx=None,
        mask=None,
    ):
        if isinstance(in_neurons, (int, np.integer)):
            kernel, in_channels = (1, 1, 1), int(in_neurons)
        elif isinstance(in_neurons, (tuple, list)) and len(in_neurons) in (2, 3):
            kernel = (int(in_neurons[1]), int(in_neurons[0]), 1)
            in_channels = int(in_neurons[2]) if len(in_neurons) == 3 else 1
        else:
            raise SynapseShapeError(
                f"in_neurons must be an int, (W, H) or (W, H, C); got {in_neurons!r}"
            )
        if not isinstance(out_neurons, (int, np.integer)):
            raise SynapseShapeError(f"out_neurons must be an int; got {out_neurons!r}")
        super().__init__(in_channels, int(out_neurons), kernel, bias=False)
        self._setup(weight_scale, weight_norm, pre_hook_fx, mask)

    def _check(self, x: torch.Tensor):
        if x.dim() not in (3, 5):
            raise SynapseShapeError(
                f"dense synapse expects an NCT or NCHWT input; got shape {list(x.shape)}"
            )
        if x.shape[1] != self.in_channels:
            raise SynapseShapeError(
                f"dense synapse expects {self.in_channels} input channels (dim 1); got "
                f"{x.shape[1]} in an input of shape {list(x.shape)}"
            )

    def forward(self, input, mask=None):
        """Applies the synapse to an ``NCT`` or ``NCHWT`` input."""
        self._check(input)
        weight = self.effective_weight(mask)
        if input.dim() == 3 and self.kernel_size == (1, 1, 1) and _time_last(input, weight):
            # inference on time-last input: [out, in] x [N, in, T] in place, no transposing
            # copies (the compiled CUBA neurons keep this layout)
            return torch.matmul(weight.reshape(weight.shape[:2]), input)
        if input.dim() == 3 and self.kernel_size == (1, 1, 1):
            # a matrix product is ~3x faster than a 1x1x1 conv3d on CPU, same sums
            # one [T·N, in] x [in, out] product giving time-major z (what the neurons integrate);
            # a time-major input is a view, a contiguous one (block outputs) is transposed once.
            # The per-row sums are the same as torch.matmul's (checked bit for bit).
            w2 = weight.reshape(weight.shape[:2])
            xt = input.movedim(-1, 0)
            if input.is_contiguous():  # [N·in, T] → [T, N·in]: torch's blocked 2-D transpose
                x2 = input.reshape(-1, input.shape[-1]).t().contiguous().view(-1, xt.shape[-1])
            else:  # time major already: a view
                x2 = xt.reshape(-1, xt.shape[-1])
            z = dense_product(x2, w2)
            return z.reshape(xt.shape[:-1] + z.shape[-1:]).movedim(0, -1)
        if input.dim() == 3:
            n, _, t = input.shape
            out = F.conv3d(input.reshape(n, -1, 1, 1, t), weight)
            return out.reshape(n, -1, t)
        return F.conv3d(input, weight, None, self.stride, self.padding, self.dilation, self.groups)


class Conv(torch.nn.Conv3d, GenericLayer):
    """2-D convolution synapse on ``NCHWT`` input (time kernel 1), no bias."""

    def __init__(
        self, in_features, out_features, kernel_size, stride=1, padding=0, dilation=1, groups=1,
        weight_scale=1, weight_norm=False, pre_hook_fx=None, mask=None,
    ):
        super().__init__(
            in_features, out_features, pair3(kernel_size, "kernel_size", 1),
            pair3(stride, "stride", 1), pair3(padding, "padding", 0),
            pair3(dilation, "dilation", 1), groups, bias=False,
        )
        self._setup(weight_scale, weight_norm, pre_hook_fx, mask)

    def forward(self, input, mask=None):
        """Applies the synapse to an ``NCHWT`` input."""
        if input.dim() != 5 or input.shape[1] != self.in_channels:
            raise SynapseShapeError(
                f"conv synapse expects an NCHWT input with {self.in_channels} channels; got "
                f"shape {list(input.shape)}"
            )
        return F.conv3d(
            input, self.effective_weight(mask), None,
            self.stride, self.padding, self.dilation, self.groups,
        )


def _check_5d(input: torch.Tensor, what: str):
    if input.dim() != 5:
        raise SynapseShapeError(f"{what} expects an NCHWT input; got shape {list(input.shape)}")


class Pool(torch.nn.Conv3d, GenericLayer):
    """Sum pooling with one shared ``[1, 1, kH, kW, 1]`` kernel (``weight_scale`` each).

    The input is zero-padded at the bottom/right by ``H mod kH`` rows and ``W mod kW`` columns
    (the remainder, as lava-dl), then every channel is pooled with the same kernel.
    """

    def __init__(
        self, kernel_size, stride=None, padding=0, dilation=1, weight_scale=1, weight_norm=False,
        pre_hook_fx=None,
    ):
        kernel = pair3(kernel_size, "kernel_size", 1)
        super().__init__(
            1, 1, kernel, pair3(stride, "stride", 1, default=kernel), pair3(padding, "padding", 0),
            pair3(dilation, "dilation", 1), bias=False,
        )
        self.weight = torch.nn.Parameter(
            torch.full(self.weight.shape, float(weight_scale)), requires_grad=False
        )
        self._setup(1, weight_norm, pre_hook_fx)

    def forward(self, input, mask=None):
        """Applies the pooling to an ``NCHWT`` input."""
        _check_5d(input, "pool synapse")
        kh, kw = self.kernel_size[:2]
        pad_h, pad_w = input.shape[2] % kh, input.shape[3] % kw
        if pad_h or pad_w:
            input = F.pad(input, (0, 0, 0, pad_w, 0, pad_h))
        n, c, h, w, t = input.shape
        out = F.conv3d(
            input.reshape(n, 1, c * h, w, t), self.effective_weight(mask), None,
            self.stride, self.padding, self.dilation,
        )
        return out.reshape(n, c, -1, out.shape[3], out.shape[4])


class ConvTranspose(torch.nn.ConvTranspose3d, GenericLayer):
    """Transposed 2-D convolution synapse (time kernel 1, output padding 0), no bias."""

    def __init__(
        self, in_features, out_features, kernel_size, stride=1, padding=0, dilation=1, groups=1,
        weight_scale=1, weight_norm=False, pre_hook_fx=None,
    ):
        super().__init__(
            in_features, out_features, pair3(kernel_size, "kernel_size", 1),
            pair3(stride, "stride", 1), pair3(padding, "padding", 0), 0, groups, False,
            pair3(dilation, "dilation", 1),
        )
        self._setup(weight_scale, weight_norm, pre_hook_fx)

    def forward(self, input, mask=None):
        """Applies the synapse to an ``NCHWT`` input."""
        if input.dim() != 5 or input.shape[1] != self.in_channels:
            raise SynapseShapeError(
                f"transposed conv synapse expects an NCHWT input with {self.in_channels} "
                f"channels; got shape {list(input.shape)}"
            )
        return F.conv_transpose3d(
            input, self.effective_weight(mask), None, self.stride, self.padding,
            self.output_padding, self.groups, self.dilation,
        )


class Unpool(torch.nn.ConvTranspose3d, GenericLayer):
    """Unpooling: the transpose of :class:`Pool` with one shared kernel."""

    def __init__(
        self, kernel_size, stride=None, padding=0, dilation=1, weight_scale=1, weight_norm=False,
        pre_hook_fx=None,
    ):
        kernel = pair3(kernel_size, "kernel_size", 1)
        super().__init__(
            1, 1, kernel, pair3(stride, "stride", 1, default=kernel), pair3(padding, "padding", 0),
            0, 1, False, pair3(dilation, "dilation", 1),
        )
        self.weight = torch.nn.Parameter(
            torch.full(self.weight.shape, float(weight_scale)), requires_grad=False
        )
        self._setup(1, weight_norm, pre_hook_fx)

    def forward(self, input, mask=None):
        """Applies the unpooling to an ``NCHWT`` input."""
        _check_5d(input, "unpool synapse")
        n, c, _, w, t = input.shape
        out = F.conv_transpose3d(
            input.reshape(n, 1, -1, w, t), self.effective_weight(mask), None, self.stride,
            self.padding, self.output_padding, self.groups, self.dilation,
        )
        return out.reshape(n, c, -1, out.shape[3], out.shape[4])
