"""Affine, Recurrent and KWTA blocks (dense blocks with a neuron-level twist).

Recurrent and KWTA run the neuron one time step at a time, with its state forced persistent
(lava-dl does the same, by writing ``persistent_state=True`` into the caller's dict; slayerc does
not edit the dict).  Gradients come from autograd through the time loop (BPTT).
"""

from __future__ import annotations

import torch

from ..synapse.layer import ExportError, SynapseShapeError
from . import _export as ex
from .base import _UNSET, Block, BlockError, _add, _t, _unsqueeze

AFFINE_VTH_MANT = (1 << 18) - 1
"""``vThMant`` exported for an Affine block with dynamics: a threshold it never reaches."""


class AbstractAffine(Block):
    """Affine block: ``z = W x``; with ``dynamics``, the neuron's second trace (CUBA voltage,
    RF imaginary state) without spike or reset; else ``z`` (``z[1]`` for a complex synapse)."""

    def __init__(self, neuron_params, in_neurons, out_neurons, weight_scale=1, weight_norm=False,
                 pre_hook_fx=_UNSET, dynamics=True, mask=None, count_log=False):
        super().__init__()
        self.count_log = count_log
        self.dynamics = dynamics
        self._register_mask(mask)
        self.neuron = self._make_neuron(neuron_params)
        # a negative threshold disables every reset in the dynamics (as lava-dl's Affine)
        self.neuron._threshold = -1
        self.delay = None
        self.synapse = self.synapses.Dense(
            in_neurons, out_neurons, weight_scale, weight_norm, pre_hook_fx=self._hook(pre_hook_fx)
        )
        self._static_shape = (int(out_neurons),)
        if hasattr(self.neuron, "set_channels"):
            self.neuron.set_channels(int(out_neurons))

    def forward(self, x):
        """Membrane trace (or synaptic current) of an ``NCT`` input."""
        mask = None if self.mask is None else self._mask_for(self._real(self.synapse).shape)
        z = self.synapse(x, mask)
        if self.dynamics:
            x = self.neuron.dynamics(z)[1]
        else:
            x = z[1] if isinstance(z, tuple) else z
        return (x, None) if self.count_log else x

    @staticmethod
    def _real(synapse):
        return synapse.real if synapse.complex else synapse

    @ex.through_writer
    def export_hdf5(self, handle):
        """Writes a ``dense`` group; with dynamics its neuron never fires (``vThMant`` 2^18−1)."""
        ex.write_type(handle, "dense")
        ex.write_shape(handle, self.export_shape())
        ex.write_dense_features(handle, self.synapse)
        mask = None if self.mask is None else self._mask_for(self._real(self.synapse).shape)
        ex.write_weight(handle, self.synapse, mask=mask)
        if self.dynamics:
            ex.write_neuron(handle, self.neuron, {"vThMant": AFFINE_VTH_MANT})


def _matrix(synapse, fresh=True):
    """The ``[out, in]`` effective weight matrix of a dense synapse (pair if complex)."""
    if synapse.complex:
        return (_matrix(synapse.real, fresh), _matrix(synapse.imag, fresh))
    w = synapse.effective_weight(fresh=fresh)
    return w.reshape(w.shape[0], -1)


def _feedback(spike, matrix):
    if isinstance(matrix, tuple):
        return (spike @ matrix[0].T, spike @ matrix[1].T)
    return spike @ matrix.T


class _Looped(Block):
    """A dense block whose neuron runs step by step with recurrent feedback ``R·s[t−1] + b``."""

    def _setup_loop(self, neuron_params, out_neurons, count_log):
        self.count_log = count_log
        self.num_neurons = int(out_neurons)
        self.register_buffer("spike_state", torch.zeros(1, dtype=torch.float))
        self.persistent_state = True
        self.neuron = self._make_neuron(neuron_params, persistent_state=True)
        self._static_shape = (self.num_neurons,)

    def _initial_spike(self, z) -> torch.Tensor:
        """``s[−1]``: the last spikes of the previous call when the batch matches, else 0."""
        ref = z[0] if isinstance(z, tuple) else z
        shape = ref.shape[:-1]
        state = self.spike_state
        if state.shape == shape:
            return state.to(ref.dtype)
        return torch.zeros(shape, dtype=ref.dtype, device=ref.device)

    def _run(self, z, matrix, bias=None) -> torch.Tensor:
        ref = z[0] if isinstance(z, tuple) else z
        if ref.dim() != 3:
            raise SynapseShapeError(
                f"{type(self).__qualname__} expects an NCT input; its synapse gave shape "
                f"{list(ref.shape)}"
            )
        spike = self._initial_spike(z)
        outs = []
        for t in range(ref.shape[-1]):
            drive = _add(_t(z, t), _feedback(spike, matrix))
            if bias is not None:
                drive = _add(drive, bias)
            s = self.neuron(_unsqueeze(drive))
            spike = s[..., 0]
            outs.append(s)
        self.spike_state = spike.detach().clone()
        return torch.cat(outs, dim=-1)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # spike_state is a runtime state whose shape follows the batch; adopt the stored shape
        value = state_dict.get(prefix + "spike_state")
        if value is not None and value.shape != self.spike_state.shape:
            self.spike_state = torch.zeros_like(value, device=self.spike_state.device)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)


class AbstractRecurrent(_Looped):
    """Recurrent block: ``s[t] = f(W x[t] + R s[t−1])`` with learnable ``R``
    (``recurrent_synapse``); exported as ``dense_rec``."""

    def __init__(self, neuron_params, in_neurons, out_neurons, weight_scale=1, weight_norm=False,
                 pre_hook_fx=_UNSET, requires_grad=True, delay=False, delay_shift=None,
                 count_log=False):
        super().__init__()
        self.requires_grad = requires_grad
        self._setup_loop(neuron_params, out_neurons, count_log)
        self.bias = None
        self.delay = self._make_delay(delay)
        self._set_delay_shift(delay_shift)
        hook = self._hook(pre_hook_fx)
        self.input_synapse = self.synapses.Dense(
            in_neurons, out_neurons, weight_scale, weight_norm, pre_hook_fx=hook
        )
        self.recurrent_synapse = self.synapses.Dense(
            out_neurons, out_neurons, weight_scale, weight_norm, pre_hook_fx=hook
        )
        self._set_channels(self.num_neurons)

    def _set_channels(self, channels):
        if hasattr(self.neuron, "set_channels"):
            self.neuron.set_channels(channels)
        if self.delay is not None and hasattr(self.delay, "set_channels"):
            self.delay.set_channels(channels)

    def forward(self, x):
        """Forward of an ``NCT`` input."""
        z = self.input_synapse(x)
        if self.bias is not None:
            z = _add(z, self.bias)
        s = self._run(z, _matrix(self.recurrent_synapse))
        return self._log(self._post(s))

    @ex.through_writer
    def export_hdf5(self, handle):
        """Writes a ``dense_rec`` group (``weight`` and ``weight_rec``)."""
        if self.input_synapse.complex:
            raise ExportError("a Recurrent block with complex synapses has no netx layer type")
        shape = self.export_shape()
        ex.write_type(handle, "dense_rec")
        ex.write_shape(handle, shape)
        ex.write_dense_features(handle, self.input_synapse)
        ex.write_weight(handle, self.input_synapse)
        ex.write_weight(handle, self.recurrent_synapse, key="weight_rec")
        ex.write_norm_bias(handle, self.neuron)
        ex.write_delay(handle, self.delay, shape[0])
        ex.write_neuron(handle, self.neuron)


class AbstractKWTA(_Looped):
    """K-winners-take-all: ``s[t] = f(W x[t] + R s[t−1] + b)`` with ``R = (1+a)·I − 1``
    (``a`` = learnable ``self_excitation`` in [0, 1]) and ``b = θ(N−2K)/N/w_scale``, both
    8-bit quantized.  Exported as ``dense_rec`` with ``weight_rec = R``."""

    def __init__(self, neuron_params, in_neurons, out_neurons, num_winners, self_excitation=0.5,
                 weight_scale=1, weight_norm=False, pre_hook_fx=_UNSET, delay_shift=None,
                 requires_grad=True, count_log=False):
        super().__init__()
        if in_neurons is None or not 0 < num_winners <= out_neurons:
            raise BlockError(
                f"KWTA needs 0 < num_winners <= out_neurons; got num_winners={num_winners}, "
                f"out_neurons={out_neurons}"
            )
        self.requires_grad = requires_grad
        self.num_winners = int(num_winners)
        self.self_excitation = torch.nn.Parameter(
            torch.tensor([float(self_excitation)]), requires_grad=requires_grad
        )
        self._setup_loop(neuron_params, out_neurons, count_log)
        if getattr(self.neuron, "complex", False):
            raise BlockError(
                "KWTA needs a real-valued neuron; complex (RF) neurons are not supported"
            )
        self.delay = None
        self.bias = None
        self._set_delay_shift(delay_shift)
        self.synapse = self.synapses.Dense(
            in_neurons, out_neurons, weight_scale, weight_norm, pre_hook_fx=self._hook(pre_hook_fx)
        )
        if hasattr(self.neuron, "set_channels"):
            self.neuron.set_channels(self.num_neurons)

    def clamp(self):
        """Keep the self excitation in [0, 1]."""
        with torch.no_grad():
            self.self_excitation.data.clamp_(0, 1)

    def recurrent(self):
        """The quantized recurrent matrix ``R`` and bias ``b`` (float, slayer units)."""
        self.clamp()
        eye = torch.eye(self.num_neurons, device=self.self_excitation.device)
        weight = (1 + self.self_excitation) * eye - 1
        bias = torch.tensor(
            [self.neuron.threshold * (self.num_neurons - 2 * self.num_winners)
             / self.num_neurons / self.neuron.w_scale], device=weight.device,
        )
        return self.neuron.quantize_8bit(weight), self.neuron.quantize_8bit(bias)

    def forward(self, x):
        """Forward of an ``NCT`` input."""
        z = self.synapse(x)
        if self.bias is not None:
            z = z + self.bias
        weight, bias = self.recurrent()
        s = self._run(z, weight, bias)
        if self.delay_shift:
            s = self.step_delay(s)
        return self._log(s)

    @ex.through_writer
    def export_hdf5(self, handle):
        """Writes a ``dense_rec`` group with the KWTA matrix as ``weight_rec``."""
        with torch.no_grad():
            weight, bias = self.recurrent()
        if float(bias.abs().max()) != 0:
            raise ExportError(
                f"KWTA recurrent bias {float(bias[0])} is added to the neuron current every step; "
                "netx's bias enters the voltage instead, so it cannot be exported exactly"
            )
        ex.write_type(handle, "dense_rec")
        ex.write_shape(handle, self.export_shape())
        ex.write_dense_features(handle, self.synapse)
        ex.write_weight(handle, self.synapse)
        w_rec = (weight * self.neuron.w_scale).detach().cpu().numpy().astype("float32")
        handle.create_dataset("weight_rec", data=w_rec)
        ex.write_norm_bias(handle, self.neuron)
        ex.write_neuron(handle, self.neuron)
