"""Fixed-point simulation speed: slayerc's runtime vs Lava's fixed_pt CPU simulation.

Network: cuba Dense 200 -> 256 -> 256 -> 10 (netx layout: shift, dense, LIF per layer), random
even 8-bit weights, Bernoulli(0.1) input spikes, T = 1000.  Reports simulated steps per second
at batch 1 and 64 (and samples·steps per second) on the path that runs (numba when installed,
else numpy; ``SLAYERC_NO_NUMBA=1`` forces numpy), the first call's JIT time (excluded), the
per-step cost of the numpy neuron recurrence vs torch, and the ratio against Lava measured on
this machine through ``/opt/lavaref`` (``bash shared/tools/lavaref/setup.sh``).  Without lavaref
it prints the stored figure (about 1 s per 100 steps, DESIGN.md) and says it was not re-measured.

    python benchmarks/sim_speed.py [--steps 1000] [--lava-steps 300]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from slayerc.ir import ops
from slayerc.ir.core import Graph, GraphBuilder
from slayerc.passes import shape_infer
from slayerc.runtime.fixed import fast
from slayerc.runtime.fixed_point import Simulator, simulate

SIZES = (200, 256, 256, 10)
LAVAREF = Path("/opt/lavaref/bin/python")
STORED_LAVA_S_PER_STEP = 0.01  # DESIGN.md: about 1 s per 100 steps, batch 1


def network(seed: int = 0) -> Graph:
    """The benchmark network with random quantized weights that keep every layer spiking."""
    rng = np.random.default_rng(seed)
    b = GraphBuilder()
    x = b.add(ops.Input, "inp", shape=(SIZES[0],), dtype="f32")
    for k, (n_in, n_out) in enumerate(zip(SIZES[:-1], SIZES[1:])):
        w = np.clip(np.round(rng.normal(-2.0, 24.0, (n_out, n_in)) / 2) * 2, -256, 254)
        s = b.add(ops.Shift, f"layer{k}_shift", [x], steps=1)
        syn = b.add(ops.Dense, f"layer{k}_syn", [s],
                    weight=b.param(f"layer{k}.weight", (w / 64).astype(np.float32)))
        x = b.add(ops.Cuba, f"layer{k}", [syn], threshold=80 / 64, current_decay=1024 / 4096,
                  voltage_decay=128 / 4096)
    b.add(ops.Output, "out", [x])
    return shape_infer.run(b.build())


def spikes(batch: int, steps: int, seed: int = 1) -> np.ndarray:
    """Bernoulli(0.1) input spikes ``[batch, 200, steps]``."""
    return (np.random.default_rng(seed).random((batch, SIZES[0], steps)) < 0.1).astype(np.float32)


def first_call(g: Graph) -> float:
    """Seconds of the first (tiny) ``simulate``: numba's JIT compile or cache load, excluded
    from the steps/s figures."""
    t0 = time.perf_counter()
    simulate(g, spikes(1, 5), record="layers")
    simulate(g, spikes(2, 5), record="layers")
    return time.perf_counter() - t0


def time_slayerc(g: Graph, batch: int, steps: int, repeat: int = 5) -> tuple[float, dict]:
    """Best wall time of a run (after a warm-up) and the firing rate of each layer.

    The network is prepared once (``Simulator``), as Lava builds its processes once; the time
    is the run itself.  ``simulate(g, x)`` prepares and runs in one call (about 3 ms more).
    """
    x = spikes(batch, steps)
    sim = Simulator(g)
    sim.run(x, record="layers")
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        res = sim.run(x, record="layers")
        best = min(best, time.perf_counter() - t0)
    rates = {k: round(float(v.mean()), 4) for k, v in res.items() if k != "out"}
    return best, rates


def neuron_backends(n: int = 256, steps: int = 1000) -> dict[str, float]:
    """Microseconds per step of the CUBA recurrence for one layer, numpy vs torch."""
    a = np.random.default_rng(2).integers(-200, 200, (steps, 1, n)).astype(np.float64) * 64
    out = {}
    for name, lib in (("numpy_f64", np), ("torch_f64", torch)):
        arr = a if lib is np else torch.from_numpy(a)
        u, v = lib.zeros(arr.shape[1:], dtype=arr.dtype), lib.zeros(arr.shape[1:], dtype=arr.dtype)
        t0 = time.perf_counter()
        for t in range(steps):
            u = lib.trunc(u * 0.75) + arr[t]
            v = lib.trunc(v * 0.96875) + u
            v = lib.clip(v, -8388607.0, 8388607.0)
            s = v > 5120.0
            v = lib.where(s, 0.0, v) if lib is np else torch.where(s, 0.0, v)
        out[name] = (time.perf_counter() - t0) / steps * 1e6
    return {k: round(v, 2) for k, v in out.items()}


LAVA_SCRIPT = r"""
import sys, time, json, numpy as np
from lava.lib.dl import netx
from lava.proc import io
from lava.magma.core.run_configs import Loihi2SimCfg
from lava.magma.core.run_conditions import RunSteps
net_path, inp_path, steps = sys.argv[1], sys.argv[2], int(sys.argv[3])
data = np.load(inp_path).astype(np.int32)
net = netx.hdf5.Network(net_config=net_path)
src = io.source.RingBuffer(data=data)
src.s_out.connect(net.inp)
sink = io.sink.RingBuffer(shape=net.out.shape, buffer=data.shape[-1])
net.out.connect(sink.a_in)
cfg = Loihi2SimCfg(select_tag='fixed_pt')
t0 = time.perf_counter(); net.run(condition=RunSteps(num_steps=10), run_cfg=cfg)
t1 = time.perf_counter(); net.run(condition=RunSteps(num_steps=steps), run_cfg=cfg)
t2 = time.perf_counter(); net.stop()
print(json.dumps({"first_10_steps_s": t1 - t0, "s_per_step": (t2 - t1) / steps}))
"""


def time_lava(g: Graph, steps: int) -> dict | None:
    """Lava's seconds per step on this machine (after a 10-step warm-up), or None."""
    if not LAVAREF.exists():
        return None
    from slayerc.backends.files import save

    with tempfile.TemporaryDirectory() as tmp:
        net, inp = Path(tmp) / "bench.net", Path(tmp) / "in.npy"
        save(g, net)
        np.save(inp, spikes(1, steps + 10)[0])
        got = subprocess.run([str(LAVAREF), "-c", LAVA_SCRIPT, str(net), str(inp), str(steps)],
                             capture_output=True, text=True, timeout=900)
    if got.returncode:
        print("lavaref run failed:", got.stderr.strip().splitlines()[-1:])
        return None
    return json.loads(got.stdout.strip().splitlines()[-1])


def main() -> None:
    """Measure and print the figures."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--steps", type=int, default=1000)
    p.add_argument("--lava-steps", type=int, default=300)
    args = p.parse_args()
    torch.set_num_threads(max(1, torch.get_num_threads()))
    g = network()
    print(f"cuba {'-'.join(map(str, SIZES))}, T={args.steps}, "
          f"torch threads {torch.get_num_threads()}, neuron path: {fast.backend()} "
          "(SLAYERC_NO_NUMBA=1 forces numpy)")
    print(f"first call (JIT compile or cache load, not timed below): {first_call(g):.2f} s")
    rows = {}
    for batch in (1, 64):
        sec, rates = time_slayerc(g, batch, args.steps)
        rows[batch] = args.steps / sec
        print(f"slayerc batch {batch:3d}: {sec:.3f} s  {args.steps / sec:10.0f} steps/s  "
              f"{batch * args.steps / sec:12.0f} samples*steps/s  rates {rates}")
    print("neuron recurrence, us/step for 256 neurons (batch 1):", neuron_backends())
    lava = time_lava(g, args.lava_steps)
    if lava is None:
        lava_sps = 1 / STORED_LAVA_S_PER_STEP
        print(f"Lava: not re-measured (no {LAVAREF}); stored figure ~1 s per 100 steps "
              f"= {lava_sps:.0f} steps/s")
    else:
        lava_sps = 1 / lava["s_per_step"]
        warm = lava["first_10_steps_s"]
        print(f"Lava fixed_pt (measured here, {args.lava_steps} steps after warm-up): "
              f"{lava_sps:.1f} steps/s (first 10 steps incl. compile {warm:.1f} s)")
    print(f"speed-up vs Lava: batch 1 {rows[1] / lava_sps:.0f}x, "
          f"batch 64 (samples*steps) {64 * rows[64] / lava_sps:.0f}x")


if __name__ == "__main__":
    main()
