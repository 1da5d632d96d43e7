"""Bounding boxes (``slayer.obd.bbox``): IoU metrics and average precision (``metrics``), box
formats, non-maximum suppression and annotation dictionaries (``utils``)."""

from . import metrics, utils

__all__ = ["metrics", "utils"]
