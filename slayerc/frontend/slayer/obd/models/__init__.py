"""SDNN YOLO model definitions (``slayer.obd.models``): ``tiny_yolov3_str`` and ``yolo_kp``.

lava-dl's event-camera variant ``yolo_kp_events`` and the bundled trained weights are not
provided (no downloads; load a trained state dict with ``Network.load_model``).
"""

from . import tiny_yolov3_str, yolo_kp

__all__ = ["tiny_yolov3_str", "yolo_kp"]
