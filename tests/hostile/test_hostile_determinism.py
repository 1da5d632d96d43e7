"""Equal inputs give equal bytes: ``.sir``, its ``.npz`` and ``.net`` do not depend on
``PYTHONHASHSEED``, the clock or the run."""

from __future__ import annotations

import zipfile
from pathlib import Path

from hostile_limits import ROOT, run_child

CHILD = """
import hashlib, json, sys
from pathlib import Path
from slayerc.backends.files import load, save
from slayerc.passes import PassManager
from slayerc.passes.pipelines import default_pipeline
out = Path(sys.argv[1]) if len(sys.argv) > 1 else Path({out!r})
g = load({src!r})
g = PassManager.from_string(default_pipeline("loihi2", netlist=True)).run(g)
save(g, out / "g.sir")
save(g, out / "g.net")
print(json.dumps({{p.name: hashlib.sha256(p.read_bytes()).hexdigest()
                  for p in sorted(out.iterdir())}}))
"""


def test_outputs_are_byte_identical_across_hash_seeds(tmp_path: Path) -> None:
    src = ROOT / "tests" / "data" / "lava-dl" / "cuba_rec.net"
    runs = []
    for seed in ("0", "4242"):
        out = tmp_path / seed
        out.mkdir()
        runs.append(run_child(CHILD.format(out=str(out), src=str(src)), timeout=120,
                              env={"PYTHONHASHSEED": seed}))
    assert sorted(runs[0]) == ["g.net", "g.npz", "g.sir"]
    assert runs[0] == runs[1]


def test_side_file_members_carry_no_clock(tmp_path: Path) -> None:
    from test_hostile_writes import _graph

    from slayerc.ir.serialize import save
    save(_graph(), tmp_path / "g.sir")
    with zipfile.ZipFile(tmp_path / "g.npz") as zf:
        assert [(i.filename, i.date_time) for i in zf.infolist()] == \
            [("layer1.weight.npy", (1980, 1, 1, 0, 0, 0))]
