"""Sigma-delta YOLO-KP for Loihi 2 (lava-dl's ``yolo_kp.Network``): a single-head strided
network (convs 3→16→32→64→128 with stride 2, 128→256, 256→256 stride 2, 256→512, 1×1 512→256,
256→512), a 1×1 output conv and ``Sigma`` at 1/32 of the input.  ``forward`` as
:mod:`.tiny_yolov3_str` with one head; module names and state-dict keys are lava-dl's.

``export_hdf5(filename)`` writes the netx netlist (lava-dl's layout): the input and conv blocks
through their own ``export_hdf5``, then the head as a ``conv`` layer whose sigma-delta neuron
group (the last block's parameters) has ``sigma_output = True``.  Run one forward first (the
conv shapes follow the input size).

``ir_forward(x)`` is the part that runs on the chip (normalised frames to the head's ``Sigma``
output): ``slayerc.compile(net.eval(), x, output="yolo_kp.net")`` traces it and compiles it for
``loihi2``; the normalisation before it and the box decoding after it stay on the host.
"""

from __future__ import annotations

import torch

from ... import block, dendrite, loss, synapse
from ...block import _export as ex
from ..yolo_base import YOLOBase
from . import _common as c

ANCHORS = [[(0.28, 0.22), (0.38, 0.48), (0.90, 0.78)]]


class Network(YOLOBase):
    """The network (see the module docstring)."""

    def __init__(self, num_classes: int = 80, anchors=None, threshold: float = 0.1,
                 tau_grad: float = 0.1, scale_grad: float = 0.1, clamp_max: float = 5.0):
        super().__init__(num_classes, ANCHORS if anchors is None else anchors, clamp_max)
        sdnn = c.sdnn_params(threshold, tau_grad, scale_grad)
        nrm = c.normed(sdnn)
        self.input_blocks = torch.nn.ModuleList([block.sigma_delta.Input(sdnn)])
        self.blocks = torch.nn.ModuleList([
            c.conv(nrm, 3, 16, 3, 2), c.conv(nrm, 16, 32, 3, 2), c.conv(nrm, 32, 64, 3, 2),
            c.conv(nrm, 64, 128, 3, 2, 3), c.conv(nrm, 128, 256, 3, 1, 3),
            c.conv(nrm, 256, 256, 3, 2, 3), c.conv(nrm, 256, 512, 3, 1, 3),
            c.conv(nrm, 512, 256, 1, 1, 3), c.conv(nrm, 256, 512, 3, 1, 3)])
        self.heads = torch.nn.ModuleList([
            synapse.Conv(512, self.num_output, 1, padding=0, stride=1, weight_norm=False,
                         pre_hook_fx=c.quantize_8bit),
            dendrite.Sigma()])

    def forward(self, input: torch.Tensor, sparsity_monitor: loss.SparsityEnforcer | None = None):
        """``(output, count)``: raw head (training) or boxes (eval), and event rates."""
        count: list[float] = []
        head = self.yolo_raw(self._head(c.normalize(self, input), count, sparsity_monitor))
        output = [head] if self.training else self.yolo(head, self.anchors[0])
        return output, torch.tensor(count, device=input.device).reshape(1, -1)

    def ir_forward(self, x: torch.Tensor) -> torch.Tensor:
        """The part that runs on the chip, which ``slayerc.compile`` / ``trace`` trace: the
        normalised frames ``[N, 3, H, W, T]`` to the head's ``Sigma`` output
        ``[N, A·(5 + classes), H/32, W/32, T]``.  The ImageNet normalisation before it and the
        box decoding after it run on the host."""
        return self._head(x, [], None)

    def _head(self, x, count, sparsity_monitor):
        x = c.run(self.input_blocks, x, count, None)
        x = c.run(self.blocks, x, count, sparsity_monitor)
        return c.run(self.heads, x, count, None)

    @ex.through_writer
    def export_hdf5_head(self, handle) -> None:
        """Write the output conv + sigma head as a netx ``conv`` layer group."""
        conv = self.heads[0]
        last = self.blocks[-1]
        shape = last.export_shape()
        ex.write_type(handle, "conv")
        ex.write_shape(handle, (conv.out_channels, *shape[1:]))
        ex.write_conv_geometry(handle, conv)
        ex.write_weight(handle, conv, dims=4)
        ex.write_neuron(handle, last.neuron, {"sigma_output": True})

    def export_hdf5(self, filename: str) -> None:
        """Write the network as a netx hdf5 netlist (see the module docstring)."""
        import h5py

        with h5py.File(filename, "w") as f:
            layer = f.create_group("layer")
            blocks = [*self.input_blocks, *self.blocks]
            for i, b in enumerate(blocks):
                b.export_hdf5(layer.create_group(str(i)))
            self.export_hdf5_head(layer.create_group(str(len(blocks))))

    def grad_flow(self, path: str) -> list[float]:
        """Gradient norm per learnable layer, plotted to ``path + 'gradFlow.png'``."""
        grad = c.grad_norms(self.blocks)
        c.plot_grad_flow(grad, path)
        return grad

    def load_model(self, model_file: str) -> None:
        """Load a saved state dict, skipping tensors of another shape."""
        for key in c.load_matching(self, model_file):
            print(f"Model parameter {key} was not loaded.")
