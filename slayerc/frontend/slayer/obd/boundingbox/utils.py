"""Bounding-box formats, non-maximum suppression and annotation dictionaries.

A box tensor has one row per box: ``(x_center, y_center, width, height, confidence, label)``
(or raw predictions ``(x, y, w, h, objectness, class scores…)``), normalised to [0, 1] unless
stated.  Annotations are dictionaries as lava-dl's (Pascal-VOC-like)::

    {'annotation': {'size': {'height': h, 'width': w},
                    'object': [{'id': label, 'name': name, 'confidence': c (optional),
                                'bndbox': {'xmin': …, 'ymin': …, 'xmax': …, 'ymax': …}}]}}

NMS is computed here (no torchvision): boxes above ``conf_threshold`` in descending score; a
box is dropped when it overlaps a kept box of the same label with IoU > ``nms_threshold``.
Drawing and video helpers (``mark_bounding_boxes``, ``create_frames``, ``create_video``) need
PIL and are not provided.
"""

from __future__ import annotations

import copy
from typing import Any

import torch

from .metrics import bbox_iou

__all__ = [
    "non_maximum_suppression", "annotation_from_tensor", "tensor_from_annotation",
    "onehot_to_labels", "xxyy_to_xywh", "xywh_to_xxyy", "normalize_bboxes", "denormalize_bboxes",
    "merge_annotations", "resize_bounding_boxes", "flipud_bounding_boxes",
    "fliplr_bounding_boxes",
]

Width = int
Height = int


def _nms_one(detections: torch.Tensor, nms_threshold: float) -> torch.Tensor:
    """Greedy NMS of ``[n, 6]`` detections already sorted by descending score."""
    ious = bbox_iou(detections[:, :4], detections[:, :4]).reshape(len(detections), -1)
    same = detections[:, 5:6] == detections[:, 5:6].T
    suppresses = (ious > nms_threshold) & same
    keep = torch.ones(len(detections), dtype=torch.bool)
    for i in range(len(detections)):
        if keep[i]:
            later = suppresses[i].clone()
            later[: i + 1] = False
            keep &= ~later
    return detections[keep]


def non_maximum_suppression(predictions, conf_threshold: float = 0.5,
                            nms_threshold: float = 0.4, merge_conf: bool = True,
                            max_detections: int = 300, max_iterations: int = 100):
    """Per image, ``[n, 6]`` detections ``(x, y, w, h, score, label)`` after NMS.

    ``predictions`` is a list of raw ``[boxes, 5 + classes]`` tensors.  The label is the best
    class; the score is objectness × that class's confidence (``merge_conf``) or objectness.
    At most ``max_detections`` survive; ``max_iterations`` is accepted for lava-dl's signature
    (the greedy pass here needs one).
    """
    del max_iterations
    result = []
    for pred in predictions:
        kept = pred[pred[:, 4] > conf_threshold]
        if kept.shape[0] == 0:
            result.append(torch.zeros((0, 6), device=pred.device, dtype=pred.dtype))
            continue
        class_conf, labels = torch.max(kept[:, 5:], dim=1, keepdim=True)
        scores = kept[:, 4:5] * class_conf if merge_conf else kept[:, 4:5]
        order = torch.argsort(scores.flatten(), descending=True)
        detections = torch.cat([kept[:, :4], scores, labels.to(kept.dtype)], dim=-1)[order]
        result.append(_nms_one(detections, nms_threshold)[:max_detections])
    return result


def annotation_from_tensor(tensor: torch.Tensor, frame_size: dict[str, int], object_names,
                           confidence_th: float = 0.01, normalized: bool = True):
    """Annotation dictionary of a ``[n, 6]`` box tensor (one image); boxes below
    ``confidence_th`` are left out; ``normalized`` boxes are scaled to ``frame_size``."""
    height = frame_size["height"] if normalized else 1
    width = frame_size["width"] if normalized else 1
    objects = []
    for x, y, w, h, conf, label in tensor.reshape(-1, tensor.shape[-1])[:, :6].tolist():
        if conf < confidence_th:
            continue
        objects.append({
            "id": int(label), "name": object_names[int(label)], "confidence": conf,
            "bndbox": {"xmin": (x - w / 2) * width, "ymin": (y - h / 2) * height,
                       "xmax": (x + w / 2) * width, "ymax": (y + h / 2) * height},
        })
    return {"annotation": {"size": frame_size, "object": objects}}


def tensor_from_annotation(ann: dict[str, Any], device: torch.device | str = "cpu",
                           num_objects: int | None = None, normalized: bool = True):
    """``[n, 6]`` box tensor of an annotation (one image), largest boxes first; empty boxes are
    dropped, a missing confidence is 1; ``num_objects`` keeps the first that many."""
    size = ann["annotation"]["size"]
    height = int(size["height"]) if normalized else 1
    width = int(size["width"]) if normalized else 1
    rows, areas = [], []
    for obj in ann["annotation"]["object"]:
        b = obj["bndbox"]
        if b["xmax"] <= b["xmin"] or b["ymax"] <= b["ymin"]:
            continue
        rows.append([(b["xmin"] + b["xmax"]) / 2 / width, (b["ymin"] + b["ymax"]) / 2 / height,
                     (b["xmax"] - b["xmin"]) / width, (b["ymax"] - b["ymin"]) / height,
                     obj.get("confidence", 1.0), obj["id"]])
        areas.append((b["xmax"] - b["xmin"]) * (b["ymax"] - b["ymin"]))
    order = sorted(range(len(rows)), key=lambda i: -areas[i])
    boxes = torch.tensor([rows[i] for i in order], dtype=torch.float32,
                         device=device).reshape(-1, 6)
    return boxes[:num_objects] if num_objects else boxes


def onehot_to_labels(predictions, conf_threshold: float = 0.0, merge_conf: bool = True):
    """Raw ``[n, 5 + classes]`` predictions → ``[m, 6]`` ``(x, y, w, h, score, label)`` with
    score above ``conf_threshold``."""
    out = []
    for pred in predictions:
        conf, label = torch.max(pred[:, 5:], dim=1)
        if not merge_conf:
            conf = torch.ones_like(conf)
        row = torch.cat([pred[:, :4], pred[:, 4:5] * conf[:, None], label[:, None].to(pred.dtype)],
                        dim=1)
        out.append(row[row[:, 4] > conf_threshold])
    return out


def xxyy_to_xywh(predictions):
    """``(x_min, y_min, x_max, y_max, …)`` → ``(x_center, y_center, width, height, …)``."""
    out = []
    for p in predictions:
        q = p.clone()
        q[:, 0], q[:, 1] = (p[:, 0] + p[:, 2]) / 2, (p[:, 1] + p[:, 3]) / 2
        q[:, 2], q[:, 3] = p[:, 2] - p[:, 0], p[:, 3] - p[:, 1]
        out.append(q)
    return out


def xywh_to_xxyy(predictions):
    """``(x_center, y_center, width, height, …)`` → ``(x_min, y_min, x_max, y_max, …)``."""
    out = []
    for p in predictions:
        q = p.clone()
        q[:, 0], q[:, 1] = p[:, 0] - p[:, 2] / 2, p[:, 1] - p[:, 3] / 2
        q[:, 2], q[:, 3] = p[:, 0] + p[:, 2] / 2, p[:, 1] + p[:, 3] / 2
        out.append(q)
    return out


def normalize_bboxes(predictions, height: Height, width: Width):
    """Divide x, w by ``width`` and y, h by ``height`` (in place, as lava-dl)."""
    for p in predictions:
        p[:, [0, 2]] /= width
        p[:, [1, 3]] /= height
    return predictions


def denormalize_bboxes(predictions, height: Height, width: Width):
    """Multiply x, w by ``width`` and y, h by ``height`` (in place, as lava-dl)."""
    for p in predictions:
        p[:, [0, 2]] *= width
        p[:, [1, 3]] *= height
    return predictions


def merge_annotations(ann0: dict[str, Any], ann1: dict[str, Any]) -> dict[str, Any]:
    """One annotation with the objects of both (their frame sizes must agree)."""
    size0, size1 = ann0["annotation"]["size"], ann1["annotation"]["size"]
    if (size0["height"], size0["width"]) != (size1["height"], size1["width"]):
        raise ValueError(f"annotation sizes differ: {size0} and {size1}")
    objects = ann0["annotation"]["object"] + ann1["annotation"]["object"]
    return {"annotation": {"size": size0, "object": objects}}


def _boxes(annotation):
    return [obj["bndbox"] for obj in annotation["annotation"]["object"]]


def resize_bounding_boxes(annotation: dict[str, Any], size: tuple[Height, Width]):
    """Scale the frame and its boxes to ``size = (height, width)`` pixels (in place)."""
    frame = annotation["annotation"]["size"]
    sy, sx = size[0] / int(frame["height"]), size[1] / int(frame["width"])
    frame["height"], frame["width"] = int(frame["height"]) * sy, int(frame["width"]) * sx
    for b in _boxes(annotation):
        b["xmin"], b["xmax"] = int(b["xmin"]) * sx, int(b["xmax"]) * sx
        b["ymin"], b["ymax"] = int(b["ymin"]) * sy, int(b["ymax"]) * sy
    return annotation


def flipud_bounding_boxes(annotation: dict[str, Any]):
    """Mirror the boxes top–bottom: ``y → height − y`` (in place)."""
    height = int(annotation["annotation"]["size"]["height"])
    for b in _boxes(annotation):
        b["ymin"], b["ymax"] = height - int(b["ymax"]), height - int(b["ymin"])
    return annotation


def fliplr_bounding_boxes(annotation: dict[str, Any]):
    """Mirror the boxes left–right: ``x → width − x`` (in place)."""
    width = int(annotation["annotation"]["size"]["width"])
    for b in _boxes(annotation):
        b["xmin"], b["xmax"] = width - int(b["xmax"]), width - int(b["xmin"])
    return annotation


def copy_annotation(annotation: dict[str, Any]) -> dict[str, Any]:
    """A deep copy (the in-place helpers above modify their argument, as lava-dl's)."""
    return copy.deepcopy(annotation)
