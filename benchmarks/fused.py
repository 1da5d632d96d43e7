"""Eager vs ``slayerc.compile(model, x, backend="triton")``: training-step time and memory.

The compiled module is ``slayerc.to_module(trace(model, x), backend="triton")``: the model's IR
graph as a trainable module whose neuron nodes run their family's fused Triton kernel (one launch
per direction) and whose synapses run as torch ops.  Three workloads (``--quick`` shrinks them
for a CPU run under Triton's interpreter):

a. cuba Dense 200→256→256→10 (slayer blocks), batch 32, T = 100;
b. one layer of 16,384 CUBA-LIF neurons behind a slayer Dense synapse,
   T = 500, batch 16;
c. an NMNIST-style conv net: 2×34×34 → conv 12 k5 → pool 2 → conv 64 k5 → pool 2 → dense 10,
   T = 100, batch 16.

For each: median seconds of one training step (forward + backward + Adam step) of the eager model
and of the compiled module, the bytes autograd saves for backward (device independent), and on
CUDA the peak allocated memory; the number of neuron nodes (which run fused) is printed first.
For (b) it also times the fused neuron op alone, forward and backward, in both
kernel layouts (``time_last``: strided in place; ``time_major``: one transpose each way), and
prints the bytes the kernels move per second as a fraction of the device's peak memory
bandwidth (table below; ``n/a`` on CPU, where the interpreter's numbers mean nothing about a GPU).

Run: ``python benchmarks/fused.py [--quick] [--reps N]``.  Without CUDA, ``TRITON_INTERPRET=1``
is set and ``--quick`` is implied.
"""

from __future__ import annotations

import argparse
import copy
import os
import statistics
import time

import torch

if not torch.cuda.is_available():  # must precede the first triton import
    os.environ.setdefault("TRITON_INTERPRET", "1")

import slayerc  # noqa: E402
import slayerc.slayer as slayer  # noqa: E402
from slayerc.backends.triton import ops  # noqa: E402

PEAK_BANDWIDTH = {
    # substring of torch.cuda.get_device_name() → peak HBM/GDDR bandwidth, bytes/s
    "H200": 4.8e12, "H100 SXM": 3.35e12, "H100 NVL": 3.9e12, "H100 PCIe": 2.0e12, "H100": 3.35e12,
    "A100-SXM4-80GB": 2.039e12, "A100 80GB PCIe": 1.935e12, "A100": 1.555e12,
    "L40S": 0.864e12, "L40": 0.864e12, "L4": 0.3e12, "A10": 0.6e12, "RTX 4090": 1.008e12,
    "RTX 3090": 0.936e12, "V100": 0.9e12, "T4": 0.32e12,
}

PARAMS = {"threshold": 1.25, "current_decay": 0.25, "voltage_decay": 0.03, "tau_grad": 0.03,
          "scale_grad": 3, "requires_grad": True}


def peak_bandwidth(device: torch.device) -> float | None:
    """Peak memory bandwidth of ``device`` in bytes/s, or None (CPU / unknown GPU)."""
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    for key, value in PEAK_BANDWIDTH.items():
        if key in name:
            return value
    return None


def dense_net(sizes):
    """(a) cuba Dense blocks."""
    return torch.nn.Sequential(*[
        slayer.block.cuba.Dense(PARAMS, a, b, weight_scale=2) for a, b in zip(sizes, sizes[1:])
    ])


class LinearLif(torch.nn.Module):
    """(b) a slayer Dense synapse (a matrix product over ``[N, C, T]``) feeding one layer of
    CUBA-LIF neurons."""

    def __init__(self, n_in, n_out):
        super().__init__()
        self.fc = slayer.synapse.Dense(n_in, n_out)
        self.neuron = slayer.neuron.cuba.Neuron(**PARAMS)

    def forward(self, x):
        """Spikes of the neuron layer."""
        return self.neuron(self.fc(x))


def conv_net(hw):
    """(c) NMNIST-style conv net; ``hw`` is the input height = width."""
    size = (hw - 4 + 1) // 2
    size = (size - 4 + 1) // 2
    return torch.nn.Sequential(
        slayer.block.cuba.Conv(PARAMS, 2, 12, 5, weight_scale=2),
        slayer.block.cuba.Pool(PARAMS, 2),
        slayer.block.cuba.Conv(PARAMS, 12, 64, 5, weight_scale=2),
        slayer.block.cuba.Pool(PARAMS, 2),
        slayer.block.cuba.Flatten(),
        slayer.block.cuba.Dense(PARAMS, 64 * size * size, 10, weight_scale=2),
    )


def fuse(net: torch.nn.Module, x: torch.Tensor) -> torch.nn.Module:
    """The compiled module of ``net`` (the IR graph's parameters, starting from ``net``'s)."""
    return slayerc.compile(net, x, backend="triton").to(x.device)


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def saved_bytes(fn) -> int:
    """Bytes of the tensors autograd saves for backward while ``fn()`` runs (distinct storages)."""
    seen: dict[int, int] = {}

    def pack(t):
        seen[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = fn()
    return sum(seen.values()), out


def measure(net, x, reps, device):
    """Median seconds of forward + backward + Adam step, saved bytes, CUDA peak (or None)."""
    times = []
    peak = None
    saved = 0
    opt = torch.optim.Adam([p for p in net.parameters() if p.requires_grad], lr=1e-3)
    for i in range(reps + 1):
        opt.zero_grad(set_to_none=True)
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        _sync(device)
        t0 = time.perf_counter()
        saved, y = saved_bytes(lambda: net(x))
        y.sum().backward()
        opt.step()
        _sync(device)
        if i:  # the first call compiles / warms up
            times.append(time.perf_counter() - t0)
        if device.type == "cuda":
            peak = torch.cuda.max_memory_allocated(device)
    return statistics.median(times), saved, peak


def _mb(b):
    return "n/a" if b is None else f"{b / 2**20:8.1f} MiB"


def compare(name, build, x, reps, device):
    """Print eager vs fused for one workload."""
    torch.manual_seed(0)
    eager = build().to(device)
    with torch.no_grad():
        eager(x)  # fixes shapes and draws lazy per-channel parameters before the copy
    fused = fuse(copy.deepcopy(eager), x)
    neurons = sum(n.OP.startswith("neuron.") for n in fused.graph)
    kernels = "triton" if ops.use_triton(x) else "torch dynamics (fallback)"
    print(f"{name}: {neurons} neuron nodes, kernels: {kernels}")
    te, se, pe = measure(eager, x, reps, device)
    tf, sf, pf = measure(fused, x, reps, device)
    print(f"{name:<34} eager {te * 1e3:9.2f} ms  saved {_mb(se)}  peak {_mb(pe)}")
    print(f"{'':<34} comp. {tf * 1e3:9.2f} ms  saved {_mb(sf)}  peak {_mb(pf)}"
          f"   speed-up {te / tf:5.2f}x")


def neuron_bandwidth(n, c, t, reps, device):
    """Time the fused CUBA op alone (forward, backward) in both layouts; print GB/s and % peak."""
    x = torch.rand(n, c, t, device=device).requires_grad_(True)
    du = torch.tensor([1024.0], device=device)
    dv = torch.tensor([128.0], device=device)
    elems = x.numel()
    peak = peak_bandwidth(device)
    for layout in ("time_last", "time_major"):
        ops.LAYOUT = layout
        fwd, bwd = [], []
        for i in range(reps + 1):
            _sync(device)
            t0 = time.perf_counter()
            y, _ = ops.cuba(x, du, dv, 1.25, 0.03, 3.0)
            _sync(device)
            t1 = time.perf_counter()
            (gx,) = torch.autograd.grad(y, [x], torch.ones_like(y))
            _sync(device)
            if i:
                fwd.append(t1 - t0)
                bwd.append(time.perf_counter() - t1)
        # forward reads x, writes y and ρ; backward reads g and ρ, writes gx (4 bytes each)
        for what, ts in (("forward", fwd), ("backward", bwd)):
            sec = statistics.median(ts)
            rate = 3 * elems * x.element_size() / sec
            frac = "n/a" if peak is None else f"{100 * rate / peak:5.1f}% of peak"
            print(f"  neuron kernel {layout:<10} {what:<8} {sec * 1e3:9.3f} ms  "
                  f"{rate / 1e9:8.2f} GB/s  {frac}")
    ops.LAYOUT = "time_last"


def main(argv=None) -> int:
    """Run the three workloads and the bandwidth measurement."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="small sizes (CPU / interpreter)")
    ap.add_argument("--reps", type=int, default=None, help="timed repetitions (median)")
    args = ap.parse_args(argv)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    quick = args.quick or device.type == "cpu"
    reps = args.reps or (2 if quick else 10)
    interp = os.environ.get("TRITON_INTERPRET") == "1"
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    print(f"device: {name}; triton interpreter: {interp}; quick: {quick}")
    if quick:
        a = ((20, 32, 32, 10), 4, 20)
        b = (4, 512, 2, 50)
        c = (18, 2, 10)
    else:
        a = ((200, 256, 256, 10), 32, 100)
        b = (128, 16384, 16, 500)
        c = (34, 16, 100)
    spikes = lambda *shape: (torch.rand(*shape, device=device) < 0.1).float()  # noqa: E731
    sizes, batch, steps = a
    compare(f"(a) cuba Dense {'-'.join(map(str, sizes))}", lambda: dense_net(sizes),
            spikes(batch, sizes[0], steps), reps, device)
    n_in, n_out, batch, steps = b
    compare(f"(b) Linear→{n_out} LIF, T={steps}", lambda: LinearLif(n_in, n_out),
            spikes(batch, n_in, steps), reps, device)
    hw, batch, steps = c
    compare(f"(c) NMNIST conv {hw}x{hw}, T={steps}", lambda: conv_net(hw),
            spikes(batch, 2, hw, hw, steps), reps, device)
    print(f"(b) neuron op alone, {b[2]}x{n_out}x{b[3]}:")
    neuron_bandwidth(b[2], n_out, b[3], reps, device)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
