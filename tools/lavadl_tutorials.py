#!/usr/bin/env python
"""Run lava-dl's slayer tutorial notebooks against ``slayerc.slayer`` on synthetic data.

lava-dl's tutorials are lava-dl's code, so they are not part of this repository: this tool reads
them from a lava-dl checkout (a working tree, or a bare git directory read at ``HEAD``),
extracts each notebook's code cells, swaps the import line(s) ``lava.lib.dl.slayer`` →
``slayerc.slayer`` (in the notebook and in the tutorial's helper modules), writes small
synthetic data in exactly the file layout the tutorial reads (so nothing is downloaded), and
runs the cells in order, in one namespace, as a notebook kernel would, on the CPU:

    python tools/lavadl_tutorials.py PATH/TO/lava-dl [--work /tmp/tutorials] [--only oxford]

Besides the import swap, the only edits are the constants listed in ``TUTORIALS`` (the device
``cuda`` → ``cpu``, the epoch counts and one CPU fix, each found verbatim or the run fails),
and, where the package is not installed, minimal stand-ins for ``torchvision.transforms``
(Compose, Resize, ToTensor, Normalize: the four the PilotNet tutorial uses) and
``IPython.display``.  ``--reference PYTHON`` runs the same scripts with lava-dl's own imports
in a Python where lava-dl is installed, for comparison.  The table at the end gives each
tutorial's result and, for Oxford (a single sample learned by ``SpikeTime``), the training
loss of the first and last epoch as the tutorial's own ``LearningStats.save`` writes it.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import textwrap
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
TUTORIAL_DIR = "tutorials/lava/lib/dl/slayer"
IMPORT_SWAP = (r"\blava\.lib\.dl\.slayer\b", "slayerc.slayer")


@dataclass(frozen=True)
class Tutorial:
    """One tutorial: its notebook, helper modules, constant edits and data writer."""

    name: str
    notebook: str
    helpers: tuple[str, ...] = ()
    #: (exact text, replacement, why): applied to the notebook's code; each must occur.
    constants: tuple[tuple[str, str, str], ...] = ()
    data: str = ""
    dirs: tuple[str, ...] = field(default=())


TUTORIALS = (
    Tutorial("xor_regression", "xor_regression/xor_regression.ipynb"),
    Tutorial(
        "oxford", "oxford/train.ipynb",
        constants=(("device = torch.device('cuda')", "device = torch.device('cpu')", "CPU run"),
                   ("epochs = 5000", "epochs = 20", "5000 epochs take too long for CI")),
        data="oxford"),
    Tutorial(
        "nmnist", "nmnist/train.ipynb", helpers=("nmnist/nmnist.py",),
        constants=(("device = torch.device('cuda')", "device = torch.device('cpu')", "CPU run"),
                   ("epochs = 100", "epochs = 2", "2 epochs on 20 synthetic samples")),
        data="nmnist", dirs=("gifs",)),
    Tutorial(
        "pilotnet", "pilotnet/train.ipynb",
        helpers=("pilotnet/pilotnet_dataset.py", "pilotnet/utils.py"),
        constants=(("device = torch.device('cuda')", "device = torch.device('cpu')", "CPU run"),
                   ("epochs = 200", "epochs = 2", "2 epochs on 96 synthetic frames"),
                   ("torch.abs((x[..., 1:]) > 0)", "((x[..., 1:]) > 0)",
                    "torch has no CPU abs of a bool tensor; lava-dl fails here on CPU too")),
        data="pilotnet"),
)


# ---------------------------------------------------------------- reading the lava-dl checkout
def _reader(checkout: Path):
    """A function reading a file of the checkout (working tree or bare git dir at HEAD)."""
    if (checkout / TUTORIAL_DIR).is_dir():
        return lambda rel: (checkout / TUTORIAL_DIR / rel).read_text()

    def from_git(rel: str) -> str:
        cmd = ["git", "-C", str(checkout), "show", f"HEAD:{TUTORIAL_DIR}/{rel}"]
        return subprocess.run(cmd, check=True, capture_output=True, text=True).stdout

    return from_git


def code_cells(notebook_text: str) -> list[str]:
    """The code cells of a notebook (JSON), each as one source string."""
    cells = json.loads(notebook_text)["cells"]
    return ["".join(c["source"]) for c in cells if c["cell_type"] == "code"]


def swap_imports(source: str) -> tuple[str, int]:
    """Point the lava-dl slayer imports at slayerc; return the text and the lines changed."""
    out, n = [], 0
    for line in source.splitlines(keepends=True):
        if re.match(r"\s*(import|from)\s+lava\.lib\.dl\.slayer\b", line):
            line, k = re.subn(*IMPORT_SWAP, line)
            n += k
        out.append(line)
    return "".join(out), n


def apply_constants(cells: list[str], constants) -> list[str]:
    """Apply the listed constant edits; each one must be found exactly once."""
    joined = "\n\0\n".join(cells)
    for old, new, why in constants:
        if joined.count(old) != 1:
            raise SystemExit(f"constant edit {old!r} ({why}) does not occur exactly once")
        joined = joined.replace(old, new)
    return joined.split("\n\0\n")


# ---------------------------------------------------------------- synthetic data
def _oxford(work: Path, rng: np.random.Generator) -> None:
    """input.bs1 / output.bs1: 200 input neurons firing at random, a sparse target pattern.

    The events span 480 ms of the tutorial's 2000-step tensors (its animations draw one frame
    per 1000/24 ms of events, at 300 dpi)."""
    import slayerc.slayer as slayer

    n_in = 2000
    x = rng.integers(0, 200, n_in)
    t = rng.uniform(0, 480, n_in)
    slayer.io.encode_1d_spikes(work / "input.bs1", slayer.io.Event(x, None, 0 * x, t))
    # a target in the tutorial's spirit: each of the 200 outputs fires at a few fixed times
    xs, ts = [], []
    for n in range(200):
        times = np.sort(rng.choice(np.arange(40, 480, 10), size=3, replace=False))
        xs += [n] * len(times)
        ts += list(times)
    xs, ts = np.array(xs), np.array(ts, dtype=float)
    slayer.io.encode_1d_spikes(work / "output.bs1", slayer.io.Event(xs, None, 0 * xs, ts))


def _nmnist(work: Path, rng: np.random.Generator) -> None:
    """data/{Train,Test}/<digit>/*.bin in the NMNIST binary format: a blob of events per digit,
    in the first 100 ms of the tutorial's 300-step samples."""
    import slayerc.slayer as slayer

    for split, per_class in (("Train", 2), ("Test", 1)):
        for digit in range(10):
            folder = work / "data" / split / str(digit)
            folder.mkdir(parents=True, exist_ok=True)
            for k in range(per_class):
                n = 1500
                cx, cy = 6 + 2 * digit, 10 + digit
                x = np.clip(np.round(rng.normal(cx, 3, n)), 0, 33)
                y = np.clip(np.round(rng.normal(cy, 3, n)), 0, 33)
                c = rng.integers(0, 2, n)
                t = np.sort(rng.uniform(0, 100, n))  # fewer animation frames (1 per 1000/240 ms)
                ev = slayer.io.Event(x, y, c, t)
                slayer.io.encode_2d_spikes(folder / f"{k:05d}.bin", ev)


def _pilotnet(work: Path, rng: np.random.Generator) -> None:
    """data/driving_dataset/data.txt + JPEG frames: a road edge whose slope is the angle."""
    from PIL import Image

    folder = work / "data" / "driving_dataset"
    folder.mkdir(parents=True, exist_ok=True)
    lines = []
    for i in range(96):
        angle = 20 * np.sin(i / 7)
        img = np.full((66, 200, 3), 90, dtype=np.uint8)
        for r in range(66):
            col = int(100 + (r - 33) * np.tan(np.radians(angle)))
            img[r, max(col - 4, 0):col + 4] = 230
        img = np.clip(img + rng.integers(0, 12, img.shape), 0, 255).astype(np.uint8)
        Image.fromarray(img).save(folder / f"{i}.jpg")
        lines.append(f"{i}.jpg {angle:.4f}\n")
    (folder / "data.txt").write_text("".join(lines))


DATA = {"oxford": _oxford, "nmnist": _nmnist, "pilotnet": _pilotnet}

#: Used only where torchvision is not installed (it does not load beside the CPU torch wheel).
TRANSFORMS_STANDIN = '''\
"""Stand-ins for the four torchvision.transforms the PilotNet tutorial uses."""
import numpy as np
import torch


class Compose:
    def __init__(self, transforms):
        self.transforms = transforms

    def __call__(self, x):
        for t in self.transforms:
            x = t(x)
        return x


class Resize:
    def __init__(self, size):
        self.size = size

    def __call__(self, img):
        h, w = self.size
        return img.resize((w, h), 2)  # PIL bilinear


class ToTensor:
    def __call__(self, img):
        a = np.asarray(img, dtype=np.float32) / 255.0
        return torch.from_numpy(a).permute(2, 0, 1).contiguous()


class Normalize:
    def __init__(self, mean, std):
        self.mean = torch.tensor(mean).view(-1, 1, 1)
        self.std = torch.tensor(std).view(-1, 1, 1)

    def __call__(self, x):
        return (x - self.mean) / self.std
'''

RUNNER = '''\
"""Run the extracted cells in one namespace, as a notebook kernel would."""
import json, sys, time, traceback, types
try:
    import IPython.display
except ImportError:  # a stand-in: the notebooks only build display.HTML values to show
    _ipy, _disp = types.ModuleType("IPython"), types.ModuleType("IPython.display")
    _disp.HTML = _disp.display = lambda *a, **k: None
    # matplotlib looks at a loaded IPython: no shell, a version that needs no backend fix
    _ipy.display, _ipy.get_ipython, _ipy.version_info = _disp, lambda: None, (8, 24, 0)
    sys.modules.update({"IPython": _ipy, "IPython.display": _disp})
cells = json.load(open("cells.json"))
ns = {"__name__": "__main__"}
for i, src in enumerate(cells):
    t0 = time.time()
    try:
        exec(compile(src, f"<cell {i}>", "exec"), ns)
    except BaseException:
        traceback.print_exc()
        print(json.dumps({"cell": i, "ok": False}), flush=True)
        sys.exit(1)
    print("\\n" + json.dumps({"cell": i, "ok": True, "s": round(time.time() - t0, 2)}), flush=True)
'''


# ---------------------------------------------------------------- running
def prepare(tut: Tutorial, read, work: Path, swap: bool = True) -> dict:
    """Write the tutorial's script, helpers and data into ``work``; return what was changed.
    ``swap=False`` keeps lava-dl's imports (a reference run with lava-dl itself)."""
    work.mkdir(parents=True, exist_ok=True)
    swaps = 0
    cells = []
    for src in code_cells(read(tut.notebook)):
        src, n = swap_imports(src) if swap else (src, 0)
        swaps += n
        cells.append(src)
    cells = apply_constants(cells, tut.constants)
    for helper in tut.helpers:
        text, n = swap_imports(read(helper)) if swap else (read(helper), 0)
        swaps += n
        (work / Path(helper).name).write_text(text)
    (work / "cells.json").write_text(json.dumps(cells))
    (work / "run_cells.py").write_text(RUNNER)
    for d in tut.dirs:
        (work / d).mkdir(exist_ok=True)
    if tut.data:
        DATA[tut.data](work, np.random.default_rng(0))
    try:
        import torchvision  # noqa: F401
    except ImportError:
        (work / "torchvision").mkdir(exist_ok=True)
        (work / "torchvision" / "__init__.py").write_text("")
        (work / "torchvision" / "transforms.py").write_text(TRANSFORMS_STANDIN)
    return {"cells": len(cells), "import_swaps": swaps,
            "constants": [f"{o} -> {n} ({w})" for o, n, w in tut.constants]}


def _oxford_loss(work: Path) -> tuple[float, float] | None:
    f = work / "Trained" / "loss.txt"
    if not f.exists():
        return None
    rows = np.loadtxt(f, ndmin=2)  # one row per epoch: training (and testing) loss
    return float(rows[0, 0]), float(rows[-1, 0])


def run(tut: Tutorial, work: Path, timeout: float, python: str = sys.executable) -> dict:
    """Run one prepared tutorial; return its status, time and the cell that failed."""
    env = {**os.environ, "MPLBACKEND": "Agg", "PYTHONPATH": os.pathsep.join(
        [str(work), str(ROOT), os.environ.get("PYTHONPATH", "")]), "CUDA_VISIBLE_DEVICES": ""}
    t0 = time.time()
    try:
        p = subprocess.run([python, "run_cells.py"], cwd=work, env=env, text=True,
                           capture_output=True, timeout=timeout)
        out, rc = p.stdout + p.stderr, p.returncode
    except subprocess.TimeoutExpired as e:
        out, rc = f"{e.stdout or ''}{e.stderr or ''}\ntimed out after {timeout} s", -1
    (work / "run.log").write_text(out)
    done = [json.loads(s) for s in out.splitlines() if s.startswith('{"cell"')]
    result = {"ok": rc == 0, "s": round(time.time() - t0, 1),
              "cells_run": sum(d["ok"] for d in done), "log": str(work / "run.log")}
    if rc != 0:
        result["error"] = out.strip().splitlines()[-2 if done else -1][-300:] if out.strip() \
            else "no output"
    if tut.name == "oxford":
        result["loss"] = _oxford_loss(work)
        result["ok"] = result["ok"] and bool(result["loss"]) and \
            result["loss"][1] < result["loss"][0]
    return result


def _table(rows) -> str:
    lines = ["| tutorial | result | cells run | time (s) | edits besides the import | note |",
             "|---|---|---|---|---|---|"]
    for name, prep, res in rows:
        note = res.get("error", "")
        if res.get("loss"):
            note = f"training loss {res['loss'][0]:.4g} -> {res['loss'][1]:.4g}"
        edits = "; ".join(prep["constants"]) or "none"
        lines.append(f"| {name} | {'pass' if res['ok'] else 'FAIL'} | "
                     f"{res['cells_run']}/{prep['cells']} | {res['s']} | {edits} | {note} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    """Prepare and run the tutorials; print the table; exit 1 if any failed."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("lavadl", type=Path, help="lava-dl checkout (working tree or bare git dir)")
    ap.add_argument("--work", type=Path, default=Path("/tmp/lavadl_tutorials"))
    ap.add_argument("--only", action="append", help="run only these tutorials (repeatable)")
    ap.add_argument("--timeout", type=float, default=900)
    ap.add_argument("--reference", metavar="PYTHON", help="instead, run the tutorials unchanged "
                    "(lava-dl's imports) with this Python, where lava-dl is installed")
    args = ap.parse_args(argv)
    read = _reader(args.lavadl)
    rows = []
    for tut in TUTORIALS:
        if args.only and tut.name not in args.only:
            continue
        work = args.work / tut.name
        prep = prepare(tut, read, work, swap=args.reference is None)
        res = run(tut, work, args.timeout, args.reference or sys.executable)
        rows.append((tut.name, prep, res))
        print(f"{tut.name}: {'pass' if res['ok'] else 'FAIL'} ({res['s']} s, log {res['log']})",
              flush=True)
    print(textwrap.dedent(_table(rows)))
    return 0 if all(r["ok"] for _, _, r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
