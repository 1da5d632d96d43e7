"""The four ANN models of issue 14, small, exported with ``torch.onnx.export``."""

from __future__ import annotations

import warnings
from pathlib import Path

import torch
from torch import nn


def _bn(c: int) -> nn.BatchNorm2d:
    bn = nn.BatchNorm2d(c)
    with torch.no_grad():
        bn.running_mean.uniform_(-0.2, 0.2)
        bn.running_var.uniform_(0.5, 1.5)
        bn.weight.uniform_(0.5, 1.5)
        bn.bias.uniform_(-0.2, 0.2)
    return bn


class Residual(nn.Module):
    """(d): a residual Add and a Concat, then a global average pool and a dense head."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(2, 4, 3, padding=1), nn.ReLU())
        self.branch = nn.Sequential(nn.Conv2d(4, 4, 3, padding=1), nn.ReLU(),
                                    nn.Conv2d(4, 4, 3, padding=1))
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = self.stem(x)
        r = torch.relu(self.branch(s) + s)
        return self.head(nn.functional.adaptive_avg_pool2d(torch.cat([r, s], 1), 1))


def build(kind: str) -> tuple[nn.Module, tuple[int, ...]]:
    """The model ``kind`` (mlp, cnn, pilotnet, residual) in eval mode and its input shape."""
    torch.manual_seed({"mlp": 0, "cnn": 1, "pilotnet": 2, "residual": 3}[kind])
    if kind == "mlp":
        m = nn.Sequential(nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 24), nn.ReLU(),
                          nn.Linear(24, 5))
        shape = (16,)
    elif kind == "cnn":
        m = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), _bn(4), nn.ReLU(), nn.AvgPool2d(2),
                          nn.Conv2d(4, 8, 3, padding=1), _bn(8), nn.ReLU(), nn.Dropout(0.2),
                          nn.Flatten(), nn.Linear(8 * 4 * 4, 10))
        shape = (1, 8, 8)
    elif kind == "pilotnet":
        m = nn.Sequential(nn.Conv2d(3, 8, 3, stride=2), nn.ReLU(),
                          nn.Conv2d(8, 12, 3, stride=2), nn.ReLU(),
                          nn.Conv2d(12, 16, 3, stride=1), nn.ReLU(), nn.Flatten(),
                          nn.Linear(16 * 1 * 5, 16), nn.ReLU(), nn.Linear(16, 1))
        shape = (3, 16, 32)
    else:
        m, shape = Residual(), (2, 6, 6)
    return m.eval(), shape


def export(kind: str, folder: Path, **kw) -> tuple[nn.Module, tuple[int, ...], Path]:
    """Export model ``kind`` to ``folder/kind.onnx``."""
    m, shape = build(kind)
    path = folder / f"{kind}.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(m, torch.rand(1, *shape), str(path), dynamo=False,
                          input_names=["x"], output_names=["y"],
                          dynamic_axes={"x": {0: "N"}, "y": {0: "N"}}, **kw)
    return m, shape, path
