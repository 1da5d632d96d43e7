"""Sigma-delta Tiny YOLOv3 (strided) for Loihi 2 (lava-dl's ``tiny_yolov3_str.Network``).

Input ``[N, 3, H, W, T]`` RGB frames in [0, 1], ImageNet-normalised, delta-encoded by a
sigma-delta ``Input``; a strided backbone (3→16→32→64→128 with stride 2, →256); head 1
(stride-2 conv 256, convs 512, 1024, 1×1 256, conv 512, 1×1 output conv + ``Sigma``) at
1/32 of the input, head 2 (1×1 128 + 2× unpool, concatenated with the backbone output, conv 256,
1×1 output conv + ``Sigma``) at 1/16.  Blocks use weight norm, mean-only batch norm, 8-bit
weights and no delay shift; module names and state-dict keys are lava-dl's.

``forward(x, sparsity_monitor=None)`` returns ``(output, count)``: in training mode the raw heads
``[N, A, H, W, 5 + classes, T]`` (for :class:`~slayerc.slayer.obd.YOLOLoss`), in eval mode the
boxes of both heads ``[N, boxes, 5 + classes, T]``; ``count`` is ``[1, layers]`` event rates.

``ir_forward(x)`` is the part that runs on the chip (normalised frames to the two heads'
``Sigma`` outputs): ``slayerc.compile(net.eval(), x)`` traces it.  The second head concatenates
channels (``tensor.concat``), which a netx netlist cannot hold, so this model compiles for the
``slayerc`` target (``.sir``, slayerc's runtimes); :mod:`.yolo_kp` is the single-head one that
compiles for ``loihi2``.
"""

from __future__ import annotations

import torch

from ... import block, dendrite, loss, synapse
from ..yolo_base import YOLOBase
from . import _common as c

ANCHORS = [[(0.28, 0.22), (0.38, 0.48), (0.90, 0.78)],
           [(0.07, 0.15), (0.15, 0.11), (0.14, 0.29)]]


class Network(YOLOBase):
    """The network (see the module docstring)."""

    def __init__(self, num_classes: int = 80, anchors=None, threshold: float = 0.1,
                 tau_grad: float = 0.1, scale_grad: float = 0.1, clamp_max: float = 5.0):
        super().__init__(num_classes, ANCHORS if anchors is None else anchors, clamp_max)
        sdnn = c.sdnn_params(threshold, tau_grad, scale_grad)
        nrm = c.normed(sdnn)
        out = self.num_output
        self.input_blocks = torch.nn.ModuleList([self._input(sdnn)])
        self.backend_blocks = torch.nn.ModuleList([
            c.conv(nrm, 3, 16, 3, 2), c.conv(nrm, 16, 32, 3, 2), c.conv(nrm, 32, 64, 3, 2),
            c.conv(nrm, 64, 128, 3, 2, weight_scale=3), c.conv(nrm, 128, 256, 3, 1, 3)])
        self.head1_backend = torch.nn.ModuleList([
            c.conv(nrm, 256, 256, 3, 2), c.conv(nrm, 256, 512, 3), c.conv(nrm, 512, 1024, 3),
            c.conv(nrm, 1024, 256, 1)])
        self.head1_blocks = torch.nn.ModuleList([
            c.conv(nrm, 256, 512, 3), self._output(512, out), dendrite.Sigma()])
        self.head2_backend = torch.nn.ModuleList([
            c.conv(nrm, 256, 128, 1), self._unpool(sdnn)])
        self.head2_blocks = torch.nn.ModuleList([
            c.conv(nrm, 384, 256, 3), self._output(256, out), dendrite.Sigma()])

    @staticmethod
    def _input(params):
        return block.sigma_delta.Input(params)

    @staticmethod
    def _unpool(params):
        return block.sigma_delta.Unpool(params, kernel_size=2, stride=2, weight_norm=True,
                                        delay_shift=False, pre_hook_fx=c.quantize_8bit)

    @staticmethod
    def _output(cin, cout):
        return synapse.Conv(cin, cout, 1, padding=0, stride=1, weight_norm=False,
                            pre_hook_fx=c.quantize_8bit)

    def forward(self, input: torch.Tensor, sparsity_monitor: loss.SparsityEnforcer | None = None):
        """``(output, count)``; see the module docstring."""
        count: list[float] = []
        heads = self._heads(c.normalize(self, input), count, sparsity_monitor)
        head1, head2 = (self.yolo_raw(h) for h in heads)
        if self.training:
            output = [head1, head2]
        else:
            output = torch.cat([self.yolo(head1, self.anchors[0]),
                                self.yolo(head2, self.anchors[1])], dim=1)
        return output, torch.tensor(count, device=input.device).reshape(1, -1)

    def ir_forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The part that runs on the chip, which ``slayerc.compile`` / ``trace`` trace: the
        normalised frames ``[N, 3, H, W, T]`` to both heads' ``Sigma`` outputs
        ``[N, A·(5 + classes), H, W, T]`` (1/32 and 1/16 of the input).  The ImageNet
        normalisation before it and the box decoding after it run on the host."""
        return self._heads(x, [], None)

    def _heads(self, x, count, sparsity_monitor):
        is_conv = lambda b: isinstance(b, block.sigma_delta.Conv)  # noqa: E731
        x = c.run(self.input_blocks, x, count, None)
        backend = c.run(self.backend_blocks, x, count, sparsity_monitor)
        h1 = c.run(self.head1_backend, backend, count, sparsity_monitor)
        head1 = c.run(self.head1_blocks, h1, count, sparsity_monitor, is_conv)
        h2 = c.run(self.head2_backend, h1, count, sparsity_monitor)
        head2 = c.run(self.head2_blocks, torch.cat([h2, backend], dim=1), count,
                      sparsity_monitor, is_conv)
        return head1, head2

    def grad_flow(self, path: str) -> list[float]:
        """Gradient norm per learnable layer, plotted to ``path + 'gradFlow.png'``."""
        grad = []
        for blocks in (self.backend_blocks, self.head1_backend, self.head2_backend,
                       self.head1_blocks, self.head2_blocks):
            grad += c.grad_norms(blocks)
        c.plot_grad_flow(grad, path)
        return grad

    def load_model(self, model_file: str) -> None:
        """Load a saved state dict, skipping tensors of another shape (e.g. the output layers
        of a model trained for another class count); prints what was not loaded."""
        for key in c.load_matching(self, model_file):
            print(f"Model parameter {key} was not loaded.")
