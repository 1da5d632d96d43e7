"""Recurrent loops of a neuron with a feedback synapse (``slayer.utils.recurrent``).

All three functions compute, for a dendritic input ``z`` ``[N, C, T]``, a neuron ``N`` called
one step at a time (build it with ``persistent_state=True`` so that its state carries from step
to step) and a ``C × C`` recurrent synapse ``R`` (its ``pre_hook_fx`` applied to the weight):

    s[−1] = 0,    s[t] = N(z[t] + R · s[t−1])

and return the spikes ``s`` ``[N, C, T]``.  ``custom_recurrent`` is the fast form (one matrix
product per step, gradients by backpropagation through time to ``z``, the recurrent weight and
the neuron's parameters); ``custom_recurrent_ground_truth_1`` calls the synapse module itself and
``custom_recurrent_ground_truth_2`` the matrix product, as references for tests.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

__all__ = [
    "custom_recurrent", "custom_recurrent_ground_truth_1", "custom_recurrent_ground_truth_2",
    "CustomRecurrent",
]


def _recurrent_matrix(recurrent_synapse: torch.nn.Module) -> torch.Tensor:
    """The ``[C_out, C_in]`` recurrent weight after the synapse's ``pre_hook_fx``."""
    weight = recurrent_synapse.weight
    matrix = weight.reshape(weight.shape[0], weight.shape[1])
    hook = getattr(recurrent_synapse, "pre_hook_fx", None)
    return hook(matrix) if hook is not None else matrix


def _loop(z: torch.Tensor, neuron: Callable, feedback: Callable) -> torch.Tensor:
    spikes = []
    spike = torch.zeros(z.shape[:-1] + (1,), dtype=z.dtype, device=z.device)
    for t in range(z.shape[-1]):
        spike = neuron(z[..., t:t + 1] + feedback(spike))
        spikes.append(spike)
    return torch.cat(spikes, dim=-1)


def custom_recurrent_ground_truth_1(z, neuron, recurrent_synapse):
    """Reference loop: the feedback is the synapse module applied to the previous spikes."""
    return _loop(z, neuron, recurrent_synapse)


def custom_recurrent_ground_truth_2(z, neuron, recurrent_synapse):
    """Reference loop: the feedback is the product with the hooked recurrent matrix."""
    matrix = _recurrent_matrix(recurrent_synapse)
    return _loop(z, neuron, lambda s: torch.matmul(s[..., 0], matrix.T)[..., None])


def custom_recurrent(z, neuron, recurrent_synapse):
    """Spikes ``[N, C, T]`` of ``neuron`` driven by ``z`` plus its own delayed feedback through
    ``recurrent_synapse`` (see the module docstring)."""
    return CustomRecurrent.apply(z, neuron, _recurrent_matrix(recurrent_synapse))


class CustomRecurrent:
    """``CustomRecurrent.apply(z, neuron, recurrent_mat)``: the loop with a given ``[C, C]``
    matrix (lava-dl's autograd-function entry point); gradients come from autograd."""

    @staticmethod
    def apply(z: torch.Tensor, neuron: Callable, recurrent_mat: torch.Tensor) -> torch.Tensor:
        """Run the recurrent loop (see the module docstring)."""
        matrix_t = recurrent_mat.to(z.device).transpose(0, 1)
        return _loop(z, neuron, lambda s: torch.matmul(s[..., 0], matrix_t)[..., None])
