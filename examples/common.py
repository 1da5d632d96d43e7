"""Shared plumbing of the runnable examples: command-line flags, threads, output folder, pictures.

Every example takes ``--quick`` (a tiny setting for CI: under a minute on 2 CPU cores),
``--out DIR`` (where the checkpoint, netlist and pictures go), ``--seed`` and ``--no-plot``.
Pictures need matplotlib (``pip install 'slayerc[plot]'``); without it the examples still run
and say which pictures they skipped.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np
import torch


def parse(description: str, name: str) -> argparse.Namespace:
    """The flags every example shares; also seeds torch and numpy and makes ``--out``."""
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--quick", action="store_true", help="tiny setting (CI): fewer samples, "
                   "epochs and steps")
    p.add_argument("--out", default=f"out/{name}", type=Path,
                   help=f"folder for the checkpoint, netlist and pictures (default out/{name})")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-plot", action="store_true", help="skip the pictures")
    args = p.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(args.seed)
    np.random.seed(args.seed)
    if "OMP_NUM_THREADS" not in os.environ:  # a caller's setting wins (the CI runs 4 at once)
        torch.set_num_threads(min(2, os.cpu_count() or 1))
    args.started = time.perf_counter()
    return args


def picture(args: argparse.Namespace, draw, *what) -> None:
    """Call ``slayerc.plot.draw(*what)`` unless ``--no-plot``; print the file it wrote, or why
    it wrote none (matplotlib missing)."""
    if args.no_plot:
        return
    from slayerc.errors import SlayerError

    try:
        draw(*what)
    except SlayerError as e:
        print(f"skipped picture {what[-1]}: {e}")
        return
    print(f"picture: {what[-1]}")


def done(args: argparse.Namespace) -> None:
    """The closing line: wall time."""
    print(f"done in {time.perf_counter() - args.started:.1f} s")
