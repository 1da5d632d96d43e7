"""Berkeley DeepDrive BDD100K (MOT 2020 tracking) from local files, as lava-dl's ``BDD``.

Layout under ``root`` (the BDD100K download, nothing is fetched)::

    labels/box_<dataset>_20/<train|val>/<video>.json   [{"name": <image file>, "labels":
                                                        [{"category": c, "box2d": {"x1", "y1",
                                                          "x2", "y2"}}, …]}, …] (one per frame)
    images/<dataset>/<train|val>/<video>/<image file>

A sample is one video: ``seq_len`` frames (from a random start with ``randomize_seq``; the last
frame repeats when the video is shorter), resized to ``size = (height, width)``, as a float
tensor ``[3, H, W, T]`` in [0, 1], and the list of per-frame annotation dictionaries (boxes in
resized pixels; see :mod:`..boundingbox.utils`).  Classes are the sorted categories of all label
files.  With ``augment_prob`` > 0, each video is mirrored left–right (frames and boxes) and
turned to grey with that probability each; lava-dl's blur and colour jitter (torchvision) are
not applied.  Images are read with Pillow (``pip install pillow``); torchvision is not needed.
"""

from __future__ import annotations

import json
import os

import numpy as np
import torch
from torch.utils.data import Dataset

from slayerc.errors import DatasetError, SlayerError  # noqa: F401

from ..boundingbox import utils as bbutils

__all__ = ["BDD"]


def _pil():
    try:
        from PIL import Image
    except ImportError as err:
        raise DatasetError("BDD needs Pillow to read images: pip install pillow") from err
    return Image


class _Videos:
    """Label files and image folders of one split."""

    def __init__(self, root: str, dataset: str, train: bool):
        split = "train" if train else "val"
        self.label_path = os.path.join(root, "labels", f"box_{dataset}_20", split)
        self.image_path = os.path.join(root, "images", dataset, split)
        for path, what in ((self.label_path, "labels (MOT 2020 labels)"),
                           (self.image_path, "images (MOT 2020 images)")):
            if not os.path.isdir(path):
                raise DatasetError(f"BDD100K {what} not found in {path}; download them from "
                                   "https://bdd-data.berkeley.edu/portal.html#download")
        files = sorted(f for f in os.listdir(self.label_path) if f.endswith(".json"))
        self.ids = [f[: -len(".json")] for f in files]
        categories = set()
        for video in self.ids:
            for frame in self.frames(video):
                categories.update(label["category"] for label in frame["labels"])
        self.classes = sorted(categories)
        self.idx_map = {name: i for i, name in enumerate(self.classes)}

    def frames(self, video: str) -> list[dict]:
        """The frames of one video's label file."""
        with open(os.path.join(self.label_path, video + ".json")) as f:
            return json.load(f)

    def frame(self, video: str, frame: dict):
        """(PIL image, annotation) of one frame."""
        image = _pil().open(os.path.join(self.image_path, video, frame["name"])).convert("RGB")
        width, height = image.size
        objects = [{"id": self.idx_map[lab["category"]], "name": lab["category"],
                    "bndbox": {"xmin": lab["box2d"]["x1"], "ymin": lab["box2d"]["y1"],
                               "xmax": lab["box2d"]["x2"], "ymax": lab["box2d"]["y2"]}}
                   for lab in frame["labels"]]
        return image, {"annotation": {"size": {"height": height, "width": width},
                                      "object": objects}}


class BDD(Dataset):
    """BDD100K videos with box annotations (see the module docstring)."""

    def __init__(self, root: str = "./", dataset: str = "track", size=(448, 448),
                 train: bool = False, seq_len: int = 32, randomize_seq: bool = False,
                 augment_prob: float = 0.0) -> None:
        super().__init__()
        self.videos = _Videos(root, dataset, train)
        self.classes, self.idx_map = self.videos.classes, self.videos.idx_map
        self.size, self.seq_len = tuple(size), seq_len
        self.randomize_seq, self.augment_prob = randomize_seq, augment_prob

    def __len__(self) -> int:
        """Number of videos."""
        return len(self.videos.ids)

    def __getitem__(self, index: int):
        """``(frames [3, H, W, T], annotations)`` of video ``index``."""
        video = self.videos.ids[index]
        frames = self.videos.frames(video)
        start = (np.random.randint(max(len(frames) - self.seq_len, 1))
                 if self.randomize_seq else 0)
        frames = frames[start:start + self.seq_len]
        frames = frames + frames[-1:] * (self.seq_len - len(frames))
        images, annotations = zip(*(self.videos.frame(video, f) for f in frames))
        images, annotations = list(images), [bbutils.copy_annotation(a) for a in annotations]
        flip = np.random.random() < self.augment_prob
        gray = np.random.random() < self.augment_prob
        Image = _pil()
        if flip:
            images = [im.transpose(Image.Transpose.FLIP_LEFT_RIGHT) for im in images]
            annotations = [bbutils.fliplr_bounding_boxes(a) for a in annotations]
        if gray:
            images = [im.convert("L").convert("RGB") for im in images]
        height, width = self.size
        tensors = [torch.from_numpy(np.asarray(im.resize((width, height), Image.BILINEAR),
                                               dtype=np.float32) / 255).permute(2, 0, 1)
                   for im in images]
        annotations = [bbutils.resize_bounding_boxes(a, self.size) for a in annotations]
        return torch.stack(tensors, dim=-1), annotations
