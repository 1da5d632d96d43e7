"""Files written by Norse 1.1's own exporter (``norse.torch.to_nir``): convention norse-export.

Norse writes ``tau = dt/tau_inv`` (``dt·τ``), an ``IF`` that adds its input undecayed and the
sample's batch axis in the Input type.  The shipped files (``tests/data/nir/norse_export_*``,
made by ``make_peer_files.py`` with Norse's exporter) cover this without Norse; the live tests
run Norse's exporter and simulation when Norse is installed.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

nir = pytest.importorskip("nir")

import slayerc  # noqa: E402
from slayerc.errors import FrontendError  # noqa: E402
from slayerc.frontend.nir_import import from_nir  # noqa: E402

DATA = Path(__file__).resolve().parents[1] / "data" / "nir"
DT = 1e-3


def _load(name: str, **kw):
    d = np.load(DATA / f"{name}.npz")
    assert str(d["convention"]) == "norse-export" and float(d["dt"]) == DT
    g = slayerc.load(DATA / f"{name}.nir", **kw)  # dt: the convention's default, Norse's 1e-3
    return g, torch.tensor(d["x"], dtype=torch.float32), d["y"]


def test_norse_export_file_reads_tau_as_written_by_norse():
    g, x, ref = _load("norse_export_lif_cuba", convention="norse-export")
    raw = nir.read(DATA / "norse_export_lif_cuba.nir", type_check=False)
    assert float(raw.nodes["1"].tau[0]) == pytest.approx(DT / 200)  # dt/tau_mem_inv
    lif, cuba = (n for n in g if n.OP == "neuron.cuba")
    assert lif.voltage_decay == pytest.approx(0.2) and lif.current_decay == 1.0
    assert (cuba.current_decay, cuba.voltage_decay) == pytest.approx((0.25, 0.1))
    assert g["input"].shape == (32,)  # Norse's batch axis dropped
    np.testing.assert_array_equal(slayerc.interpret(g, x).numpy(), ref)
    assert ref.sum() > 500


def test_norse_export_if_and_li_read_out():
    """IAFCell (``v += x``) and LIBoxCell: the IF layer exact (dyadic weights), the voltage of
    the read-out within the IR's 1/4096 state grid."""
    g, x, ref = _load("norse_export_if_li", convention="norse-export")
    assert [n.OP for n in g if n.OP.startswith("neuron")] == ["neuron.cuba", "neuron.li"]
    if_node = next(n for n in g if n.OP == "neuron.cuba")
    assert (if_node.current_decay, if_node.voltage_decay, if_node.threshold) == (1.0, 0.0, 1.0)
    y = slayerc.interpret(g, x).numpy()
    err = np.abs(y - ref).max() / np.abs(ref).max()
    print(f"norse_export_if_li: largest voltage error {err:.2e} of the range")
    assert np.abs(ref).max() > 0.5
    assert err <= 1e-3, err


def test_norse_export_needs_its_convention():
    with pytest.raises(FrontendError, match="convention='norse-export'"):
        slayerc.load(DATA / "norse_export_lif_cuba.nir", dt=DT, convention="norse")
    raw = nir.read(DATA / "norse_export_lif_cuba.nir", type_check=False)
    with pytest.raises(FrontendError, match=r"batch axis.*convention='norse-export'"):
        from_nir(raw, dt=DT, convention="norse")
    raw.nodes["input"] = nir.Input(input_type={"input": np.array([32])})  # without the batch
    with pytest.raises(FrontendError, match=r"tau = 5e-06 s is shorter than dt.*norse-export"):
        from_nir(raw, dt=DT, convention="norse")


def test_norse_export_cli(tmp_path):
    from slayerc import cli

    out = tmp_path / "n.sir"
    assert cli.main(["compile", str(DATA / "norse_export_lif_cuba.nir"), "-o", str(out),
                     "--convention", "norse-export", "--target", "slayerc"]) == 0
    assert sum(n.OP == "neuron.cuba" for n in slayerc.load(out)) == 2


# ------------------------------------------------------------------------- Norse itself


def _run(model, x):
    out, state = [], None
    with torch.no_grad():
        for t in range(x.shape[-1]):
            y, state = model(x[..., t], state)
            out.append(y)
    return torch.stack(out, -1).numpy()


def _full(v, *n):
    return torch.full(n, float(v))


def test_norse_live_dense_if_li_and_conv():
    norse = pytest.importorskip("norse.torch")
    torch.manual_seed(4)
    fc1, fc2 = torch.nn.Linear(16, 20), torch.nn.Linear(20, 6)
    with torch.no_grad():
        fc1.weight.mul_(4.0)
    lif = norse.LIFParameters(tau_syn_inv=_full(200, 20), tau_mem_inv=_full(100, 20),
                              v_th=_full(0.2, 20), v_leak=_full(0, 20))
    li = norse.LIBoxParameters(tau_mem_inv=_full(125, 6), v_leak=_full(0, 6))
    model = norse.SequentialState(fc1, norse.LIFCell(lif, dt=DT), fc2,
                                  norse.LIBoxCell(li, dt=DT))
    x = (torch.rand(4, 16, 50, generator=torch.Generator().manual_seed(5)) < 0.3).float()
    g = from_nir(norse.to_nir(model, torch.zeros(1, 16), dt=DT), convention="norse-export")
    ref, y = _run(model, x), slayerc.interpret(g, x).numpy()
    err = np.abs(y - ref).max() / np.abs(ref).max()
    print(f"Norse LIFCell -> LIBoxCell export: largest voltage error {err:.2e} of the range")
    assert np.abs(ref).max() > 0.1
    assert err <= 1e-3

    conv = torch.nn.Conv2d(2, 4, 3, padding=1)
    with torch.no_grad():
        conv.weight.mul_(4.0)
    p = norse.LIFBoxParameters(tau_mem_inv=_full(200, 4, 8, 8), v_th=_full(0.5, 4, 8, 8),
                               v_leak=_full(0, 4, 8, 8))
    model = norse.SequentialState(conv, norse.LIFBoxCell(p, dt=DT))
    x = (torch.rand(4, 2, 8, 8, 40, generator=torch.Generator().manual_seed(6)) < 0.3).float()
    g = from_nir(norse.to_nir(model, torch.zeros(1, 2, 8, 8), dt=DT), convention="norse-export")
    ref, y = _run(model, x), slayerc.interpret(g, x).numpy()
    agree = 1 - np.abs(y - ref).sum() / ref.sum()  # float weights: the 1/4096 state grid
    print(f"Norse conv export: {int(ref.sum())} spikes, {agree:.4f} agree")
    assert ref.sum() > 500
    assert agree >= 0.99
