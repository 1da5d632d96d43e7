"""Compile speed: tracing and the default pipeline on deep networks (seconds per block).

    python benchmarks/compile_speed.py [--depths 100,250,500]

Builds ``nn.Sequential`` of ``depth`` cuba ``Dense(32 → 32)`` blocks, traces it (T = 8, batch 1)
and runs ``default_pipeline("loihi2")`` on the traced graph.  Targets (issue "Passes"): tracing
under 5 s at 500 blocks and linear in depth; the default pipeline under 10 s at 500 blocks.
"""

from __future__ import annotations

import argparse
import time

import torch

import slayerc.slayer as slayer
from slayerc.frontend.trace import trace
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


def main() -> None:
    """Print one row per depth, then the per-pass times of the deepest run."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--depths", default="100,250,500")
    args = ap.parse_args()
    print(f"{'blocks':>7}{'trace s':>10}{'ms/block':>10}{'pipeline s':>12}{'ms/block':>10}")
    measure(2)  # warm-up: the first trace pays for imports and torch.fx set-up
    pm = None
    for depth in (int(d) for d in args.depths.split(",")):
        t_trace, t_pipe, pm = measure(depth)
        print(f"{depth:>7}{t_trace:>10.3f}{1e3 * t_trace / depth:>10.3f}"
              f"{t_pipe:>12.3f}{1e3 * t_pipe / depth:>10.3f}")
    if pm is not None:
        print(pm.timing_report())


if __name__ == "__main__":
    main()
