"""Shared pieces of the SDNN YOLO models: neuron parameters, quantizer, blocks, counting."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ... import block, loss, neuron, utils

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def quantize_8bit(x: torch.Tensor, scale: int = 1 << 6, descale: bool = False) -> torch.Tensor:
    """The models' synapse pre-hook: 8-bit :func:`slayer.utils.quantize_hook_fx`."""
    return utils.quantize_hook_fx(x, scale=scale, num_bits=8, descale=descale)


def sdnn_params(threshold: float, tau_grad: float, scale_grad: float) -> dict:
    """Sigma-delta ReLU neuron parameters (layer-wise, fixed threshold)."""
    return {"threshold": threshold, "tau_grad": tau_grad, "scale_grad": scale_grad,
            "requires_grad": False, "shared_param": True, "activation": F.relu}


def normed(params: dict) -> dict:
    """The parameters with a mean-only batch norm."""
    return {**params, "norm": neuron.norm.MeanOnlyBatchNorm}


def conv(params, cin, cout, k, stride=1, weight_scale=1, hook=quantize_8bit):
    """A sigma-delta conv block: padding k//2, weight norm, no delay shift."""
    return block.sigma_delta.Conv(params, cin, cout, k, padding=k // 2, stride=stride,
                                  weight_scale=weight_scale, weight_norm=True,
                                  delay_shift=False, pre_hook_fx=hook)


def run(blocks, x, count, monitor: loss.SparsityEnforcer | None, watch=lambda b: True):
    """Run ``blocks`` in order, appending each output's event rate to ``count`` and, for the
    blocks ``watch`` selects, the output to the sparsity ``monitor``."""
    for b in blocks:
        x = b(x)
        if isinstance(x, torch.Tensor):  # not while torch.fx traces the model (a Proxy)
            count.append(utils.event_rate(x))
        if monitor is not None and watch(b):
            monitor.append(x)
    return x


def normalize(net: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    """ImageNet normalisation of ``[N, 3, H, W, T]`` RGB frames."""
    mean = torch.tensor(IMAGENET_MEAN, dtype=x.dtype, device=x.device).reshape(1, 3, 1, 1, 1)
    std = torch.tensor(IMAGENET_STD, dtype=x.dtype, device=x.device).reshape(1, 3, 1, 1, 1)
    return (x - mean) / std


def grad_norms(blocks) -> list[float]:
    """Gradient norm of each block's synapse that learns."""
    out = []
    for b in blocks:
        syn = getattr(b, "synapse", None)
        if syn is not None and any(p.requires_grad for p in syn.parameters()):
            out.append(syn.grad_norm)
    return out


def plot_grad_flow(grad: list[float], path: str) -> None:
    """Save a log plot of the gradient norms to ``path + 'gradFlow.png'`` (matplotlib)."""
    import matplotlib.pyplot as plt

    plt.figure()
    plt.semilogy(grad)
    plt.savefig(path + "gradFlow.png")
    plt.close()


def load_matching(net: torch.nn.Module, model_file: str) -> list[str]:
    """Load the tensors of a saved state dict whose shapes match (an output layer of another
    class count is skipped); returns the keys not loaded."""
    saved = torch.load(model_file, map_location=net.anchors.device)  # nosec: user's own file
    own = net.state_dict()
    usable = {k: v for k, v in saved.items() if k in own and own[k].shape == v.shape}
    net.load_state_dict(usable, strict=False)
    return sorted(set(saved) - set(usable))
