"""Large CPU buffers: freed memory kept for reuse (no page faults on the next step), opt-out."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from slayerc.runtime import buffers

pytestmark = pytest.mark.skipif(buffers._libc() is None, reason="glibc only")

_PROBE = r"""
import json, resource, sys
import torch
import slayerc.slayer as slayer
from slayerc.runtime import buffers

def faults_per_step(steps=4):
    torch.manual_seed(0)
    p = {"threshold": 0.5, "current_decay": 0.25, "voltage_decay": 0.03}
    net = torch.nn.Sequential(slayer.block.cuba.Conv(p, 2, 16, 5, stride=2, padding=2),
                              slayer.block.cuba.Conv(p, 16, 16, 3, padding=1))
    x = (torch.rand(24, 2, 34, 34, 100) < 0.2).float()  # traces of 44 MiB: above 32 MiB
    out = []
    for _ in range(steps):
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        net.zero_grad(set_to_none=True)
        net(x).sum().backward()
        out.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
    return out

out = {"before": buffers.keeping_freed_memory()}
if sys.argv[1] == "block":
    p = {"threshold": 1.0, "current_decay": 0.25, "voltage_decay": 0.03}
    block = slayer.block.cuba.Dense(p, 4, 3)
    block(torch.rand(2, 4, 5))
    out["after"] = buffers.keeping_freed_memory()
elif sys.argv[1] == "steps":
    out["faults"] = faults_per_step()
    out["after"] = buffers.keeping_freed_memory()
    out["off"] = buffers.reuse_freed_memory(False)
    out["now"] = buffers.keeping_freed_memory()
print(json.dumps(out))
"""


def _probe(mode: str, **env: str) -> dict:
    got = subprocess.run([sys.executable, "-c", _PROBE, mode], capture_output=True, text=True,
                         env={**os.environ, **env}, timeout=300, check=True)
    return json.loads(got.stdout.strip().splitlines()[-1])


def test_freed_memory_is_reused_without_page_faults() -> None:
    """Training steps of a conv net: from the second step on, the step's buffers come from
    memory freed by the step before (next to no page faults); with the opt-out every step
    faults its buffers in afresh."""
    on = _probe("steps", SLAYERC_KEEP_FREED_MEMORY="1")
    off = _probe("steps", SLAYERC_KEEP_FREED_MEMORY="0")
    assert on["after"] is True and off["after"] is False
    first, *later = on["faults"]
    assert first > 5000, on  # the buffers are tens of MiB
    assert min(later[1:]) < first // 20, on  # steps 3 and 4: settled
    assert min(off["faults"][1:]) > first // 4, off
    assert on["off"] is False and on["now"] is False


def test_a_block_forward_turns_reuse_on_by_default() -> None:
    got = _probe("block", SLAYERC_KEEP_FREED_MEMORY="1")
    assert got == {"before": False, "after": True}


def test_the_environment_variable_opts_out() -> None:
    got = _probe("block", SLAYERC_KEEP_FREED_MEMORY="0")
    assert got == {"before": False, "after": False}
