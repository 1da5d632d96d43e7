"""tools/lavadl_tutorials.py: cell extraction, the import swap, the listed constant edits and the
synthetic data (in the layout each tutorial reads); with a lava-dl checkout named by
``LAVA_DL`` the XOR tutorial runs end to end (slow)."""

from __future__ import annotations

import importlib.util
import json
import os
import sys
from pathlib import Path

import numpy as np
import pytest

import slayerc.slayer as slayer

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def tool():
    spec = importlib.util.spec_from_file_location("lavadl_tutorials",
                                                  ROOT / "tools" / "lavadl_tutorials.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # its dataclasses look their module up
    spec.loader.exec_module(mod)
    yield mod
    del sys.modules[spec.name]


def test_code_cells_and_import_swap(tool):
    nb = {"cells": [{"cell_type": "markdown", "source": ["# Title"]},
                    {"cell_type": "code", "source": ["# import slayer from lava-dl\n",
                                                     "import lava.lib.dl.slayer as slayer\n",
                                                     "x = 'lava.lib.dl.slayer'"]},
                    {"cell_type": "code", "source": "from lava.lib.dl.slayer.io import Event\n"
                                                    "from lava.lib.dl import netx\n"}]}
    cells = tool.code_cells(json.dumps(nb))
    assert len(cells) == 2
    first, n1 = tool.swap_imports(cells[0])
    second, n2 = tool.swap_imports(cells[1])
    assert (n1, n2) == (1, 1)
    assert first.splitlines() == ["# import slayer from lava-dl", "import slayerc.slayer as slayer",
                                  "x = 'lava.lib.dl.slayer'"]  # only import lines change
    assert second.splitlines() == ["from slayerc.slayer.io import Event",
                                   "from lava.lib.dl import netx"]  # netx is not slayerc's


def test_constant_edits_must_occur_exactly_once(tool):
    cells = ["epochs = 100\n", "device = 'cuda'\n"]
    assert tool.apply_constants(cells, [("epochs = 100", "epochs = 2", "short")]) == \
        ["epochs = 2\n", "device = 'cuda'\n"]
    with pytest.raises(SystemExit, match="epochs = 5000"):
        tool.apply_constants(cells, [("epochs = 5000", "epochs = 2", "short")])
    with pytest.raises(SystemExit):
        tool.apply_constants(cells * 2, [("epochs = 100", "epochs = 2", "short")])


def test_synthetic_data_has_each_tutorials_layout(tool, tmp_path):
    rng = np.random.default_rng(0)
    tool.DATA["oxford"](tmp_path, rng)
    inp = slayer.io.read_1d_spikes(str(tmp_path / "input.bs1"))
    target = slayer.io.read_1d_spikes(str(tmp_path / "output.bs1"))
    assert inp.x.max() == 199 and target.x.max() == 199 and inp.t.max() < 2000
    tool.DATA["nmnist"](tmp_path, rng)
    train = sorted((tmp_path / "data" / "Train").glob("*/*.bin"))
    assert len(train) == 20 and len(list((tmp_path / "data" / "Test").glob("*/*.bin"))) == 10
    ev = slayer.io.read_2d_spikes(str(train[0]))
    assert ev.x.max() <= 33 and ev.y.max() <= 33 and set(np.unique(ev.c)) <= {0, 1}
    tool.DATA["pilotnet"](tmp_path, rng)
    folder = tmp_path / "data" / "driving_dataset"
    rows = [line.split() for line in (folder / "data.txt").read_text().splitlines()]
    assert len(rows) == 96 and all((folder / name).exists() for name, _ in rows)


@pytest.mark.slow
def test_xor_tutorial_runs_unchanged_but_the_import(tool, tmp_path):
    checkout = os.environ.get("LAVA_DL")
    if not checkout:
        pytest.skip("set LAVA_DL to a lava-dl checkout (working tree or bare git dir)")
    assert tool.main([checkout, "--work", str(tmp_path), "--only", "xor_regression"]) == 0
