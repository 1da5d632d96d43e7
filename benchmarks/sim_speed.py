"""Fixed-point simulation speed: slayerc's runtime vs Lava's fixed_pt CPU simulation.

Two netlists, both written with ``slayerc.save`` and read back as Lava and ``slayerc run`` read
them: ``dense``, cuba Dense 200 -> 256 -> 256 -> 10 (random even 8-bit weights), and ``conv``,
an NMNIST-size cuba net built from ``slayerc.slayer`` blocks (input 2x34x34; Conv 2->16 k5 s2,
Conv 16->32 k3 s2, Conv 32->64 k3 s2, Dense 1600->256, Dense 256->10).  Inputs are
Bernoulli(0.1) spikes.

Reported per netlist and batch size (1 and 64): the *marginal* time per simulated step, i.e.
``(t(T2) − t(T1)) / (T2 − T1)`` for two run lengths, so that preparation and start-up cancel;
each length is warmed up once and timed as the median of ``--repeat`` runs, once before and
once after Lava's measurement (the median of the two is reported).  Lava (when
``/opt/lavaref`` exists; ``bash shared/tools/lavaref/setup.sh``) is measured in the same run the
same way, in a subprocess through ``shared/tools/lavaref/netx_run.py``, batch 1 (Lava runs one
sample at a time); its output is checked against slayerc's bit for bit.  Ratios: Lava's
per-step time over slayerc's at batch 1, and over slayerc's per sample at batch 64.

Scaling rows: the conv netlist at T = 50..400 (batch 1) and a dense 200 -> W -> W -> 10 netlist
at W = 256..4096 (batch 1, T = 200); cost per step, and per step and synapse, should stay flat.

    python benchmarks/sim_speed.py [--quick] [--no-lava] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

import slayerc
from slayerc.ir import ops
from slayerc.ir.core import Graph, GraphBuilder
from slayerc.passes import shape_infer
from slayerc.runtime.fixed import fast, fused
from slayerc.runtime.fixed_point import Simulator, layer_nodes

LAVAREF = Path("/opt/lavaref/bin/python")
NETX_RUN = Path(__file__).resolve().parents[1] / ".." / "shared" / "tools" / "lavaref"
CONV_INPUT = (2, 34, 34)


def dense_graph(sizes: tuple[int, ...] = (200, 256, 256, 10), seed: int = 0) -> Graph:
    """A cuba dense netlist (netx layout: shift, dense, LIF per layer) that keeps spiking."""
    rng = np.random.default_rng(seed)
    b = GraphBuilder()
    x = b.add(ops.Input, "inp", shape=(sizes[0],), dtype="f32")
    for k, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        w = np.clip(np.round(rng.normal(-2.0, 24.0, (n_out, n_in)) / 2) * 2, -256, 254)
        w *= min(1.0, np.sqrt(200 / n_in))  # similar drive whatever the width
        w = np.round(w / 2) * 2
        s = b.add(ops.Shift, f"layer{k}_shift", [x], steps=1)
        syn = b.add(ops.Dense, f"layer{k}_syn", [s],
                    weight=b.param(f"layer{k}.weight", (w / 64).astype(np.float32)))
        x = b.add(ops.Cuba, f"layer{k}", [syn], threshold=80 / 64, current_decay=1024 / 4096,
                  voltage_decay=128 / 4096)
    b.add(ops.Output, "out", [x])
    return shape_infer.run(b.build())


class _ConvNet(torch.nn.Module):
    """The NMNIST-size net from ``slayerc.slayer`` cuba blocks."""

    def __init__(self) -> None:
        import slayerc.slayer as slayer

        super().__init__()
        p = {"threshold": 1.0, "current_decay": 0.25, "voltage_decay": 0.03}
        cuba = slayer.block.cuba
        self.blocks = torch.nn.ModuleList([
            cuba.Conv(p, 2, 16, 5, padding=2, stride=2, weight_scale=2),
            cuba.Conv(p, 16, 32, 3, padding=1, stride=2, weight_scale=2),
            cuba.Conv(p, 32, 64, 3, padding=1, stride=2, weight_scale=2),
            cuba.Flatten(),
            cuba.Dense(p, 64 * 5 * 5, 256, weight_scale=2),
            cuba.Dense(p, 256, 10, weight_scale=2)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Blocks in order."""
        for block in self.blocks:
            x = block(x)
        return x


def conv_netlist(path: Path) -> Graph:
    """Compile the conv net, write it as a netx netlist, read it back."""
    torch.manual_seed(0)
    net = _ConvNet().eval()
    g = slayerc.compile(net, torch.zeros(1, *CONV_INPUT, 4))
    slayerc.save(g, path)
    return slayerc.load(path, input_shape=CONV_INPUT)


def spikes(shape: tuple[int, ...], batch: int, steps: int, seed: int = 1) -> np.ndarray:
    """Bernoulli(0.1) input spikes ``[batch, *shape, steps]``."""
    rng = np.random.default_rng(seed)
    return (rng.random((batch, *shape, steps)) < 0.1).astype(np.float32)


def run_time(sim: Simulator, x: np.ndarray, repeat: int) -> float:
    """Median wall time of ``sim.run(x)`` after one warm-up run."""
    sim.run(x)
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        sim.run(x)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def marginal(sim: Simulator, shape: tuple[int, ...], batch: int, lengths: tuple[int, int],
             repeat: int) -> float:
    """Seconds per extra simulated step between the two run lengths (each warmed up, timed
    interleaved with the other, median of ``repeat``)."""
    xs = [spikes(shape, batch, n) for n in lengths]
    for x in xs:
        sim.run(x)
    times: list[list[float]] = [[], []]
    for _ in range(repeat):
        for x, acc in zip(xs, times):
            t0 = time.perf_counter()
            sim.run(x)
            acc.append(time.perf_counter() - t0)
    t1, t2 = (statistics.median(acc) for acc in times)
    return (t2 - t1) / (lengths[1] - lengths[0])


LAVA_SCRIPT = r"""
import json, sys, time
import numpy as np
sys.path.insert(0, sys.argv[1])
import netx_run
net, inp = sys.argv[2], np.load(sys.argv[3])
repeat, lengths = int(sys.argv[4]), [int(a) for a in sys.argv[5:]]
layout = "chw" if inp.ndim == 4 else "whc"
netx_run.run(net, inp, 3, layout=layout, verbose=False)  # imports, first compile
times = {n: [] for n in lengths}
for _ in range(repeat):
    for n in lengths:  # interleaved, so a slow spell hits both lengths
        t0 = time.perf_counter()
        out, _, _ = netx_run.run(net, inp, n, layout=layout, verbose=False)
        times[n].append(time.perf_counter() - t0)
np.save(sys.argv[3] + ".out.npy", out)
print(json.dumps({n: sorted(v)[len(v) // 2] for n, v in times.items()}))
"""


def lava_marginal(net: Path, x: np.ndarray, lengths: tuple[int, int], repeat: int,
                  timeout: float) -> tuple[float, np.ndarray] | str:
    """Lava's seconds per extra step (batch 1) and its output for the longer run, or why not."""
    if not LAVAREF.exists():
        return f"not measured: no {LAVAREF} (bash shared/tools/lavaref/setup.sh)"
    with tempfile.TemporaryDirectory() as tmp:
        inp = Path(tmp) / "in.npy"
        np.save(inp, x)
        cmd = [str(LAVAREF), "-c", LAVA_SCRIPT, str(NETX_RUN.resolve()), str(net), str(inp),
               str(repeat), *map(str, lengths)]
        try:
            got = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            return f"not measured: over {timeout:.0f} s"
        if got.returncode:
            return "failed: " + " ".join(got.stderr.strip().splitlines()[-1:])
        times = {int(k): v for k, v in json.loads(got.stdout.strip().splitlines()[-1]).items()}
        out = np.load(str(inp) + ".out.npy")
    return (times[lengths[1]] - times[lengths[0]]) / (lengths[1] - lengths[0]), out


def load() -> str:
    """The 1/5/15-minute load averages."""
    return " ".join(f"{v:.2f}" for v in os.getloadavg())


def compare(name: str, g: Graph, net: Path, shape: tuple[int, ...], args: argparse.Namespace,
            lava_lengths: tuple[int, int]) -> None:
    """One table row per batch size, with Lava's figure measured in between."""
    sim = Simulator(g)
    fused = len(getattr(sim, "fusions", ()))
    print(f"  {name}: {fused} of {len(layer_nodes(g))} layers run fused (shift -> synapse -> "
          "cuba as one compiled loop)")
    lengths = (100, 300) if not args.quick else (50, 150)
    # each batch size measured before and after Lava (median of the two): on a shared machine
    # the load changes within a minute, and this way both sides see the same spells
    per_step = {b: [marginal(sim, shape, b, lengths, args.repeat)] for b in (1, 64)}
    lava = None if args.no_lava else lava_marginal(
        net, spikes(shape, 1, lava_lengths[1])[0], lava_lengths, args.lava_repeat,
        args.lava_timeout)
    for b in (64, 1):
        per_step[b].append(marginal(sim, shape, b, lengths, args.repeat))
    lava_s = None
    if isinstance(lava, tuple):
        lava_s, lava_out = lava
        ours = sim.run(spikes(shape, 1, lava_lengths[1])[0])["out"]
        same = "bit-exact" if np.array_equal(ours, lava_out) else "OUTPUTS DIFFER"
        print(f"  Lava fixed_pt {name}: {lava_s * 1e3:.2f} ms/step (batch 1, steps "
              f"{lava_lengths[0]}->{lava_lengths[1]}), output vs slayerc: {same}")
    elif lava is not None:
        print(f"  Lava fixed_pt {name}: {lava}")
    for batch, vals in per_step.items():
        sec = statistics.median(vals)
        row = (f"| {name:5s} | {batch:5d} | {sec * 1e3:10.3f} | {sec / batch * 1e6:12.2f} | "
               f"{1 / sec:9.0f} |")
        if lava_s is not None:
            row += f" {lava_s / (sec / batch):9.0f}x |"
        print(row)


def scaling(args: argparse.Namespace, conv: Graph) -> None:
    """Per-step cost against T (conv netlist) and against width (dense netlist)."""
    repeat = args.repeat
    print(f"\nscaling, batch 1 (load {load()}):")
    print("| net        |     T | run (ms) | ms/step | ns/step/synapse |")
    print("|------------|-------|----------|---------|-----------------|")
    sim = Simulator(conv)
    syn = _synapses(conv)
    for steps in (50, 100, 200, 400):
        sec = run_time(sim, spikes(CONV_INPUT, 1, steps), repeat)
        print(f"| conv       | {steps:5d} | {sec * 1e3:8.2f} | {sec / steps * 1e3:7.3f} | "
              f"{sec / steps / syn * 1e9:15.3f} |")
    widths = (256, 512, 1024, 2048) if args.quick else (256, 512, 1024, 2048, 4096)
    for width in widths:
        g = dense_graph((200, width, width, 10))
        sim, steps = Simulator(g), 200
        sec = marginal(sim, (200,), 1, (steps // 2, steps), repeat) * steps
        print(f"| dense {width:4d} | {steps:5d} | {sec * 1e3:8.2f} | {sec / steps * 1e3:7.3f} | "
              f"{sec / steps / _synapses(g) * 1e9:15.3f} |")


def _synapses(g: Graph) -> int:
    """Weights of the dense layers plus multiply-adds of the conv layers per step."""
    total = 0
    for node in g:
        if node.OP == "synapse.dense":
            total += int(g.param(node.weight).size)
        elif node.OP == "synapse.conv":
            total += int(np.prod(node.shape)) * int(np.prod(g.param(node.weight).shape[1:]))
    return total


def main() -> None:
    """Measure and print the tables."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--lava-repeat", type=int, default=3)
    p.add_argument("--quick", action="store_true", help="shorter runs, fewer scaling rows")
    p.add_argument("--no-lava", action="store_true")
    p.add_argument("--no-scaling", action="store_true")
    p.add_argument("--lava-timeout", type=float, default=600)
    args = p.parse_args()
    print(f"load average {load()} on {os.cpu_count()} CPUs; torch threads "
          f"{torch.get_num_threads()}; neuron path: {fast.backend()}; fused layers split a "
          f"batch over {fused.threads()} thread(s) now (by the load average)")
    with tempfile.TemporaryDirectory() as tmp:
        conv = conv_netlist(Path(tmp) / "conv.net")
        dense_net = Path(tmp) / "dense.net"
        slayerc.save(dense_graph(), dense_net)
        dense = slayerc.load(dense_net)
        print("\n| net   | batch | ms/step    | us/sample-step | steps/s   | vs Lava   |")
        print("|-------|-------|------------|----------------|-----------|-----------|")
        compare("dense", dense, dense_net, (200,), args, (100, 300))
        compare("conv", conv, Path(tmp) / "conv.net", CONV_INPUT, args, (20, 60))
    print("(vs Lava: Lava's ms/step at batch 1 over slayerc's per sample: at batch 1 the "
          "per-step ratio, at batch 64 the per-sample ratio)")
    if not args.no_scaling:
        scaling(args, conv)
    print(f"\nload average at the end {load()}")


if __name__ == "__main__":
    main()
