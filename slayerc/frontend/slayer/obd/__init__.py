"""Object detection with SDNNs (``slayer.obd``, lava-dl's ``slayer.object_detection``).

``bbox``/``boundingbox``: IoU, average precision (``metrics``), box formats, NMS without
torchvision and annotation helpers (``utils``); ``YOLOtarget``, ``YOLOLoss``, ``YOLOBase``;
``models``: the sigma-delta Tiny YOLOv3 (strided) and YOLO-KP networks; ``dataset``: BDD100K
from local files.  Nothing here needs torchvision.
"""

from . import boundingbox, dataset, models
from . import boundingbox as bbox
from .yolo_base import YOLOBase, YOLOLoss, YOLOtarget

__all__ = ["bbox", "boundingbox", "dataset", "models", "YOLOtarget", "YOLOLoss", "YOLOBase"]
