"""Object-detection metrics: IoU variants and average precision.

Boxes are ``(x_center, y_center, width, height)`` in the last dimension.

* ``bbox_iou(a, b)``: ``|A ∩ B| / |A ∪ B|`` for every pair, shape ``a.shape[:-1] + b.shape[:-1]``.
* ``wh_iou(a, b)``: the IoU of boxes ``(w, h)`` placed on the same centre.
* ``bbox_ciou(a, b)``: element-wise complete IoU (Zheng et al. 2020, arXiv:1911.08287):
  ``IoU − ρ²/c² − α·v`` with ``ρ`` the distance of the centres, ``c`` the diagonal of the
  smallest enclosing box, ``v = 4/π²·(atan(w_a/h_a) − atan(w_b/h_b))²`` and ``α = v/(1 − IoU + v)``
  (no gradient through ``α``).
* ``compute_ap(precision, recall)``: area under the precision–recall curve, COCO style: the
  precision envelope (best precision at recall ≥ r) averaged over the 101 recalls
  ``r = 0, 0.01, …, 1``.
* ``average_precision_metrics(outputs, targets, iou_threshold)``: per image, per class of the
  targets: predictions in descending confidence each match the unmatched target of the same
  class with the highest IoU, a true positive when that IoU ≥ the threshold.
"""

from __future__ import annotations

import numpy as np
import torch

__all__ = ["EPS", "bbox_iou", "wh_iou", "bbox_ciou", "compute_ap", "average_precision_metrics",
           "APstats"]

EPS = 1e-10
"""Guard against a division by zero."""


def _corners(b: torch.Tensor) -> tuple[torch.Tensor, ...]:
    half_w, half_h = b[..., 2] / 2, b[..., 3] / 2
    return b[..., 0] - half_w, b[..., 1] - half_h, b[..., 0] + half_w, b[..., 1] + half_h


def bbox_iou(bbox1: torch.Tensor, bbox2: torch.Tensor) -> torch.Tensor:
    """IoU of every box of ``bbox1`` with every box of ``bbox2``."""
    a = [c.reshape(-1, 1) for c in _corners(bbox1)]
    b = [c.reshape(1, -1) for c in _corners(bbox2)]
    dx = (torch.minimum(a[2], b[2]) - torch.maximum(a[0], b[0])).clamp(min=0)
    dy = (torch.minimum(a[3], b[3]) - torch.maximum(a[1], b[1])).clamp(min=0)
    inter = dx * dy
    area1 = (a[2] - a[0]) * (a[3] - a[1])
    area2 = (b[2] - b[0]) * (b[3] - b[1])
    iou = inter / (area1 + area2 - inter + EPS)
    return iou.reshape(*bbox1.shape[:-1], *bbox2.shape[:-1])


def wh_iou(bbox1: torch.Tensor, bbox2: torch.Tensor) -> torch.Tensor:
    """IoU of ``(width, height)`` boxes sharing their centre, for every pair."""
    w1, h1 = bbox1[..., 0].reshape(-1, 1), bbox1[..., 1].reshape(-1, 1)
    w2, h2 = bbox2[..., 0].reshape(1, -1), bbox2[..., 1].reshape(1, -1)
    inter = torch.minimum(w1, w2) * torch.minimum(h1, h2)
    iou = inter / (w1 * h1 + w2 * h2 - inter + EPS)
    return iou.reshape(*bbox1.shape[:-1], *bbox2.shape[:-1])


def bbox_ciou(bbox1: torch.Tensor, bbox2: torch.Tensor) -> torch.Tensor:
    """Complete IoU of corresponding boxes (flattened), differentiable."""
    x0a, y0a, x1a, y1a = (c.flatten() for c in _corners(bbox1))
    x0b, y0b, x1b, y1b = (c.flatten() for c in _corners(bbox2))
    inter = ((torch.minimum(x1a, x1b) - torch.maximum(x0a, x0b)).clamp(min=0)
             * (torch.minimum(y1a, y1b) - torch.maximum(y0a, y0b)).clamp(min=0))
    union = (x1a - x0a) * (y1a - y0a) + (x1b - x0b) * (y1b - y0b) - inter + EPS
    iou = inter / union
    c2 = ((torch.maximum(x1a, x1b) - torch.minimum(x0a, x0b)) ** 2
          + (torch.maximum(y1a, y1b) - torch.minimum(y0a, y0b)) ** 2 + EPS)
    rho2 = ((x0b + x1b - x0a - x1a) ** 2 + (y0b + y1b - y0a - y1a) ** 2) / 4
    v = (4 / np.pi ** 2) * (torch.atan((x1a - x0a) / (y1a - y0a + EPS))
                            - torch.atan((x1b - x0b) / (y1b - y0b + EPS))) ** 2
    with torch.no_grad():
        alpha = v / (1 - iou + v + EPS)
    return iou - (rho2 / c2 + alpha * v)


def compute_ap(precision: np.ndarray, recall: np.ndarray) -> float:
    """101-point interpolated average precision of a precision–recall curve (points in
    descending confidence)."""
    precision, recall = np.asarray(precision, float), np.asarray(recall, float)
    points = np.linspace(0, 1, 101)
    envelope = [precision[recall >= r].max() if np.any(recall >= r) else 0.0 for r in points]
    return float(np.mean(envelope))


def _match(pred_boxes, pred_labels, target_boxes, target_labels, thresholds):
    """``[P, len(thresholds)]`` true-positive flags of predictions sorted by confidence."""
    ious = bbox_iou(pred_boxes, target_boxes).reshape(len(pred_boxes), len(target_boxes))
    tp = np.zeros((len(pred_boxes), len(thresholds)))
    for k, th in enumerate(thresholds):
        taken = np.zeros(len(target_boxes), dtype=bool)
        for p in range(len(pred_boxes)):
            candidates = (target_labels == pred_labels[p]) & ~taken
            if not candidates.any():
                continue
            iou = np.where(candidates, ious[p].numpy(), -1.0)
            best = int(np.argmax(iou))
            if iou[best] >= th:
                tp[p, k], taken[best] = 1, True
    return tp


def average_precision_metrics(outputs, targets, iou_threshold: float | np.ndarray | list):
    """Per image: ``(precision, recall, AP, F1, classes)``, each a list over the images with a
    ``[classes, thresholds]`` array (the last values of the curves for precision and recall).

    ``outputs``/``targets`` are lists of ``[boxes, 6]`` tensors ``(x, y, w, h, confidence,
    label)``; images without output or target are skipped.
    """
    thresholds = np.atleast_1d(np.asarray(iou_threshold, dtype=float))
    lists = ([], [], [], [], [])
    for output, target in zip(outputs, targets):
        if output is None or target is None or len(target) == 0:
            continue
        order = torch.argsort(output[:, 4].detach().cpu(), descending=True)
        output = output.detach().cpu()[order]
        target = target.detach().cpu()
        pred_labels = output[:, -1].numpy()
        target_labels = target[:, -1].numpy()
        tp = _match(output[:, :4], pred_labels, target[:, :4], target_labels, thresholds)
        classes = np.unique(target_labels)
        per_class = [_class_metrics(tp[pred_labels == c], (target_labels == c).sum())
                     for c in classes]
        precision, recall, ap = (np.array([m[i] for m in per_class]) for i in range(3))
        f1 = 2 * precision * recall / (precision + recall + EPS)
        for store, value in zip(lists, (precision, recall, ap, f1, classes)):
            store.append(value)
    return lists


def _class_metrics(tp: np.ndarray, num_targets: int):
    num_iou = tp.shape[1]
    if len(tp) == 0:
        return np.zeros(num_iou), np.zeros(num_iou), np.zeros(num_iou)
    tp_cum = tp.cumsum(axis=0)
    recall = tp_cum / num_targets  # classes come from the targets: num_targets ≥ 1
    precision = tp_cum / np.arange(1, len(tp) + 1)[:, None]
    ap = np.array([compute_ap(precision[:, k], recall[:, k]) for k in range(num_iou)])
    return precision[-1], recall[-1], ap


class APstats:
    """Mean average precision over everything passed to :meth:`update`.

    ``stats[:]`` is the mAP averaged over the IoU thresholds, ``stats[0.5]`` the mAP at the
    threshold 0.5 (one of the given thresholds), ``stats[k]`` the mAP of the ``k``-th threshold.
    """

    def __init__(self, iou_threshold) -> None:
        self.iou_threshold = iou_threshold
        self.num_iou = int(np.size(iou_threshold))
        self.reset()

    def reset(self) -> None:
        """Forget the collected statistics."""
        self.ap_sum = np.zeros(self.num_iou)
        self.count = 0

    def update(self, predictions, targets) -> None:
        """Add the per-class AP of every image of a batch."""
        ap = average_precision_metrics(predictions, targets, self.iou_threshold)[2]
        if ap:
            ap = np.concatenate(ap)
            self.ap_sum += ap.sum(axis=0)
            self.count += ap.shape[0]

    def ap_scores(self) -> np.ndarray:
        """mAP per IoU threshold."""
        return self.ap_sum / self.count if self.count else self.ap_sum

    def __getitem__(self, iou):
        scores = self.ap_scores()
        if iou == slice(None):
            return float(np.mean(scores))
        if isinstance(iou, float):
            thresholds = np.atleast_1d(np.asarray(self.iou_threshold, dtype=float))
            where = np.flatnonzero(np.isclose(thresholds, iou))
            if not where.size:
                raise KeyError(f"IoU threshold {iou} was not recorded; use one of "
                               f"{thresholds.tolist()}")
            return float(scores[where[0]])
        return scores[iou]
