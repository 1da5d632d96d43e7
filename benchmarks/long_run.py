"""Long ``slayerc run``s: peak memory must not grow with the number of steps.

The netlist is ``tests/data/lava-dl/cuba_dense.net`` (lava-dl's cuba Dense 16 -> 32 -> 8, a small
dense network).  Its input is one fixed 16-channel spike pattern repeated every step, given as a
zero-stride view (so the input itself takes no memory and the network stays active for all T).
Each T = 10^5, 10^6, 10^7 runs in a fresh child process through the same driver call as
``slayerc run`` (:func:`slayerc.driver.run_netlist_to`, streamed into an ``.npy`` in a
temporary folder) and reports:

* peak RSS of the child (``resource.getrusage``: Python, torch, numba and the run together);
* the peak of Python-tracked allocations during the run alone (``tracemalloc``: numpy arrays
  included), i.e. what the simulation itself holds;
* wall time of the run, steps per second, output file size and nonzero outputs.

Flat memory: the two peaks should be the same for every T while the output file grows 10x
per row.  ``--tracemalloc-off`` measures only RSS (tracemalloc slows allocation-heavy code).

    python benchmarks/long_run.py [--steps 100000 1000000 10000000] [--tracemalloc-off]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NET = ROOT / "tests" / "data" / "lava-dl" / "cuba_dense.net"

CHILD = textwrap.dedent('''
    import json, os, resource, sys, tempfile, time, tracemalloc
    import numpy as np
    from slayerc.driver import run_netlist_to

    steps, net, trace = int(sys.argv[1]), sys.argv[2], sys.argv[3] == "1"
    rng = np.random.default_rng(0)
    pattern = (rng.random(16) < 0.3).astype(np.float32)
    x = np.lib.stride_tricks.as_strided(pattern, shape=(16, steps),
                                        strides=(pattern.strides[0], 0))
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "out.npy")
        run_netlist_to(net, x[:, :64], os.path.join(tmp, "warm.npy"))  # imports, numba, caches
        if trace:
            tracemalloc.start()
        t0 = time.perf_counter()
        shape, dtype, nonzero = run_netlist_to(net, x, out)
        wall = time.perf_counter() - t0
        peak = tracemalloc.get_traced_memory()[1] if trace else -1
        size = os.path.getsize(out)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux
    print(json.dumps({"steps": steps, "wall": wall, "rss": rss, "traced": peak,
                      "file": size, "nonzero": nonzero, "shape": list(shape)}))
''')


def measure(steps: int, trace: bool) -> dict:
    """One run of ``steps`` steps in a fresh process."""
    done = subprocess.run([sys.executable, "-c", CHILD, str(steps), str(NET), "1" if trace
                           else "0"], capture_output=True, text=True, check=False, cwd=ROOT)
    if done.returncode:
        raise SystemExit(f"T={steps} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    """Print one row per run length."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, nargs="+", default=[10**5, 10**6, 10**7])
    ap.add_argument("--tracemalloc-off", action="store_true")
    args = ap.parse_args()
    mib = 1 << 20
    print(f"netlist {NET.name}, batch 1, input: a fixed spike pattern every step")
    print(f"{'steps':>10} {'wall s':>8} {'steps/s':>10} {'peak RSS MiB':>13} "
          f"{'run traced MiB':>15} {'output MiB':>11} {'nonzero':>9}")
    for steps in args.steps:
        r = measure(steps, not args.tracemalloc_off)
        traced = f"{r['traced'] / mib:.1f}" if r["traced"] >= 0 else "-"
        print(f"{steps:>10} {r['wall']:>8.2f} {steps / r['wall']:>10.0f} {r['rss'] / mib:>13.1f} "
              f"{traced:>15} {r['file'] / mib:>11.1f} {r['nonzero']:>9}", flush=True)


if __name__ == "__main__":
    main()
