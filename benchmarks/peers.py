"""Side-by-side CPU training step: slayerc against the libraries users would pick instead.

The same network in each library: cuba (current-based LIF) Dense 200→256→256→10, or with
``--net conv`` an NMNIST-size conv net (input 2×34×34, Conv 2→16 k5 s2, 16→32 k3 s2, 32→64 k3
s2, Dense 1600→256→10), batch 32 (``--batch``), T = 100, forward + backward + Adam on an MSE
loss against a random spike target.  The peers run their synapses over the folded time axis
and their own neuron over time.  Contenders
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
``--background N`` (or ``--load N``) starts N CPU-burning processes beside the benchmark (to
measure steadiness under load).  ``--thp`` sets torch's ``THP_MEM_ALLOC_ENABLE=1`` in every
contender (large tensors on transparent huge pages: far fewer first-touch page faults, which
are a quarter of a conv-net step otherwise; measured slayerc 1.08 → 0.95 s, SpikingJelly
1.05 → 0.97 s).  ``--ftz`` calls ``torch.set_flush_denormal(True)`` in every contender:
float32 gradients below 2^−126 become 0 instead of running through the CPU's slow subnormal
path (slayerc's surrogate ``e^{−|v−θ|/τ}`` underflows into that range; by default slayerc keeps
those values, bit for bit as lava-dl).  Run: ``python benchmarks/peers.py [--steps N]
[--rounds R]``.
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
#: ``--net conv``: NMNIST-size input 2×34×34; (in, out, kernel, stride, padding) per conv
#: layer, then the flattened 64×5×5 features through dense layers.
CONV_IN = (2, 34, 34)
CONVS = ((2, 16, 5, 2, 2), (16, 32, 3, 2, 1), (32, 64, 3, 2, 1))
CONV_DENSE = (1600, 256, 10)
NET = {"net": "dense"}


def _input_shape() -> tuple[int, ...]:
    return CONV_IN if NET["net"] == "conv" else (SIZES[0],)


def _out_features() -> int:
    return CONV_DENSE[-1] if NET["net"] == "conv" else SIZES[-1]


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
        b = slayer.block.cuba
        if NET["net"] == "conv":
            blocks = [b.Conv(p, i, o, k, stride=st, padding=pd, weight_scale=2)
                      for i, o, k, st, pd in CONVS]
            blocks += [b.Flatten()] + [b.Dense(p, i, o, weight_scale=2)
                                       for i, o in zip(CONV_DENSE, CONV_DENSE[1:])]
        else:
            blocks = [b.Dense(p, i, o, weight_scale=2) for i, o in zip(SIZES, SIZES[1:])]
        net = torch.nn.Sequential(*blocks)
        if name == "slayerc-ir":
            import slayerc

            net = slayerc.to_module(slayerc.trace(net, torch.zeros(1, *_input_shape(), T)))
        return net
    return _PerStep(name)


def _describe() -> str:
    if NET["net"] == "conv":
        convs = ", ".join(f"Conv {i}->{o} k{k} s{st}" for i, o, k, st, _ in CONVS)
        return (f"cuba conv net {'x'.join(map(str, CONV_IN))}: {convs}, "
                f"Dense {'-'.join(map(str, CONV_DENSE))}")
    return f"cuba Dense {'-'.join(map(str, SIZES))}"


def _PerStep(name: str):  # noqa: N802 - a factory of torch modules by library
    import torch

    class Net(torch.nn.Module):
        """Synapses over the folded time axis (they are stateless), then the library's own
        neuron over time; ``x``: ``[N, *S, T]``."""

        def __init__(self):
            super().__init__()
            layers: list[torch.nn.Module] = []
            dense = SIZES
            if NET["net"] == "conv":
                layers += [torch.nn.Conv2d(i, o, k, stride=st, padding=pd, bias=False)
                           for i, o, k, st, pd in CONVS]
                dense = CONV_DENSE
            layers += [torch.nn.Linear(a, b, bias=False) for a, b in zip(dense, dense[1:])]
            self.syn = torch.nn.ModuleList(layers)
            self.lif = torch.nn.ModuleList(_neuron(name) for _ in layers)

        def forward(self, x):
            z = x.movedim(-1, 0)  # [T, N, *S]
            for syn, lif in zip(self.syn, self.lif):
                if isinstance(syn, torch.nn.Linear):
                    z = z.flatten(2)
                y = syn(z.flatten(0, 1))
                z = _run(name, lif, y.unflatten(0, z.shape[:2]))
            return z.movedim(0, -1)

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
    if os.environ.get("PEERS_FTZ") == "1":
        torch.set_flush_denormal(True)
    torch.manual_seed(0)
    net = _build(name)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    x = (torch.rand(N, *_input_shape(), T) < 0.1).float()
    target = (torch.rand(N, _out_features(), T) < 0.05).float()
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


def _env(args: argparse.Namespace) -> dict[str, str]:
    """A contender's environment: this checkout importable, ``--thp`` and ``--ftz`` set."""
    env = {**os.environ, "PYTHONPATH": str(HERE.parent)}
    if args.thp:
        env["THP_MEM_ALLOC_ENABLE"] = "1"
    if args.ftz:
        env["PEERS_FTZ"] = "1"
    return env


def main(argv=None) -> int:
    """Interleaved rounds of every available contender; print the table."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--steps", type=int, default=10, help="timed steps per round")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--lavaref", type=Path, default=Path("/opt/lavaref"))
    ap.add_argument("--load", "--background", dest="load", type=int, default=0,
                    help="CPU-burning processes beside the run (the load average is printed)")
    ap.add_argument("--only", nargs="*", default=None)
    ap.add_argument("--threads", default="auto",
                    help="torch threads in every contender: a number, 'auto' (1 on a busy "
                         "machine, else torch's choice) or 'default' (torch's own choice)")
    ap.add_argument("--net", choices=("dense", "conv"), default="dense",
                    help="dense: cuba Dense 200-256-256-10; conv: NMNIST-size 2x34x34 input, "
                         "3 conv layers (16, 32, 64 channels, stride 2) and Dense 1600-256-10")
    ap.add_argument("--batch", type=int, default=N)
    ap.add_argument("--thp", action="store_true",
                    help="THP_MEM_ALLOC_ENABLE=1 in every contender (torch's huge-page tensors)")
    ap.add_argument("--ftz", action="store_true",
                    help="torch.set_flush_denormal(True) in every contender (subnormal float32 "
                         "values become 0: faster, not the same bits)")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    NET["net"] = args.net
    globals()["N"] = args.batch
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
          f"{_describe()}, batch {args.batch}, T={T}{'; THP on' if args.thp else ''}"
          f"{'; subnormals flushed' if args.ftz else ''}")
    results: dict[str, list[float]] = {n: [] for n in names}
    rss: dict[str, float] = {}
    try:
        for _ in range(args.rounds):
            for name in names:
                if runners[name] is None:
                    continue
                env = _env(args)
                cmd = [runners[name], __file__, "--child", name, "--steps", str(args.steps),
                       "--net", args.net, "--batch", str(args.batch)]
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
