"""Per-family training speed on CPU: forward + backward, torch loop against the compiled loop.

Each neuron family's ``dynamics`` (``slayerc.runtime.neurons``) runs forward and backward on
random input (float32, ``[batch, neurons, T]``, per-neuron decays that need gradients) with the
compiled recursions of :mod:`slayerc.runtime.compiled` off (the per-step torch loops) and on
(numba), alternating the two within each repeat so that a change of load hits both alike.  Each
row is the median over the repeats, in milliseconds, and the ratio torch / compiled.  The load
average is printed before and after.  The outputs of both paths are checked equal first.

Run: ``python benchmarks/family_speed.py [--neurons 256] [--batch 32] [--steps 100]
[--repeats 7] [--threads 1]``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import torch

from slayerc.runtime import compiled
from slayerc.runtime.neurons import adrf, adrf_iz, alif, li, rf, rf_iz, sigma_delta


def _cases(n: int):
    """``family -> (callable(x, params) -> loss-ready outputs, param factory, complex input)``."""
    def dec(lo=0.0, hi=4096.0):
        return lo + torch.rand(n) * (hi - lo)

    def spikes(out):
        return out[0] if isinstance(out, tuple) else out

    rf_p = lambda: [dec(0, 900), dec(3000, 3900)]  # noqa: E731
    ad_p = lambda: rf_p() + [dec(100, 400), dec(500, 1200)]  # noqa: E731
    return {
        "li": (lambda x, p: li.dynamics(x, *p)[0], lambda: [dec(), dec()], False),
        "alif": (lambda x, p: spikes(alif.dynamics(x, *p, 1.0, 0.5, 1.0, 1.0)),
                 lambda: [dec(), dec(), dec(100, 400), dec(500, 1200)], False),
        "rf": (lambda x, p: spikes(rf.dynamics(x, *p, 0.5, 1.0, 1.0)), rf_p, True),
        "rf_iz": (lambda x, p: spikes(rf_iz.dynamics(x, *p, 0.5, 1.0, 1.0)), rf_p, True),
        "adrf": (lambda x, p: spikes(adrf.dynamics(x, *p, 0.5, 0.2, 1.0, 1.0)), ad_p, True),
        "sigma_delta": (lambda x, p: sigma_delta.dynamics(x, p[0])[0],
                        lambda: [dec(0.05, 0.3)], False),
        "adrf_iz": (lambda x, p: spikes(adrf_iz.dynamics(x, *p, 0.5, 0.2, 1.0, 1.0)), ad_p,
                    True),
    }


def _run(fn, x, params, on: bool):
    old = compiled.set_compiled(on)
    try:
        leaves = [p.clone().requires_grad_(True) for p in params]
        xs = tuple(t.clone().requires_grad_(True) for t in x)
        t0 = time.perf_counter()
        y = fn(xs if len(xs) > 1 else xs[0], leaves)
        y.sum().backward()
        dt = time.perf_counter() - t0
    finally:
        compiled.set_compiled(old)
    return dt, y.detach(), [p.grad for p in leaves] + [t.grad for t in xs]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--neurons", type=int, default=256)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    print(f"load average before: {os.getloadavg()}; numba: {compiled.numba is not None}; "
          f"{a.neurons} neurons x batch {a.batch} x T={a.steps}, torch threads {a.threads}")
    print(f"{'family':<11} {'torch ms':>9} {'compiled ms':>12} {'ratio':>6}")
    for name, (fn, make, cplx) in _cases(a.neurons).items():
        shape = (a.batch, a.neurons, a.steps)
        x = tuple(torch.rand(shape) * 0.6 for _ in range(2 if cplx else 1))
        params = make()
        _, y0, g0 = _run(fn, x, params, False)
        _, y1, g1 = _run(fn, x, params, True)  # also compiles the kernels once
        same = torch.equal(y0, y1) and all(
            (p is None and q is None) or torch.equal(p, q) for p, q in zip(g0, g1))
        times = {False: [], True: []}
        for _ in range(a.repeats):
            for on in (False, True):
                times[on].append(_run(fn, x, params, on)[0])
        t_torch, t_comp = (statistics.median(times[k]) * 1e3 for k in (False, True))
        print(f"{name:<11} {t_torch:9.1f} {t_comp:12.1f} {t_torch / t_comp:6.2f}"
              f"{'' if same else '  OUTPUTS DIFFER'}")
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
