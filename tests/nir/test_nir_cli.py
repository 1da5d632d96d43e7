"""``slayerc compile``/``opt`` of .nir files with ``--dt`` and ``--convention``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("nir")

from slayerc import driver  # noqa: E402
from slayerc.backends.hdf5.h5io import load_tree  # noqa: E402
from slayerc.cli import main  # noqa: E402

NORSE = Path(__file__).resolve().parents[1] / "data" / "nir" / "norse_lif_cuba.nir"


def _neurons(path):
    layers = load_tree(path)["layer"]
    return [{k: np.asarray(v).tolist() for k, v in layers[i]["neuron"].items()}
            for i in sorted(layers, key=int) if "neuron" in layers[i]]


def test_compile_passes_dt_and_convention_to_the_importer(tmp_path, capsys):
    flagged, plain = tmp_path / "flagged.net", tmp_path / "plain.net"
    argv = ["compile", str(NORSE), "-q", "-o"]
    assert main([*argv, str(flagged), "--dt", "1e-3", "--convention", "norse"]) == 0
    assert main([*argv, str(plain)]) == 0
    driver.compile_file(NORSE, output=tmp_path / "api.net", dt=1e-3, convention="norse")
    assert _neurons(flagged) == _neurons(tmp_path / "api.net")
    assert _neurons(flagged) != _neurons(plain)  # the file's own dt (1e-4) decays otherwise


def test_opt_passes_dt_and_convention(capsys):
    assert main(["opt", str(NORSE), "-p", "shape-infer", "--dt", "1e-3",
                 "--convention", "norse"]) == 0
    flagged = capsys.readouterr().out
    assert main(["opt", str(NORSE), "-p", "shape-infer", "--dt", "1e-3"]) == 0
    euler = capsys.readouterr().out
    assert "voltage_decay = 0.2" in flagged  # dt/tau_mem = 1e-3/5e-3
    assert main(["opt", str(NORSE), "-p", "shape-infer", "--dt", "1e-3",
                 "--convention", "snntorch"]) == 0
    assert capsys.readouterr().out == euler != flagged  # snntorch is the Euler convention


def test_nir_flags_are_refused_elsewhere(tmp_path, capsys):
    sir = tmp_path / "g.sir"
    assert main(["opt", str(NORSE), "-p", "shape-infer", "-o", str(sir)]) == 0
    assert main(["opt", str(sir), "--dt", "1e-3"]) == 1
    assert "--dt applies only to .nir inputs" in capsys.readouterr().err
    for bad in ("0", "-1e-3", "nan", "abc"):
        with pytest.raises(SystemExit) as e:
            main(["compile", str(NORSE), "-o", str(tmp_path / "x.net"), "--dt", bad])
        assert e.value.code == 2
    with pytest.raises(SystemExit):
        main(["opt", str(NORSE), "--convention", "spikingjelly"])
