"""Median CPU time of one training step of a cuba Dense 200→256→256→10 network.

Batch 32, T = 100, forward + backward + Adam step, for two configurations, each run two ways
(interleaved, repeat by repeat): ``eager`` (the ``slayerc.slayer`` model itself) and
``to_module`` (``slayerc.to_module(slayerc.trace(model, x))``: the model's IR graph as a
trainable module; ``learn`` trains its scalar decays with ``learn_neuron=True``):

* ``plain``: default neuron parameters (fixed decays), no weight norm, no axonal delay;
* ``learn``: ``weight_norm=True``, ``delay=True`` on the hidden blocks, learnable decays
  (``requires_grad=True``).

lava-dl 0.6 slayer takes 0.066 s / 0.108 s per step on a 2-core x86_64 machine
(``DESIGN.md``, performance anchors); the goal is 2x faster (0.033 s / 0.054 s).  The script
prints the machine (CPU model, threads, torch version, load average) with the figures: other
jobs on the machine inflate them, so quote them with the load.  Run:
``python benchmarks/train_step.py [--steps N] [--repeats R] [--threads K|auto] [--profile]
[--backend torch|triton]`` (``triton`` times the fused kernels: meaningful on a GPU only).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time

import torch

import slayerc
import slayerc.slayer as slayer

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import peers  # noqa: E402  (benchmarks/ is not a package)

LAVA_DL_SECONDS = {"plain": 0.066, "learn": 0.108}
TARGET_SPEEDUP = 2.0


def build(learn: bool) -> torch.nn.Module:
    """The benchmark network."""
    params = {"threshold": 1.25, "current_decay": 0.25, "voltage_decay": 0.03,
              "tau_grad": 0.03, "scale_grad": 3, "requires_grad": learn}
    extra = {"weight_norm": True, "delay": True} if learn else {}
    return torch.nn.Sequential(
        slayer.block.cuba.Dense(params, 200, 256, weight_scale=2, **extra),
        slayer.block.cuba.Dense(params, 256, 256, weight_scale=2, **extra),
        slayer.block.cuba.Dense(params, 256, 10, weight_scale=2, weight_norm=learn),
    )


def time_steps(learn: bool, steps: int, warmup: int = 3, way: str = "eager",
               backend: str = "torch", device: str = "cpu") -> list[float]:
    """Wall-clock seconds of ``steps`` training steps (after ``warmup`` untimed ones)."""
    torch.manual_seed(0)
    net = build(learn)
    x = (torch.rand(32, 200, 100) < 0.1).float()
    target = (torch.rand(32, 10, 100) < 0.05).float()
    if way == "to_module":
        net = slayerc.to_module(slayerc.trace(net, x[:1]), backend=backend, learn_neuron=learn)
    net, x, target = net.to(device), x.to(device), target.to(device)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    times = []
    for i in range(warmup + steps):
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        loss = torch.nn.functional.mse_loss(net(x), target)
        loss.backward()
        opt.step()
        if device != "cpu":
            torch.cuda.synchronize()
        if i >= warmup:
            times.append(time.perf_counter() - t0)
    return times


def cpu_model() -> str:
    """The CPU model name (``/proc/cpuinfo``), or what ``platform`` knows."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine() -> str:
    """One line with the facts a quoted figure needs."""
    load = "/".join(f"{v:.2f}" for v in os.getloadavg())
    return (f"{cpu_model()}, {os.cpu_count()} logical CPUs, torch {torch.__version__} "
            f"with {torch.get_num_threads()} threads, Python {platform.python_version()}; "
            f"load average {load}")


def main(argv=None) -> int:
    """Print the median step time of each configuration (and an optional profile)."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--steps", type=int, default=20, help="timed steps per repeat")
    ap.add_argument("--repeats", type=int, default=3,
                    help="fresh networks per configuration; the median is over all steps")
    ap.add_argument("--threads", default="auto",
                    help="torch threads: a number, 'auto' (1 on a busy machine, else torch's "
                         "choice; peers.auto_threads) or 'default'")
    ap.add_argument("--profile", action="store_true", help="print a torch profiler table")
    ap.add_argument("--backend", default="torch", choices=("torch", "triton"),
                    help="neuron kernels of the to_module rows")
    ap.add_argument("--device", default="cpu", help="cpu or cuda")
    args = ap.parse_args(argv)
    threads = peers.threads_arg(args.threads)
    if threads:
        torch.set_num_threads(threads)
    print(machine())
    print("cuba Dense 200-256-256-10, batch 32, T=100; forward + backward + Adam, wall clock")
    ways = ("eager", "to_module")
    for name in ("plain", "learn"):
        times: dict[str, list[float]] = {w: [] for w in ways}
        for _ in range(args.repeats):  # interleaved, so load changes hit both alike
            for way in ways:
                times[way] += time_steps(name == "learn", args.steps, way=way,
                                         backend=args.backend, device=args.device)
        for way in ways:
            med, ref = statistics.median(times[way]), LAVA_DL_SECONDS[name]
            ratio = statistics.median(times["eager"]) / med
            print(f"  {name:5s} {way:9s} median {med:.4f} s/step (min {min(times[way]):.4f}); "
                  f"eager/this {ratio:.2f}; lava-dl 0.6 {ref:.3f} s -> {ref / med:.2f}x faster "
                  f"(goal {TARGET_SPEEDUP:g}x: {ref / TARGET_SPEEDUP:.3f} s)")
    print(f"load average after: {'/'.join(f'{v:.2f}' for v in os.getloadavg())}")
    if args.profile:
        from torch.profiler import ProfilerActivity, profile

        with profile(activities=[ProfilerActivity.CPU]) as prof:
            time_steps(True, 3, warmup=1)
        print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=15))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
