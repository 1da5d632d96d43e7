"""Regenerate the bundled example graphs (``python examples/make_examples.py``).

``conv_net.sir``: conv -> pool -> flatten -> dense -> recurrent dense -> dense, a cuba SNN whose
shapes are given only on the input; run ``slayerc opt examples/conv_net.sir -p shape-infer``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from slayerc.ir import GraphBuilder, Loc, save
from slayerc.ir import ops as o

HERE = Path(__file__).resolve().parent


def _q(rng: np.random.Generator, shape: tuple[int, ...], scale: float = 1.0) -> np.ndarray:
    """Random weights on slayer's 8-bit grid (even integers / 64)."""
    return (2 * np.round(rng.normal(0, 24 * scale, shape) / 2)).clip(-256, 254).astype(
        np.float32) / 64


def conv_net() -> None:
    """Build and save ``conv_net.sir`` (+ ``conv_net.npz``)."""
    rng = np.random.default_rng(7)
    b = GraphBuilder("conv_net")
    lif = {"threshold": 1.25, "current_decay": 0.25, "voltage_decay": 0.03125}

    def loc(mod: str, line: int) -> Loc:
        return Loc(mod, "examples/conv_net.py", line)

    x = b.add(o.Input, "x", shape=(2, 16, 16), dtype="f32")
    c1 = b.add(o.Conv, "conv1", [x], weight=b.param("conv1.weight", _q(rng, (8, 2, 3, 3), 2)),
               padding=(1, 1), loc=loc("blocks.0.synapse", 10))
    n1 = b.add(o.Cuba, "conv1_lif", [c1], **lif, loc=loc("blocks.0.neuron", 10))
    s1 = b.add(o.Shift, "conv1_shift", [n1], loc=loc("blocks.0", 10))
    p1 = b.add(o.Pool, "pool1", [s1], kernel=(2, 2), stride=(2, 2),
               weight=b.param("pool1.weight", np.ones((1, 1, 2, 2), np.float32)),
               loc=loc("blocks.1.synapse", 11))
    n2 = b.add(o.Cuba, "pool1_lif", [p1], **lif, loc=loc("blocks.1.neuron", 11))
    s2 = b.add(o.Shift, "pool1_shift", [n2], loc=loc("blocks.1", 11))
    fl = b.add(o.Flatten, "flat", [s2], loc=loc("blocks.2", 12))
    fc = b.add(o.Dense, "fc1", [fl], weight=b.param("fc1.weight", _q(rng, (32, 512))),
               loc=loc("blocks.3.input_synapse", 13))
    # recurrence: the layer's own spikes come back one step later through %rec_in
    rec_in = b.add(o.Shift, "rec_in", ["fc1_lif"], loc=loc("blocks.3", 13))
    rec = b.add(o.Dense, "rec", [rec_in], weight=b.param("rec.weight", _q(rng, (32, 32), 0.5)),
                loc=loc("blocks.3.recurrent_synapse", 13))
    add = b.add(o.Add, "fc1_sum", [fc, rec], loc=loc("blocks.3", 13))
    n3 = b.add(o.Cuba, "fc1_lif", [add], **lif, loc=loc("blocks.3.neuron", 13))
    out = b.add(o.Dense, "fc2", [n3], weight=b.param("fc2.weight", _q(rng, (10, 32))),
                loc=loc("blocks.4.synapse", 14))
    n4 = b.add(o.Cuba, "fc2_lif", [out], **lif, loc=loc("blocks.4.neuron", 14))
    b.add(o.Output, "y", [n4])
    save(b.build(), HERE / "conv_net.sir")


if __name__ == "__main__":
    conv_net()
