"""The lava-dl reference cases in ``tests/data/lava-dl``: loading and rebuilding them."""

from __future__ import annotations

import importlib
import json
import os
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import torch

REF_DIR = Path(__file__).resolve().parent / "data" / "lava-dl"
CASES = sorted(p.name[: -len(".arch.json")] for p in REF_DIR.glob("*.arch.json"))


def arch_build() -> ModuleType:
    """The reference reader ``arch_build.py`` shipped with the cases."""
    if str(REF_DIR) not in sys.path:
        sys.path.insert(0, str(REF_DIR))
    return importlib.import_module("arch_build")


def load_arch(name: str) -> dict:
    """The parsed ``NAME.arch.json``."""
    return json.loads((REF_DIR / f"{name}.arch.json").read_text())


def load_input(arch: dict, i: int = 0) -> torch.Tensor:
    """Forward ``i``'s stored input with the batch dimension."""
    return torch.tensor(np.load(REF_DIR / arch["forwards"][i]["input"]))[None]


def build(case: str, slayer: ModuleType | None = None) -> tuple[torch.nn.Module, torch.Tensor]:
    """Rebuild a case with ``slayer`` (default slayerc.slayer), load its weights, set its mode.

    Returns the module and the first stored input.
    """
    if slayer is None:
        import slayerc.slayer as slayer
    arch = load_arch(case)
    cwd = os.getcwd()
    os.chdir(REF_DIR)  # arch_build resolves the state dict's file name relative to the cwd
    try:
        net = arch_build().build(arch, slayer)
        net.load_state_dict(torch.load(arch["state_dict"], weights_only=True), strict=True)
    finally:
        os.chdir(cwd)
    if arch["eval"]:
        net.eval()
    return net, load_input(arch)
