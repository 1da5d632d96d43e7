"""Side-by-side float inference: slayerc against the libraries users would pick instead.

The network of ``peers.py`` (cuba Dense 200→256→256→10, the same contenders built the same way:
``slayerc`` eager blocks, ``slayerc-ir`` through ``slayerc.to_module``, lava-dl 0.6 through the
``lavaref`` environment, snnTorch ``Synaptic``, Norse ``LIF``, SpikingJelly ``LIFNode``
multi-step with the torch backend), run forward only under ``torch.no_grad()`` on random input
spikes (10 % rate), T = 1000, at batch 1 and batch 64.

Each contender runs in its own process, rounds interleave the contenders (so a change of load
hits all alike), and each row is the median over all rounds' timed forwards.  The table gives
seconds per forward, simulated steps per second (``T / seconds``, and times the batch) and
the ratio to ``slayerc`` (above 1: slower than slayerc).  The load average is printed before
and after.  Options: ``--threads K [K ...]`` sets torch's threads in every contender (several
values: a row per setting, to compare them side by side; ``default`` is torch's own choice;
the default ``auto`` picks 1 when the machine is as busy as it has cores, see
:func:`peers.auto_threads`),
``--load N`` starts N CPU-burning processes beside the run, ``--quick`` is a shorter run
(under a minute on 2 cores: T = 200, one round, three timed forwards each).

Run: ``python benchmarks/infer_speed.py [--quick] [--load 2] [--threads 1]``.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import statistics
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import peers  # noqa: E402  (benchmarks/ is not a package)

NAMES = ["slayerc", "slayerc-ir", "lava-dl", "snntorch", "norse", "spikingjelly"]


def _child(name: str, steps: int, batches: list[int], repeats: int,
           threads: int | None) -> None:
    """Time ``repeats`` forwards (after one untimed) per batch size; print JSON."""
    import resource
    import time

    import torch

    if threads:
        torch.set_num_threads(threads)
    torch.manual_seed(0)
    net = peers._build(name)
    times: dict[str, list[float]] = {}
    rates: dict[str, float] = {}
    with torch.no_grad():
        for batch in batches:
            x = (torch.rand(batch, peers.SIZES[0], steps) < 0.1).float()
            y = net(x)
            times[str(batch)] = []
            for _ in range(repeats):
                t0 = time.perf_counter()
                y = net(x)
                times[str(batch)].append(time.perf_counter() - t0)
            rates[str(batch)] = float((y > 0).float().mean())
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"times": times, "rate": rates, "rss_mb": rss,
                      "threads": torch.get_num_threads()}))


def _load() -> str:
    return "/".join(f"{v:.2f}" for v in os.getloadavg())


def _table(names, batches, steps, results, rss, runners, base_name) -> None:
    """Median seconds per forward, steps per second, ratio to ``base_name``, peak RSS."""
    print(f"{'contender':<20}{'batch':>6}{'median s':>11}{'steps/s':>10}{'samples·steps/s':>17}"
          f"{'vs slayerc':>12}{'RSS MB':>8}")
    for batch in batches:
        key = str(batch)
        base = results.get(base_name, {}).get(key) if base_name else None
        base_med = statistics.median(base) if base else None
        for name in names:
            got = results.get(name, {}).get(key)
            if not got:
                why = "not installed" if runners[name] is None else "failed"
                print(f"{name:<20}{batch:>6}{why:>11}")
                continue
            med = statistics.median(got)
            ratio = f"{med / base_med:.2f}x" if base_med else "-"
            print(f"{name:<20}{batch:>6}{med:>11.4f}{steps / med:>10.0f}"
                  f"{batch * steps / med:>17.0f}{ratio:>12}{rss.get(name, 0):>8.0f}")


def _settings(values: list[str] | None, extra: int) -> list[int | None]:
    """Thread settings to compare: numbers, ``auto`` (:func:`peers.auto_threads`) or
    ``default``; ``extra`` busy processes are about to start."""
    return list(dict.fromkeys(peers.threads_arg(v, extra) for v in values or ["auto"]))


def _run_one(runner, name, args, threads) -> dict | None:
    """One child process of contender ``name``: its JSON, or None (the reason is printed)."""
    env = {**os.environ, "PYTHONPATH": str(HERE.parent)}
    cmd = [runner, __file__, "--child", name, "--steps", str(args.steps),
           "--repeats", str(args.repeats), "--batches", *map(str, args.batches)]
    if threads:
        cmd += ["--threads", str(threads)]
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=1800)
    if out.returncode:
        print(f"  {name}: failed: {out.stderr.strip().splitlines()[-1:]}")
        return None
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    """Interleaved rounds of every available contender; print the table."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--steps", type=int, default=1000, help="time steps T")
    ap.add_argument("--batches", type=int, nargs="+", default=[1, 64])
    ap.add_argument("--repeats", type=int, default=3, help="timed forwards per round")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--quick", action="store_true", help="T=200, 1 round, 3 timed forwards")
    ap.add_argument("--lavaref", type=Path, default=Path("/opt/lavaref"))
    ap.add_argument("--load", type=int, default=0, help="CPU-burning processes beside the run")
    ap.add_argument("--only", nargs="*", default=None)
    ap.add_argument("--threads", nargs="*", default=None,
                    help="torch threads in every contender: numbers, 'auto' (the default: 1 on "
                         "a busy machine, else torch's choice) or 'default' (torch's choice); "
                         "several values compare them, each a row of its own")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.quick:
        args.steps, args.rounds, args.repeats = 200, 1, 3
    if args.child:
        _child(args.child, args.steps, args.batches, args.repeats,
               int(args.threads[0]) if args.threads else None)
        return 0
    names = args.only or NAMES
    runners = {n: peers._available(n, args.lavaref) for n in names}
    burners = [multiprocessing.Process(target=peers._burn, daemon=True)
               for _ in range(args.load)]
    for b in burners:
        b.start()
    settings = _settings(args.threads, args.load)
    labels = {(n, t): n if len(settings) == 1 else f"{n}/{t or 'dflt'}t"
              for n in names for t in settings}
    print(f"load average before: {_load()}; {os.cpu_count()} logical CPUs; {args.load} burner "
          f"processes; torch threads {', '.join(str(t or 'default') for t in settings)}; "
          f"cuba Dense {'-'.join(map(str, peers.SIZES))}, T={args.steps}, no_grad forward")
    results: dict[str, dict[str, list[float]]] = {label: {} for label in labels.values()}
    rss: dict[str, float] = {}
    try:
        for _ in range(args.rounds):
            for (name, threads), label in labels.items():
                if runners[name] is None:
                    continue
                data = _run_one(runners[name], name, args, threads)
                if data is None:
                    runners[name] = None
                    continue
                for key, got in data["times"].items():
                    results[label].setdefault(key, []).extend(got)
                rss[label] = max(rss.get(label, 0.0), data["rss_mb"])
    finally:
        for b in burners:
            b.terminate()
    base = labels[("slayerc", settings[0])] if "slayerc" in names else None
    _table(list(labels.values()), args.batches, args.steps, results, rss,
           {label: runners[n] for (n, _), label in labels.items()}, base)
    print(f"load average after: {_load()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
