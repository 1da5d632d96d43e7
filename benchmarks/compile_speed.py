"""Compile speed: tracing and the default pipeline on deep networks, and deep netlists.

    python benchmarks/compile_speed.py [--depths 100,250,500] [--netlists 1000,10000] [--repeat 3]

Models: ``nn.Sequential`` of ``depth`` cuba ``Dense(32 → 32)`` blocks, traced (T = 8, batch 1),
then ``default_pipeline("loihi2")`` on the traced graph.  Targets (issue "Passes"): tracing
under 5 s at 500 blocks and linear in depth; the default pipeline under 10 s at 500 blocks.

Netlists: an input layer and ``N`` cuba dense layers (4 → 4, lava-dl's keys, written by
``benchmarks/netlist_scale.py``'s ``layer``), then ``slayerc opt deep.net -o out.net``'s steps:
read (hdf5 → IR, shape-infer, verify), verify, the loihi2 default pipeline (netlist form) and
write.  Target (issue 16): linear, 10,000 layers in under 10 s.  Each row is the median of
``--repeat`` runs, as wall-clock and as this process's CPU seconds (on a shared machine the
CPU column is the steadier one), with the load average at the end.
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

import slayerc.slayer as slayer
from slayerc.backends.files import load, save
from slayerc.backends.hdf5.h5io import FixedStr, dump_tree
from slayerc.frontend.trace import trace
from slayerc.ir.verify import verify
from slayerc.passes import PassManager
from slayerc.passes.pipelines import default_pipeline

P = {"threshold": 1.0, "current_decay": 0.25, "voltage_decay": 0.03}


def measure(depth: int) -> tuple[float, float, PassManager]:
    """(trace seconds, pipeline seconds, the pass manager with its timings) for one depth."""
    torch.manual_seed(0)
    net = torch.nn.Sequential(*[slayer.block.cuba.Dense(P, 32, 32, weight_scale=2)
                                for _ in range(depth)]).eval()
    x = torch.zeros(1, 32, 8)
    start = time.perf_counter()
    g = trace(net, x)
    traced = time.perf_counter() - start
    pm = PassManager.from_string(default_pipeline("loihi2"))
    start = time.perf_counter()
    pm.run(g)
    return traced, time.perf_counter() - start, pm


STEPS = ("read", "verify", "pipeline", "write")


def netlist_steps(src: Path, out: Path, sir: Path | None = None) -> dict[str, tuple[float, float]]:
    """(wall, CPU) seconds of each step of ``slayerc opt src -o out`` for one netlist."""
    times: dict[str, tuple[float, float]] = {}
    wall, cpu = time.perf_counter(), time.process_time()

    def lap(name: str) -> None:
        nonlocal wall, cpu
        now, now_cpu = time.perf_counter(), time.process_time()
        times[name], wall, cpu = (now - wall, now_cpu - cpu), now, now_cpu

    g = load(src)
    lap("read")
    verify(g)
    lap("verify")
    g = PassManager.from_string(default_pipeline("loihi2", netlist=True)).run(g)
    lap("pipeline")
    save(g, out)
    lap("write")
    if sir is not None:
        save(g, sir)
        lap("write .sir")
    return times


def netlist_rows(sizes: list[int], repeat: int) -> None:
    """One row per netlist size: the median wall and CPU seconds of each step and in all."""
    from netlist_scale import layer  # (benchmarks/ is the script's folder: on sys.path)

    # what exists now (imports, the model rows' torch modules) is frozen out of the cyclic
    # GC, so the rows time the netlist work, not collections walking torch's heap
    gc.collect()
    gc.freeze()

    print(f"\n{'layers':>7}" + "".join(f"{c:>10}" for c in STEPS)
          + f"{'total s':>10}{'cpu s':>8}{'ms/layer':>10}  (wall s per step, median of {repeat})")
    with tempfile.TemporaryDirectory() as tmp:
        for n in [10, *sizes]:  # 10: warm-up (imports)
            src = Path(tmp) / f"dense{n}.net"
            dump_tree(src, {"layer": {"0": {"type": FixedStr("input"), "shape": np.array([4])},
                                      **{str(i): layer("dense") for i in range(1, n + 1)}}})
            runs = [netlist_steps(src, Path(tmp) / "out.net") for _ in range(repeat)]
            if n == 10:
                continue
            wall = {c: statistics.median(r[c][0] for r in runs) for c in STEPS}
            total = statistics.median(sum(r[c][0] for c in STEPS) for r in runs)
            cpu = statistics.median(sum(r[c][1] for c in STEPS) for r in runs)
            print(f"{n:>7}" + "".join(f"{wall[c]:>10.2f}" for c in STEPS)
                  + f"{total:>10.2f}{cpu:>8.2f}{1e3 * total / n:>10.3f}", flush=True)
    print("load average " + " ".join(f"{v:.2f}" for v in os.getloadavg()))


def main() -> None:
    """Print one row per depth, the per-pass times of the deepest run, then the netlist rows."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--depths", default="100,250,500", help="model depths ('' for none)")
    ap.add_argument("--netlists", default="1000,10000", help="netlist sizes ('' for none)")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    depths = [int(d) for d in args.depths.split(",") if d]
    pm = None
    if depths:
        print(f"{'blocks':>7}{'trace s':>10}{'ms/block':>10}{'pipeline s':>12}{'ms/block':>10}")
        measure(2)  # warm-up: the first trace pays for imports and torch.fx set-up
    for depth in depths:
        t_trace, t_pipe, pm = measure(depth)
        print(f"{depth:>7}{t_trace:>10.3f}{1e3 * t_trace / depth:>10.3f}"
              f"{t_pipe:>12.3f}{1e3 * t_pipe / depth:>10.3f}")
    if pm is not None:
        print(pm.timing_report())
    sizes = [int(v) for v in args.netlists.split(",") if v]
    if sizes:
        netlist_rows(sizes, args.repeat)


if __name__ == "__main__":
    main()
