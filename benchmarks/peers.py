"""Side-by-side CPU training step: slayerc against the libraries users would pick instead.

The same network in each library: cuba (current-based LIF) Dense 200→256→256→10, batch 32,
T = 100, forward + backward + Adam on an MSE loss against a random spike target.  Contenders
(each only if it is installed; each runs in its own process, so peak memory is per process):

* ``slayerc``: ``slayerc.slayer`` blocks (eager);
* ``slayerc-ir``: the same model through ``slayerc.to_module(slayerc.trace(model, x))``;
* ``lava-dl``: lava-dl 0.6 slayer, through the ``lavaref`` environment (``--lavaref``, default
  /opt/lavaref: the project's ``shared/tools/lavaref/setup.sh`` builds it);
* ``snntorch``: ``snn.Synaptic`` (alpha = 1 − current decay, beta = 1 − voltage decay, reset to
  zero) stepped over T;
* ``norse``: ``norse.torch.LIF`` (current-based LIF, its default Euler step) over ``[T, N, C]``;
* ``spikingjelly``: ``LIFNode`` in multi-step mode with the torch backend (SpikingJelly has no
  current-based LIF; its single-decay LIF is the closest).

Rounds interleave the contenders (so load changes hit all alike); each prints the median step
time over all rounds, its ratio to ``slayerc``, and its peak resident memory; the load average is
printed before and after; ``--threads K`` sets torch's threads in every contender (on 2 loaded
cores, 2 threads can be 10× slower than 1 for every torch-based contender: measure both; the
default ``auto`` takes 1 thread when the load average is at the core count, see
:func:`auto_threads`).
``--load N`` starts N CPU-burning processes beside the benchmark (to
measure steadiness under load).  Run: ``python benchmarks/peers.py [--steps N] [--rounds R]``.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import multiprocessing
import os
import statistics
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
N, T, SIZES = 32, 100, (200, 256, 256, 10)
TH, DU, DV = 1.25, 0.25, 0.03


def _build(name: str):
    """(model, step-input transform) of one contender; the model maps [N, C, T] → [N, C, T]."""
    import torch

    if name in ("slayerc", "slayerc-ir", "lava-dl"):
        if name == "lava-dl":
            import lava.lib.dl.slayer as slayer
        else:
            import slayerc.slayer as slayer
        p = {"threshold": TH, "current_decay": DU, "voltage_decay": DV, "tau_grad": 0.03,
             "scale_grad": 3, "requires_grad": False}
        net = torch.nn.Sequential(*(slayer.block.cuba.Dense(p, a, b, weight_scale=2)
                                    for a, b in zip(SIZES, SIZES[1:])))
        if name == "slayerc-ir":
            import slayerc

            net = slayerc.to_module(slayerc.trace(net, torch.zeros(1, SIZES[0], T)))
        return net
    return _PerStep(name)


def _PerStep(name: str):  # noqa: N802 - a factory of torch modules by library
    import torch

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = torch.nn.ModuleList(torch.nn.Linear(a, b, bias=False)
                                          for a, b in zip(SIZES, SIZES[1:]))
            self.lif = torch.nn.ModuleList(_neuron(name) for _ in SIZES[1:])

        def forward(self, x):  # x: [N, C, T]
            z = x.permute(2, 0, 1)  # [T, N, C]
            for fc, lif in zip(self.fc, self.lif):
                z = _run(name, lif, fc(z))
            return z.permute(1, 2, 0)

    return Net()


def _neuron(name: str):
    if name == "snntorch":
        import snntorch as snn

        return snn.Synaptic(alpha=1 - DU, beta=1 - DV, threshold=TH, reset_mechanism="zero")
    if name == "norse":
        import norse.torch as norse

        return norse.LIF(norse.LIFParameters(v_th=__import__("torch").tensor(TH)))
    from spikingjelly.activation_based import neuron

    return neuron.LIFNode(tau=2.0, v_threshold=TH, step_mode="m")


def _run(name: str, lif, z):
    import torch

    if name == "snntorch":
        syn, mem = lif.init_synaptic()
        out = []
        for t in range(z.shape[0]):
            s, syn, mem = lif(z[t], syn, mem)
            out.append(s)
        return torch.stack(out)
    if name == "norse":
        return lif(z)[0]
    from spikingjelly.activation_based import functional

    functional.reset_net(lif)
    return lif(z)


def _child(name: str, steps: int, threads: int | None) -> None:
    """Time ``steps`` training steps of one contender; print JSON (seconds, peak RSS)."""
    import resource
    import time

    import torch

    if threads:
        torch.set_num_threads(threads)
    torch.manual_seed(0)
    net = _build(name)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    x = (torch.rand(N, SIZES[0], T) < 0.1).float()
    target = (torch.rand(N, SIZES[-1], T) < 0.05).float()
    times = []
    for i in range(steps + 2):
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        torch.nn.functional.mse_loss(net(x), target).backward()
        opt.step()
        if i >= 2:
            times.append(time.perf_counter() - t0)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"times": times, "rss_mb": rss}))


def _available(name: str, lavaref: Path) -> str | None:
    """The python that runs ``name``, or None when it is not installed."""
    if name == "lava-dl":
        py = lavaref / "bin" / "python"
        return str(py) if py.exists() else None
    module = {"snntorch": "snntorch", "norse": "norse", "spikingjelly": "spikingjelly"}.get(name)
    if module and importlib.util.find_spec(module) is None:
        return None
    return sys.executable


def auto_threads(extra: int = 0) -> int | None:
    """The torch thread count the benchmarks use by default (``--threads auto``): 1 when the
    1-minute load average says the cores are already taken, else None (torch's own choice).

    On a busy machine every torch contender's intra-op threads wait on each other at the end
    of each parallel region (a worker that lost its core stalls the op): measured on 2 cores at
    load 6-9, a batch-1 forward took 0.30 s with 2 threads and 0.025 s with 1.  The library
    itself never changes torch's global setting; users choose with ``torch.set_num_threads``.
    ``extra`` counts busy processes about to start (the benchmark's own burners).
    """
    return 1 if os.getloadavg()[0] + extra >= (os.cpu_count() or 1) - 0.5 else None


def threads_arg(value: str | None, extra: int = 0) -> int | None:
    """``--threads``: a number, ``auto`` (:func:`auto_threads`) or ``default``/None."""
    if value in (None, "default"):
        return None
    return auto_threads(extra) if value == "auto" else int(value)


def _burn() -> None:
    while True:
        pass


def _table(names, results, rss, runners) -> None:
    """The result table: median seconds per step, ratio to slayerc, peak RSS."""
    base = statistics.median(results["slayerc"]) if results.get("slayerc") else None
    print(f"{'contender':<14}{'median s/step':>14}{'vs slayerc':>12}{'peak RSS MB':>13}")
    for name in names:
        if not results[name]:
            print(f"{name:<14}{'not installed' if runners[name] is None else 'failed':>14}")
            continue
        med = statistics.median(results[name])
        ratio = f"{med / base:.2f}x" if base else "-"
        print(f"{name:<14}{med:>14.4f}{ratio:>12}{rss[name]:>13.0f}")


def main(argv=None) -> int:
    """Interleaved rounds of every available contender; print the table."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--steps", type=int, default=10, help="timed steps per round")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--lavaref", type=Path, default=Path("/opt/lavaref"))
    ap.add_argument("--load", type=int, default=0, help="CPU-burning processes beside the run")
    ap.add_argument("--only", nargs="*", default=None)
    ap.add_argument("--threads", default="auto",
                    help="torch threads in every contender: a number, 'auto' (1 on a busy "
                         "machine, else torch's choice) or 'default' (torch's own choice)")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        _child(args.child, args.steps, threads_arg(args.threads))
        return 0
    args.threads = threads_arg(args.threads, args.load)
    names = args.only or ["slayerc", "slayerc-ir", "lava-dl", "snntorch", "norse",
                          "spikingjelly"]
    runners = {n: _available(n, args.lavaref) for n in names}
    burners = [multiprocessing.Process(target=_burn, daemon=True) for _ in range(args.load)]
    for b in burners:
        b.start()
    print(f"load average before: {'/'.join(f'{v:.2f}' for v in os.getloadavg())}; "
          f"{args.load} burner processes; torch threads {args.threads or 'default'}; "
          f"cuba Dense {'-'.join(map(str, SIZES))}, batch {N}, T={T}")
    results: dict[str, list[float]] = {n: [] for n in names}
    rss: dict[str, float] = {}
    try:
        for _ in range(args.rounds):
            for name in names:
                if runners[name] is None:
                    continue
                env = {**os.environ, "PYTHONPATH": str(HERE.parent)}
                cmd = [runners[name], __file__, "--child", name, "--steps", str(args.steps)]
                if args.threads:
                    cmd += ["--threads", str(args.threads)]
                out = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=900)
                if out.returncode:
                    print(f"  {name}: failed: {out.stderr.strip().splitlines()[-1:]}")
                    runners[name] = None
                    continue
                data = json.loads(out.stdout.strip().splitlines()[-1])
                results[name] += data["times"]
                rss[name] = max(rss.get(name, 0.0), data["rss_mb"])
    finally:
        for b in burners:
            b.terminate()
    _table(names, results, rss, runners)
    print(f"load average after: {'/'.join(f'{v:.2f}' for v in os.getloadavg())}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
