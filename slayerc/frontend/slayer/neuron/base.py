"""Neuron base class of ``slayer.neuron`` (lava-dl ``neuron/base.py`` API).

Scales: ``w_scale = scale`` (64), ``s_scale = scale·64`` (4096, the integer state scale),
``p_scale = 4096`` (decays).  The threshold is truncated to the ``1/w_scale`` grid at construction.

Parameter granularity:

* ``shared_param=True`` (default): one value per layer, shape ``(1,)``.
* ``shared_param=False``: one value per channel, shape ``(C,)``, drawn in ``[min, max]``
  (lava-dl semantics).
* ``per_neuron_param=True`` (slayerc extension): one value per neuron, shape ``(C,)`` for dense
  layers and ``(C, H, W)`` for conv layers, drawn in ``[min, max]``.

Shapes are fixed as early as possible: with ``shape=`` at construction, ``set_shape(shape)``
(dense blocks know it) or ``set_channels(C)`` (conv blocks know C), else at the first forward;
until the first forward the per-channel parameters hold their lower bound.  Their random values
are drawn at the first forward, as lava-dl draws them, so a network built and run from the same
seed equals lava-dl's; values set by hand before that are kept (the draw still happens, so the
random-number order stays).  Loading a state dict adopts the loaded shapes and values and keeps
them (the first forward still draws, for the order; lava-dl refuses per-channel values before its
first forward with a size mismatch).  A one-element value, which is what lava-dl saves before its
first forward, loads into parameters not drawn yet and the first forward draws over it, as in
lava-dl.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from slayerc.errors import FrontendError, NeuronConfigError, NeuronShapeError  # noqa: F401
from slayerc.frontend.slayer.utils.placeholder import mark as _mark
from slayerc.frontend.slayer.utils.placeholder import unchanged as _unchanged
from slayerc.frontend.slayer.utils.quantize import quantize
from slayerc.ir.target import WEIGHT_MANT


def _range(name: str, value, jitter: float) -> tuple[float, float]:
    """``(min, max)`` from a scalar (± ``jitter``) or a 2-sequence."""
    if np.isscalar(value):
        return value * (1 - jitter), value * (1 + jitter)
    if len(value) != 2:
        raise NeuronConfigError(f"expected {name} as a scalar or (min, max); got {value!r}")
    return value[0], value[1]


class Neuron(torch.nn.Module):
    """Abstract neuron: scales, threshold, quantization helper, shape and parameter bookkeeping.

    Args:
        threshold: spike threshold (slayer units), truncated to the ``1/w_scale`` grid.
        tau_grad, scale_grad: surrogate gradient width and scale (``tau_rho = tau_grad·θ``,
            ``scale_rho = scale_grad``).
        p_scale, w_scale, s_scale: parameter, weight and state scales.
        norm: a normalization class (``MeanOnlyBatchNorm``/``WgtScaleBatchNorm``), instantiated
            here with ``pre_hook_fx = quantize_8bit``.
        dropout: a module applied to the spike output (``neuron.Dropout``).
        persistent_state: carry neuron states between calls (reset when the batch size changes).
        shared_param, per_neuron_param: parameter granularity (module docstring).
        requires_grad: make the decays learnable (and clamp them on every forward).
        complex: complex (two-part) input, with ``real_norm``/``imag_norm``.
        shape: the per-sample neuron shape, if known now.
    """

    def __init__(
        self, threshold, tau_grad=1, scale_grad=1, p_scale=1, w_scale=1, s_scale=1,
        norm=None, dropout=None, num_neurons=None, persistent_state=False, shared_param=True,
        requires_grad=True, complex=False, per_neuron_param=False,
    ):
        super().__init__()
        self.num_neurons = num_neurons
        self.shape = None
        self.p_scale = p_scale
        self.w_scale = int(w_scale)
        self.s_scale = int(s_scale)
        if self.s_scale < self.w_scale:
            raise NeuronConfigError(
                f"state scale {self.s_scale} must not be below weight scale {self.w_scale}"
            )
        self._threshold = int(threshold * self.w_scale) / self.w_scale
        self.tau_rho = tau_grad * self._threshold
        self.scale_rho = scale_grad
        self.per_neuron_param = bool(per_neuron_param)
        self.shared_param = bool(shared_param) and not self.per_neuron_param
        self.persistent_state = persistent_state
        self.requires_grad = requires_grad
        self.debug = False
        self.complex = complex
        self._lazy: dict[str, tuple[float, float]] = {}
        self._params_ready = self.shared_param
        self._drawn = self.shared_param
        self._placeholders: dict[str, torch.Tensor] = {}
        self._init_norm(norm, num_neurons)
        self.drop = dropout

    def _init_norm(self, norm, num_neurons) -> None:
        if not self.complex:
            self.norm = None if norm is None else norm(num_features=num_neurons)
            self._hook(self.norm)
            return
        self.real_norm = None if norm is None else norm()
        self.imag_norm = None if norm is None else norm()
        self._hook(self.real_norm)
        self._hook(self.imag_norm)

    def _hook(self, norm) -> None:
        if norm is not None and hasattr(norm, "pre_hook_fx"):
            norm.pre_hook_fx = self.quantize_8bit

    # ------------------------------------------------------------------ parameters and shape

    def _decay(self, name: str, value, jitter: float = 0.01) -> None:
        """Register decay ``name`` (a fraction; stored ×p_scale), lazily per channel if needed."""
        if self.shared_param:
            if not np.isscalar(value):
                raise NeuronConfigError(
                    f"expected {name} to be a scalar when shared_param is True; got {value!r}"
                )
            lo = value
        else:
            lo, hi = _range(name, value, jitter)
            self._lazy[name] = (lo, hi)
        param = torch.nn.Parameter(
            torch.tensor([self.p_scale * lo], dtype=torch.float32),
            requires_grad=self.requires_grad,
        )
        self.register_parameter(name, param)

    def _draw(self, pshape: tuple[int, ...]) -> dict[str, torch.Tensor]:
        """Every lazy parameter drawn uniformly in its ``[min, max]`` with shape ``pshape``
        (×p_scale, on the CPU generator as lava-dl draws them)."""
        return {name: self.p_scale * (lo + (hi - lo) * torch.rand(pshape, dtype=torch.float32))
                for name, (lo, hi) in self._lazy.items()}

    def _materialize(self, shape: tuple[int, ...]) -> None:
        """Give the lazy parameters their final shape now, holding their lower bound; the
        random values are drawn at the first forward (:meth:`_draw_pending`), as lava-dl
        draws them, so the same seed gives the same network."""
        if self._params_ready:
            return
        pshape = tuple(shape) if self.per_neuron_param else (shape[0],)
        for name in self._lazy:
            param = getattr(self, name)
            param.data = param.data.reshape(-1)[:1].expand(pshape).clone()
        self._params_ready = True
        self.clamp()
        self._placeholders = {name: _mark(getattr(self, name)) for name in self._lazy}

    def keep_values(self) -> None:
        """The parameters were set from outside (a netlist, a converter): never draw them."""
        self._drawn = True

    def _draw_pending(self) -> None:
        """Draw the lazy parameters' values once, at the first forward (lava-dl's order: after
        every weight of the network, in forward order); values set by hand or loaded are kept."""
        if self._drawn or not self._params_ready:
            return
        self._drawn = True
        if not self._lazy:
            return
        drawn = self._draw(tuple(getattr(self, next(iter(self._lazy))).shape))
        for name, value in drawn.items():  # (drawn anyway: the random-number order stays)
            param = getattr(self, name)
            if _unchanged(param, self._placeholders.get(name)):  # not set by hand since
                param.data = value.to(param.device)
        self.clamp()

    def set_channels(self, num_channels: int) -> None:
        """Create per-channel parameters (and norm statistics) for ``num_channels`` channels now."""
        for norm in self._norms():
            if hasattr(norm, "set_num_features"):
                norm.set_num_features(num_channels)
        if not self.per_neuron_param:
            self._materialize((int(num_channels),))

    def set_shape(self, shape) -> None:
        """Fix the per-sample neuron shape ``(C,)`` or ``(C, H, W)`` and create parameters now."""
        shape = torch.Size(int(n) for n in shape)
        if len(shape) == 0:
            raise NeuronShapeError("a neuron shape needs at least one (channel) dimension")
        if self.shape is not None and tuple(self.shape) != tuple(shape):
            raise NeuronShapeError(
                f"{type(self).__module__}.Neuron has shape {list(self.shape)}; "
                f"cannot change it to {list(shape)}"
            )
        self.shape = shape
        self.num_neurons = math.prod(shape)
        self.set_channels(shape[0])
        self._materialize(tuple(shape))

    def _norms(self):
        names = ("real_norm", "imag_norm") if self.complex else ("norm",)
        return [n for n in (getattr(self, k, None) for k in names) if n is not None]

    def _check_input(self, x: torch.Tensor) -> None:
        """Fix the shape on the first call; afterwards insist on the same per-sample shape."""
        if x.dim() < 3:
            raise NeuronShapeError(
                f"expected an input of at least 3 dimensions [batch, *neurons, time]; "
                f"got shape {list(x.shape)}"
            )
        if self.shape is None:
            self.set_shape(x.shape[1:-1])
        elif tuple(x.shape[1:-1]) != tuple(self.shape):
            raise NeuronShapeError(
                f"{type(self).__module__}.Neuron expected input of shape "
                f"[batch, {', '.join(map(str, self.shape))}, time]; got {list(x.shape)}"
            )
        self._draw_pending()

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        """Loaded per-channel values are kept (the first forward still draws, so the
        random-number order stays lava-dl's).  A one-element value for parameters not drawn yet
        is what lava-dl saves before its first forward: it loads (broadcast) and the first
        forward draws over it, as lava-dl does."""
        state_dict = dict(state_dict)
        undrawn, shaped = [], self._params_ready
        for name in self._lazy:
            value = state_dict.get(prefix + name)
            if value is None:
                continue
            param = getattr(self, name)
            if self._pre_forward_value(name, value):
                state_dict[prefix + name] = value.reshape(-1)[:1].expand(param.shape)
                undrawn.append(name)
            elif not shaped:
                param.data = torch.empty(value.shape, dtype=param.dtype, device=param.device)
                self._params_ready = True
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)
        for name in undrawn:
            self._placeholders[name] = _mark(getattr(self, name))

    def _pre_forward_value(self, name: str, value: torch.Tensor) -> bool:
        """``value`` is a single element saved before a first forward (lava-dl's shape then)."""
        if self._drawn or value.numel() != 1:
            return False
        param = getattr(self, name)
        return not self._params_ready or (param.numel() > 1 and name in self._placeholders)

    # ------------------------------------------------------------------------------ states

    def _states(self, x: torch.Tensor, names: tuple[str, ...]) -> list[torch.Tensor | None]:
        """Persistent states for input ``x`` (``[N, *S]``); None each when not persistent.

        A one-element state broadcasts to the batch; a state of another batch size restarts
        from its initial value (lava-dl semantics).
        """
        if not self.persistent_state:
            return [None] * len(names)
        want = tuple(x.shape[:-1])
        out = []
        for name in names:
            state = getattr(self, name)
            if tuple(state.shape) != want:
                init = state.reshape(-1)[:1] if state.numel() == 1 else self._initial(name, state)
                state = init.to(x.dtype).expand(want).clone()
                setattr(self, name, state)
            out.append(state)
        return out

    def _initial(self, name: str, like: torch.Tensor) -> torch.Tensor:
        value = self._threshold if name == "threshold_state" else 0.0
        return torch.tensor([value], dtype=like.dtype, device=like.device)

    def _store(self, **states: torch.Tensor) -> None:
        """Keep the last step of each trace as the state for the next call (persistent only)."""
        if self.persistent_state:
            for name, trace in states.items():
                setattr(self, name, trace[..., -1].detach().clone())

    def _run_family(self, family, x, *params, **kwargs):
        """Spikes of ``x`` through ``family.dynamics`` (the family's one home in
        :mod:`slayerc.runtime.neurons`), with this neuron's scale, graded flag and, when
        persistent, its carried states (stored back afterwards); then dropout."""
        first = x[0] if isinstance(x, tuple) else x
        states = {}
        if self.persistent_state:
            states = dict(zip(family.STATES, self._states(first, family.STATES)))
        s, new = family.dynamics(x, *params, scale=self.s_scale, graded=self.graded_spike,
                                 **states, **kwargs)
        if self.persistent_state:
            for name in family.STATES:
                setattr(self, name, new[name])
        return self.drop(s) if self.drop is not None else s

    def _fired(self, s: torch.Tensor) -> torch.Tensor:
        return (s[..., -1] > 0).to(s.dtype).detach()

    # ------------------------------------------------------------------- lava-dl public API

    @property
    def threshold(self):
        """The (quantized) spike threshold in slayer units."""
        return self._threshold

    def quantize_8bit(self, weight: torch.Tensor, descale: bool = False) -> torch.Tensor:
        """8-bit weight quantization: step ``2/w_scale``, clamped to ``[−256, 254]/w_scale``.

        With ``descale=True`` the integer mantissas (×``w_scale``) are returned.  Straight-through
        gradient.  Blocks install it as the synapse ``pre_hook_fx``.
        """
        lo, hi = WEIGHT_MANT
        q = quantize(weight, step=2 / self.w_scale).clamp(lo / self.w_scale, hi / self.w_scale)
        return q * self.w_scale if descale else q

    @property
    def weight_exponent(self) -> int:
        """``log2(s_scale // w_scale) − 6`` (0 for the default scales)."""
        return int(np.log2(self.s_scale // self.w_scale) - 6)

    @property
    def v_th_mant(self) -> int:
        """Threshold mantissa ``int(θ·w_scale)``."""
        return int(self.threshold * self.w_scale)

    @property
    def scale(self) -> int:
        """Scale between slayer values and hardware values (``w_scale``)."""
        return self.w_scale

    @property
    def device(self) -> torch.device:
        """The device the neuron's parameters (or buffers) live on."""
        for t in self.parameters():
            return t.device
        for t in self.buffers():
            return t.device
        return torch.device("cpu")

    def _cx(self, name: str):
        """Hardware integer of a decay parameter: np.int64 scalar, or a flat array if not shared."""
        self.clamp()
        val = quantize(getattr(self, name)).detach().cpu().numpy().astype(np.int64).reshape(-1)
        return val[0] if len(val) == 1 else val

    def clamp(self) -> None:
        """Clamp learnable parameters to their valid range (models override)."""
