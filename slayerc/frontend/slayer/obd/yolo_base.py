"""YOLO heads, targets and loss for temporal (SDNN) object detection (``slayer.obd``).

Raw head output ``[N, A·(5 + classes), H, W, T]`` is viewed as ``[N, A, H, W, 5 + classes, T]``
(:meth:`YOLOBase.yolo_raw`).  Anchors are ``[scales, A, 2]`` widths/heights in grid cells of
their head.  A raw prediction ``(tx, ty, tw, th, to, class logits)`` at cell ``(i, j)`` of an
``H × W`` head is the box (fractions of the frame)::

    x = (σ(tx) + j)/W,  y = (σ(ty) + i)/H,  w = exp(min(tw, clamp_max))·a_w/W,
    h = exp(min(th, clamp_max))·a_h/H,  objectness σ(to),  class probabilities softmax(logits)

:class:`YOLOtarget` writes each ground-truth box into the cell holding its centre, on the best
anchor (largest :func:`wh_iou` of the box size with the anchor) of each scale; a target row is
``(x offset in the cell, y offset, w·W, h·H, 1, label)``; other anchors with IoU above
``ignore_iou_thres`` get objectness −1 (ignored by the loss), the rest 0 (no object).

:class:`YOLOLoss` sums, per head and time step, with the ``lambda_*`` weights:
coordinates (MSE of ``(σ(tx), σ(ty), tw, th)`` against ``(x offset, y offset,
log(w_cells/a_w), log(h_cells/a_h))``), objectness on object cells (BCE with logits against
``(1 − α) + α·max(CIoU, 0)``), no-object (BCE with logits against 0), classes (cross entropy
with label smoothing) and IoU (mean of ``(1 − CIoU)²``).  Terms over an empty set are 0.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .boundingbox.metrics import bbox_ciou, wh_iou
from .boundingbox.utils import tensor_from_annotation

__all__ = ["YOLOtarget", "YOLOLoss", "YOLOBase"]

DEFAULT_ANCHORS = [
    [(0.28, 0.22), (0.38, 0.48), (0.90, 0.78)],
    [(0.07, 0.15), (0.15, 0.11), (0.14, 0.29)],
    [(0.02, 0.03), (0.04, 0.07), (0.08, 0.06)],
]


def _grid(h: int, w: int, like: torch.Tensor):
    ys = torch.arange(h, dtype=like.dtype, device=like.device)
    xs = torch.arange(w, dtype=like.dtype, device=like.device)
    return torch.meshgrid(ys, xs, indexing="ij")


def _yolo(x: torch.Tensor, anchors: torch.Tensor, clamp_max: float = 5.0) -> torch.Tensor:
    """Boxes ``[N, A, H, W, 5 + classes, T]`` of raw predictions of the same shape."""
    _, _, h, w, _, _ = x.shape
    gy, gx = (g[None, None, :, :, None, None] for g in _grid(h, w, x))
    aw = anchors[:, 0][None, :, None, None, None, None]
    ah = anchors[:, 1][None, :, None, None, None, None]
    xc = (torch.sigmoid(x[..., 0:1, :]) + gx) / w
    yc = (torch.sigmoid(x[..., 1:2, :]) + gy) / h
    bw = torch.exp(x[..., 2:3, :].clamp(max=clamp_max)) * aw / w
    bh = torch.exp(x[..., 3:4, :].clamp(max=clamp_max)) * ah / h
    conf = torch.sigmoid(x[..., 4:5, :])
    classes = torch.softmax(x[..., 5:, :], dim=-2)
    return torch.cat([xc, yc, bw, bh, conf, classes], dim=-2)


class YOLOtarget:
    """Ground-truth boxes → YOLO target tensors, one ``[A, H, W, 6]`` per scale.

    ``scales`` are the heads' ``(W, H)`` grid sizes, in the order of ``anchors``.
    """

    def __init__(self, anchors, scales, num_classes: int, ignore_iou_thres: float = 0.5):
        anchors = torch.as_tensor(anchors, dtype=torch.float32).cpu()
        if len(anchors) != len(scales):
            raise ValueError(f"{len(anchors)} anchor sets for {len(scales)} scales")
        self.anchors, self.scales, self.num_classes = anchors, scales, num_classes
        self.num_scales, self.num_anchors = anchors.shape[:2]
        self.flat_anchors = anchors.reshape(-1, 2)
        self.ignore_iou_thres = ignore_iou_thres

    def forward(self, targets: torch.Tensor) -> list[torch.Tensor]:
        """Targets of one frame's ``[n, 6]`` boxes ``(x, y, w, h, confidence, label)``."""
        tgts = [torch.zeros(self.num_anchors, h, w, 6) for (w, h) in self.scales]
        for box in targets.reshape(-1, 6).tolist():
            self._assign(tgts, box)
        return tgts

    __call__ = forward

    def _assign(self, tgts, box):
        x, y, w, h, _, label = box
        ious = wh_iou(torch.tensor([[w, h]]), self.flat_anchors).flatten()
        placed = [False] * self.num_scales
        for idx in torch.argsort(ious, descending=True).tolist():
            s, a = divmod(idx, self.num_anchors)
            sw, sh = self.scales[s]
            i, j = min(int(y * sh), sh - 1), min(int(x * sw), sw - 1)
            cell = tgts[s][a, i, j]
            if cell[4] != 1 and not placed[s]:
                cell[:] = torch.tensor([x * sw - j, y * sh - i, w * sw, h * sh, 1.0, label])
                placed[s] = True
            elif cell[4] != 1 and ious[idx] > self.ignore_iou_thres:
                cell[4] = -1

    def collate_fn(self, batch):
        """Collate ``(frames [C, H, W, T], [annotation per frame])`` samples into frames
        ``[N, C, H, W, T]``, targets (per scale ``[N, A, H, W, 6, T]``) and boxes (per time step,
        a list over the batch of ``[n, 6]`` tensors)."""
        images, targets, boxes = [], [], []
        for image, frame_annotations in batch:
            images.append(image)
            frame_boxes = [tensor_from_annotation(ann) for ann in frame_annotations]
            frame_targets = [self.forward(b) for b in frame_boxes]
            boxes.append(frame_boxes)
            targets.append([torch.stack([t[s] for t in frame_targets], dim=-1)
                            for s in range(self.num_scales)])
        steps = len(boxes[0])
        return (torch.stack(images),
                [torch.stack([t[s] for t in targets]) for s in range(self.num_scales)],
                [[b[t] for b in boxes] for t in range(steps)])


def _mean_or_zero(x: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return x.mean() if x.numel() else like.sum() * 0


class YOLOLoss(torch.nn.Module):
    """YOLO loss of raw head outputs against :class:`YOLOtarget` targets; ``forward`` returns
    ``(loss, per-term sums [coord, obj, noobj, cls, iou])``."""

    def __init__(self, anchors, lambda_coord: float = 1, lambda_noobj: float = 10.0,
                 lambda_obj: float = 5.0, lambda_cls: float = 1.0, lambda_iou: float = 1.0,
                 alpha_iou: float = 0.25, startup_samples: int = 10000,
                 label_smoothing: float = 0.1) -> None:
        super().__init__()
        self.register_buffer("anchors", torch.as_tensor(anchors, dtype=torch.float32))
        self.num_scales, self.num_anchors = self.anchors.shape[:2]
        self.lambda_coord, self.lambda_noobj = float(lambda_coord), float(lambda_noobj)
        self.lambda_obj, self.lambda_cls = float(lambda_obj), float(lambda_cls)
        self.lambda_iou, self.alpha_iou = float(lambda_iou), float(alpha_iou)
        self.label_smoothing = label_smoothing
        self.startup_samples = startup_samples
        self.samples = 0

    def forward(self, predictions, targets):
        """Sum over heads and time steps of :meth:`forward_scale`."""
        loss, terms = 0, []
        for t in range(predictions[0].shape[-1]):
            for p, tgt, a in zip(predictions, targets, self.anchors):
                value, parts = self.forward_scale(p[..., t], tgt[..., t].to(p.device), a)
                loss = loss + value
                terms.append([float(v.detach()) for v in parts])
        self.samples += predictions[0].shape[0]
        return loss, torch.tensor(terms).sum(dim=0)

    def forward_scale(self, predictions, targets, anchors):
        """Loss of one head at one time step: ``(total, [coord, obj, noobj, cls, iou])``."""
        obj, noobj = targets[..., 4] == 1, targets[..., 4] == 0
        p, t = predictions[obj], targets[obj]
        noobj_loss = _mean_or_zero(F.binary_cross_entropy_with_logits(
            predictions[..., 4][noobj], targets[..., 4][noobj], reduction="none"), predictions)
        anchor = anchors.reshape(1, -1, 1, 1, 2).expand(*predictions.shape[:4], 2)[obj]
        box_pred = torch.cat([torch.sigmoid(p[:, 0:2]), torch.exp(p[:, 2:4]) * anchor], dim=-1)
        ciou = bbox_ciou(box_pred, t[:, :4])
        goal = (1 - self.alpha_iou) + self.alpha_iou * ciou.detach().clamp(min=0)
        obj_loss = _mean_or_zero(F.binary_cross_entropy_with_logits(
            p[:, 4], goal * t[:, 4], reduction="none"), predictions)
        iou_loss = _mean_or_zero((1 - ciou) ** 2, predictions)
        coord_pred = torch.cat([torch.sigmoid(p[:, 0:2]), p[:, 2:4]], dim=-1)
        coord_goal = torch.cat([t[:, 0:2], torch.log(t[:, 2:4] / anchor + 1e-16)], dim=-1)
        coord_loss = _mean_or_zero((coord_pred - coord_goal) ** 2, predictions)
        cls_loss = (F.cross_entropy(p[:, 5:], t[:, 5].long(),
                                    label_smoothing=self.label_smoothing)
                    if len(p) else predictions.sum() * 0)
        parts = [self.lambda_coord * coord_loss, self.lambda_obj * obj_loss,
                 self.lambda_noobj * noobj_loss, self.lambda_cls * cls_loss,
                 self.lambda_iou * iou_loss]
        return sum(parts), parts


class YOLOBase(torch.nn.Module):
    """Base of the temporal YOLO networks: anchors (buffer ``anchors``), box decoding and
    helpers.  ``num_output = A·(5 + num_classes)`` channels per head."""

    def __init__(self, num_classes: int = 20, anchors=None, clamp_max: float = 5.0):
        super().__init__()
        anchors = DEFAULT_ANCHORS if anchors is None else anchors
        self.register_buffer("anchors", torch.tensor(anchors, dtype=torch.float32))
        self.num_scales, self.num_anchors = self.anchors.shape[:2]
        self.num_output = self.num_anchors * (5 + num_classes)
        self.num_classes = num_classes
        self.clamp_max = clamp_max
        self.scale = None

    def yolo(self, x: torch.Tensor, anchors: torch.Tensor) -> torch.Tensor:
        """Boxes ``[N, A·H·W, 5 + classes, T]`` of a raw ``[N, A, H, W, P, T]`` head."""
        n, _, _, _, p, t = x.shape
        return _yolo(x, anchors, self.clamp_max).reshape(n, -1, p, t)

    def yolo_raw(self, x: torch.Tensor) -> torch.Tensor:
        """``[N, A·P, H, W, T]`` → ``[N, A, H, W, P, T]``."""
        return x.unflatten(1, (self.num_anchors, -1)).permute(0, 1, 3, 4, 2, 5)

    def init_model(self, input_dim=(448, 448, 3)) -> None:
        """Run one random frame of ``(H, W, C)`` to set :attr:`scale` (each head's ``(W, H)``)."""
        h, w, c = input_dim
        was_training = self.training
        self.train()
        with torch.no_grad():
            outputs = self.forward(torch.rand(1, c, h, w, 1, device=self.anchors.device))[0]
        self.train(was_training)
        self.scale = [tuple(o.shape[2:4][::-1]) for o in outputs]

    def validate_gradients(self) -> None:
        """Zero every gradient when any is NaN or infinite (skips a bad step)."""
        grads = [p.grad for p in self.parameters() if p.grad is not None]
        if any(not torch.isfinite(g).all() for g in grads):
            self.zero_grad()

