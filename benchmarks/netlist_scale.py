"""Netlist scale: read + verify + default pipeline + write of very deep netlists (seconds).

    python benchmarks/netlist_scale.py [--dense 1000,10000] [--flatten 10000,100000]

Writes a netlist of an input layer and ``N`` cuba dense layers (4 → 4, lava-dl's keys) or
``N`` flatten layers, then times each step of ``slayerc opt deep.net -o out.net``: ``read``
(hdf5 → IR, which shape-infers and verifies), ``verify``, the loihi2 default pipeline (netlist
form), ``write`` of the ``.net`` and of the ``.sir``.  Every step must be linear in ``N``: the
``ms/layer`` column stays flat as ``N`` grows (issue 16: 10,000 layers in under 10 s).  The
hdf5 library's own cost per dataset (about 20-40 µs; a dense layer has 11) dominates reading
and writing.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np

from slayerc.backends.hdf5.h5io import FixedStr, Str, dump_tree


def layer(kind: str, width: int = 4) -> dict:
    """One netlist layer as lava-dl writes it."""
    if kind == "flatten":
        return {"type": FixedStr("flatten"), "shape": np.array([width, 1, 1])}
    return {"type": FixedStr("dense"), "shape": np.array([width]),
            "inFeatures": np.int64(width), "outFeatures": np.int64(width),
            "weight": np.full((width, width), 2.0, np.float32),
            "neuron": {"type": Str("CUBA"), "iDecay": np.int64(1024), "vDecay": np.int64(128),
                       "vThMant": np.int64(80), "refDelay": np.int64(1),
                       "gradedSpike": np.bool_(False)}}


def measure(kind: str, n: int, folder: Path) -> dict[str, float]:
    """Seconds per step for one netlist of ``n`` layers of ``kind``."""
    src = folder / f"{kind}{n}.net"
    one = layer(kind)
    dump_tree(src, {"layer": {"0": {"type": FixedStr("input"), "shape": np.array([4])},
                              **{str(i): one for i in range(1, n + 1)}}})
    from compile_speed import netlist_steps  # (benchmarks/ is on sys.path when run)

    steps = netlist_steps(src, folder / "out.net", folder / "out.sir")
    return {("write .net" if k == "write" else k): wall for k, (wall, _) in steps.items()}


def main() -> None:
    """Print one row per netlist."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dense", default="1000,10000")
    ap.add_argument("--flatten", default="10000,100000")
    args = ap.parse_args()
    cols = ("read", "verify", "pipeline", "write .net", "write .sir")
    print(f"{'layers':>8} {'kind':>8}" + "".join(f"{c:>12}" for c in cols)
          + f"{'total s':>10}{'ms/layer':>10}")
    with tempfile.TemporaryDirectory() as tmp:
        measure("dense", 10, Path(tmp))  # warm-up: imports
        for kind in ("dense", "flatten"):
            for n in (int(v) for v in getattr(args, kind).split(",") if v):
                t = measure(kind, n, Path(tmp))
                total = sum(t.values())
                print(f"{n:>8} {kind:>8}" + "".join(f"{t[c]:>12.2f}" for c in cols)
                      + f"{total:>10.2f}{1e3 * total / n:>10.3f}", flush=True)


if __name__ == "__main__":
    main()
