#!/usr/bin/env python
"""Check netlists written by slayerc end to end in the real netx loader + Lava simulator.

Needs the reference stack from ``../shared/tools/lavaref`` (``bash setup.sh`` builds it in
/opt/lavaref).  For every lava-dl reference case with a Lava output, and for the bundled
ConvSNN example, this writes a netlist with slayerc (for target loihi2), runs it in Lava
(netx_run.py) and in slayerc's fixed-point runtime, and compares output and every layer:

    python tools/lavaref_check.py [--lavaref /opt/lavaref] [--shared ../shared]

Cases: ``read`` = lava-dl's .net read into the IR and written again; ``trace`` = the lava-dl
model rebuilt with slayerc.slayer, traced and written; ``lower`` = a model with slayer Pool
blocks (netx has no ``pool`` layer), traced, run through ``lower-pool`` and written;
``compile`` = traced and run through the loihi2 default pipeline (``legalize-layers``: biases,
one step per synapse); ``nir`` = the NIR files of ``tests/data/nir`` (snnTorch dense, recurrent,
conv with a neuron-less average pool, CubaLIF, Norse) and a NIR AvgPool2d → LIF graph, compiled
for loihi2 as ``slayerc compile x.nir -o x.net`` does (``--only nir``).  This is a development
check, not a test.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
LAVA_CASES = ["cuba_dense", "cuba_input", "cuba_conv", "cuba_delay", "cuba_rec", "rf", "rf_iz",
              "sdnn_dense", "sdnn_conv"]
#: Cases with pool blocks: no Lava output stored (lava-dl's own netlist has a ``pool`` layer).
POOL_CASES = ["cuba_conv_pool", "sdnn_pool"]
LOWER = "shape-infer,lower-pool{target=loihi2}"
#: NIR files (tests/data/nir) compiled for loihi2: dense, recurrent (a dense_rec layer), conv
#: (Conv2d → LIF → AvgPool2d → Flatten → Linear → LIF: the pool has no neuron of its own).
NIR_CASES = ["snntorch_dense", "snntorch_dense_exact", "snntorch_recurrent", "snntorch_conv",
             "snntorch_cuba", "norse_lif_cuba", "norse_export_lif_cuba"]
NIR_DATA = ROOT / "tests" / "data" / "nir"
#: ONNX test models (tests/onnx/onnx_models.py) and their input shapes: dense, and conv with
#: per-channel biases (PilotNet-style); the CNN adds batch norm and a lowered average pool.
#: "shifted_pad": a constant shift before a padded conv gives per-neuron conv biases.
ONNX_CASES = {"mlp": (16,), "cnn": (1, 8, 8), "pilotnet": (3, 16, 32), "shifted_pad": (2, 7, 10)}


def _traced(ref: Path, case: str):
    import slayerc.slayer as slayer
    from slayerc.frontend.trace import trace

    sys.path.insert(0, str(ref))
    import arch_build

    arch = json.loads((ref / f"{case}.arch.json").read_text())
    cwd = os.getcwd()
    os.chdir(ref)
    try:
        net = arch_build.build(arch, slayer)
        net.load_state_dict(torch.load(arch["state_dict"], weights_only=True), strict=True)
    finally:
        os.chdir(cwd)
    x = torch.tensor(np.load(ref / f"{case}.input.npy"))[None]
    return trace(net, x)


def _lava(py: Path, netx_run: Path, net: Path, inp: Path, out: Path, layers: Path, steps: int):
    cmd = [str(py), str(netx_run), str(net), str(inp), str(out), "--steps", str(steps),
           "--layout", "chw", "--all-layers", str(layers), "-q"]
    subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=600)


def _compare(net: Path, inp: Path, lava_out: Path, lava_layers: Path) -> str:
    from slayerc.driver import run_netlist

    x = np.load(inp)
    shape = {"input_shape": tuple(x.shape[:-1])} if x.ndim == 4 else {}
    out, layers = run_netlist(net, x, all_layers=True, **shape)
    lava = np.load(lava_out)
    lava = lava.transpose(2, 1, 0, 3) if lava.ndim == 4 else lava  # netx: (W, H, C, T)
    la = np.load(lava_layers)
    same_layers = sorted(la.files) == sorted(layers) and all(
        np.array_equal(la[k].transpose(2, 1, 0, 3) if la[k].ndim == 4 else la[k], layers[k])
        for k in la.files)
    return (f"output {'==' if np.array_equal(out, lava) else '!='} Lava, layers "
            f"{'==' if same_layers else '!='} Lava, {int(np.count_nonzero(lava))} nonzero")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--lavaref", default="/opt/lavaref", type=Path)
    p.add_argument("--shared", default=ROOT.parent / "shared", type=Path)
    p.add_argument("--only", nargs="*", default=[], help="run only jobs whose name starts so")
    args = p.parse_args()
    from slayerc.backends.files import load, save

    py = args.lavaref / "bin" / "python"
    netx_run = args.shared / "tools" / "lavaref" / "netx_run.py"
    ref = args.shared / "reference" / "lava-dl"
    tmp = Path(tempfile.mkdtemp(prefix="lavaref_check_"))
    jobs = []
    for case in LAVA_CASES:
        x = np.load(ref / f"{case}.input.npy")
        shape = {"input_shape": tuple(x.shape[:-1])} if x.ndim == 4 else {}
        jobs.append((f"read  {case}", lambda c=case, s=shape: load(ref / f"{c}.net", **s),
                     ref / f"{case}.input.npy", x.shape[-1]))
        jobs.append((f"trace {case}", lambda c=case: _traced(ref, c), ref / f"{case}.input.npy",
                     x.shape[-1]))
    for case in POOL_CASES:
        x = np.load(ref / f"{case}.input.npy")
        jobs.append((f"lower {case}", lambda c=case: _lowered(_traced(ref, c)),
                     ref / f"{case}.input.npy", x.shape[-1]))
    jobs.append(("trace examples/models.py:ConvSNN", _convsnn,
                 ROOT / "examples" / "spikes_2x16x16.npy", 40))
    nmnist_in = tmp / "nmnist_2x34x34.npy"  # pools with remainders (34 mod 4, 9 mod 2, 5 mod 2)
    np.save(nmnist_in, (np.random.default_rng(5).random((2, 34, 34, 25)) < 0.15).astype(
        np.float32))
    jobs.append(("lower examples/models.py:NMNISTNet", _nmnist, nmnist_in, 25))
    norm = ref / "cuba_norm.input.npy"  # mean-only norm biases: Lava's bias head-start
    jobs.append(("compile cuba_norm", lambda: _compiled(_traced(ref, "cuba_norm")), norm,
                 np.load(norm).shape[-1]))
    jobs.append(("compile examples/models.py:TorchCNN", _torch_cnn,
                 ROOT / "examples" / "spikes_2x16x16.npy", 40))
    long_in = tmp / "long_8.npy"  # a 150-step axonal delay split into relay layers
    np.save(long_in, (np.random.default_rng(1).random((8, 260)) < 0.3).astype(np.float32))
    jobs.append(("compile 150-step delay (legalize-delay)", _long_delay, long_in, 260))
    pool_in = tmp / "pool_delay_2x16x16.npy"  # per-channel conv delays moved through pools
    np.save(pool_in, (np.random.default_rng(2).random((2, 16, 16, 200)) < 0.3).astype(
        np.float32))
    jobs.append(("compile Pool-Conv(delays)-Pool-Dense(delays<=130)", _pool_delays, pool_in, 200))
    jobs.append(("compile Pool-Conv(per-channel delays)-Pool-Dense", _pool_channel_delays,
                 pool_in, 200))
    jobs.append(("compile Pool-Conv(per-channel delays)-Pool-Dense(own delays)",
                 _pool_channel_own_delays, pool_in, 200))
    kwta_in = tmp / "kwta_20.npy"  # Recurrent + KWTA (lower-kwta: a dense_rec layer)
    np.save(kwta_in, (np.random.default_rng(0).random((20, 30)) < 0.3).astype(np.float32))
    jobs.append(("compile examples/models.py:RecurrentKWTA", _recurrent_kwta, kwta_in, 30))
    kp_in = tmp / "yolo_kp_3x64x64.npy"  # a static frame: the sigma-delta YOLO-KP's chip part
    np.save(kp_in, np.random.default_rng(0).random((3, 64, 64, 1)).repeat(12, -1).astype(
        np.float32))
    jobs.append(("compile obd yolo_kp (trained norms: biases)", _yolo_kp, kp_in, 12))
    for case in LAVA_CASES:  # read, fine-tuned through to_module, legalized, written
        x = np.load(ref / f"{case}.input.npy")
        shape = {"input_shape": tuple(x.shape[:-1])} if x.ndim == 4 else {}
        jobs.append((f"tuned {case}", lambda c=case, s=shape: _tuned(load(ref / f"{c}.net", **s)),
                     ref / f"{case}.input.npy", x.shape[-1]))
    for case in NIR_CASES:  # NIR files of tests/data/nir, compiled as `slayerc compile x.nir`
        x = np.load(NIR_DATA / f"{case}.npz")["x"][0]  # the peers' seeded spikes, sample 0
        nir_in = tmp / f"nir_{case}.npy"
        np.save(nir_in, x.astype(np.float32))
        jobs.append((f"nir {case}", lambda c=case: _nir_compiled(c), nir_in, x.shape[-1]))
    pool_lif_in = tmp / "nir_pool_lif_2x8x8.npy"  # AvgPool2d → LIF: the pool's own conv layer
    np.save(pool_lif_in, (np.random.default_rng(3).random((2, 8, 8, 40)) < 0.3).astype(
        np.float32))
    jobs.append(("nir Conv-LIF-AvgPool-LIF-Flatten-Linear-LIF", _nir_pool_lif, pool_lif_in, 40))
    for kind, shape in ONNX_CASES.items():  # ANNs from torch.onnx.export, as sigma-delta nets
        onnx_in = tmp / f"onnx_{kind}.npy"  # a static input held for 16 steps
        x = np.random.default_rng(4).random(shape)[..., None].repeat(16, -1)
        np.save(onnx_in, x.astype(np.float32))
        jobs.append((f"onnx {kind}", lambda k=kind: _onnx_compiled(k, tmp), onnx_in, 16))
    jobs = [j for j in jobs if j[0].startswith(tuple(args.only))] if args.only else jobs
    failed = 0
    for name, make, inp, steps in jobs:
        net = tmp / (name.replace(" ", "_").replace("/", "_").replace(":", "_") + ".net")
        try:
            save(make(), net, target="loihi2")
            _lava(py, netx_run, net, inp, net.with_suffix(".lava.npy"),
                  net.with_suffix(".lava_layers.npz"), steps)
            line = _compare(net, inp, net.with_suffix(".lava.npy"),
                            net.with_suffix(".lava_layers.npz"))
        except Exception as e:  # report and go on with the other cases
            line = f"FAILED: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
        failed += "!=" in line or line.startswith("FAILED")
        print(f"{name:<36} {line}", flush=True)
    print(f"{len(jobs) - failed} of {len(jobs)} netlists run in Lava exactly as in slayerc")
    return 1 if failed else 0


def _tuned(g):
    """``g`` through ``to_module``, 20 Adam steps towards synthetic output rates, and back,
    then legalized for loihi2 (trained weights are off the 8-bit grid)."""
    from slayerc import from_module, to_module
    from slayerc.passes.manager import PassManager

    m = to_module(g)
    gen = torch.Generator().manual_seed(0)
    x = (torch.rand(4, *g.inputs[0].shape, 40, generator=gen) < 0.3).float()  # type: ignore
    with torch.no_grad():
        target = (torch.rand(m(x).shape, generator=gen) < 0.2).float()
    opt = torch.optim.Adam(m.parameters(), lr=0.01)
    for _ in range(20):
        opt.zero_grad()
        torch.nn.functional.mse_loss(m(x).mean(-1), target.mean(-1)).backward()
        opt.step()
    return PassManager.from_string(
        "legalize-delay{max=62,target=loihi2},legalize-quant{target=loihi2}").run(from_module(m))


def _onnx_compiled(kind: str, tmp: Path):
    """``slayerc compile KIND.onnx -o KIND.net``: a test model of tests/onnx (or shifted_pad),
    exported with torch.onnx.export, converted, legalized, without its host-side output
    decoder."""
    import warnings

    from slayerc.driver import compile_file
    from slayerc.frontend.onnx import netlist_outputs

    sys.path.insert(0, str(ROOT / "tests" / "onnx"))
    from onnx_models import export

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        path = _shifted_pad(tmp) if kind == "shifted_pad" else export(kind, tmp)[2]
        return netlist_outputs(compile_file(path).graph)[0]


def _shifted_pad(tmp: Path) -> Path:
    """Conv → ReLU → + 0.25 → padded Conv → ReLU → Linear: the constant reaches the second
    conv's neurons through different numbers of taps (zero padding at the borders), so that
    conv's neurons get per-neuron biases."""
    nn = torch.nn

    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.c1, self.c2 = nn.Conv2d(2, 4, 3), nn.Conv2d(4, 6, 3, padding=1)
            self.fc = nn.Linear(6 * 5 * 8, 3)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            y = torch.relu(self.c2(torch.relu(self.c1(x)) + 0.25))
            return self.fc(y.flatten(1))

    torch.manual_seed(4)
    path = tmp / "shifted_pad.onnx"
    torch.onnx.export(Net().eval(), torch.rand(1, 2, 7, 10), str(path), dynamo=False,
                      input_names=["x"], output_names=["y"])
    return path


def _nir_compiled(case: str):
    """``slayerc compile tests/data/nir/CASE.nir`` for loihi2 (the file's own dt/convention)."""
    import warnings

    from slayerc.driver import compile_file

    meta = np.load(NIR_DATA / f"{case}.npz")
    opts = {"dt": float(meta["dt"]), "convention": str(meta["convention"])}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # legalize-layers' notes; the comparison is the check
        return compile_file(NIR_DATA / f"{case}.nir", **opts).graph


def _nir_pool_lif():
    """A NIR graph built with the nir package whose average pool feeds a LIF."""
    import nir

    from slayerc.frontend.nir_import import from_nir

    rng = np.random.default_rng(1)

    def lif(*s):
        return nir.LIF(tau=np.full(s, 1e-3), r=np.full(s, 10.0), v_leak=np.zeros(s),
                       v_threshold=np.full(s, 1.0), v_reset=np.zeros(s))

    two = np.array([2, 2])
    graph = nir.NIRGraph(nodes={
        "in": nir.Input(input_type={"input": np.array([2, 8, 8])}),
        "conv": nir.Conv2d(input_shape=(8, 8), weight=rng.normal(0, 1, (4, 2, 3, 3)), stride=1,
                           padding=1, dilation=1, groups=1, bias=np.zeros(4)),
        "lif1": lif(4, 8, 8),
        "pool": nir.AvgPool2d(kernel_size=two, stride=two, padding=np.array([0, 0])),
        "lif2": lif(4, 4, 4),
        "flat": nir.Flatten(input_type={"input": np.array([4, 4, 4])}, start_dim=0),
        "fc": nir.Linear(weight=rng.normal(0.5, 1, (5, 64))), "lif3": lif(5),
        "out": nir.Output(output_type={"output": np.array([5])})},
        edges=[("in", "conv"), ("conv", "lif1"), ("lif1", "pool"), ("pool", "lif2"),
               ("lif2", "flat"), ("flat", "fc"), ("fc", "lif3"), ("lif3", "out")])
    return _compiled(from_nir(graph))


def _convsnn():
    sys.path.insert(0, str(ROOT / "examples"))
    import models

    from slayerc.frontend.trace import trace

    return trace(models.ConvSNN(), torch.zeros(1, 2, 16, 16, 40))


def _lowered(g):
    from slayerc.passes import PassManager

    return PassManager.from_string(LOWER).run(g)


def _compiled(g):
    """``g`` through the loihi2 default pipeline (what ``slayerc compile`` runs)."""
    from slayerc.passes import PassManager
    from slayerc.passes.pipelines import default_pipeline

    return PassManager.from_string(default_pipeline("loihi2")).run(g)


def _nmnist():
    sys.path.insert(0, str(ROOT / "examples"))
    import models

    from slayerc.frontend.trace import trace

    torch.manual_seed(0)  # its blocks carry conv delays: the whole pipeline (legalize-delay)
    return _compiled(trace(models.NMNISTNet(), torch.zeros(1, 2, 34, 34, 25)))


def _long_delay():
    """cuba Dense 8→6 with axonal delays up to 150 → Dense 6→4 (issue 6's acceptance case)."""
    import slayerc.slayer as slayer
    from slayerc.frontend.trace import trace

    torch.manual_seed(0)
    p = {"threshold": 0.5, "current_decay": 0.25, "voltage_decay": 0.125}
    net = torch.nn.Sequential(slayer.block.cuba.Dense(p, 8, 6, weight_scale=4, delay=True),
                              slayer.block.cuba.Dense(p, 6, 4, weight_scale=4))
    g = trace(net, torch.zeros(1, 8, 260))
    delays = np.array([2, 30, 60, 100, 150, 149], np.float64)
    return _compiled(g.replace(params={**g.params, "0.delay": delays}))


def _pool_conv_net(dense_delay: bool):
    """Pool → Conv(delay) → Pool → Flatten → Dense(delay if ``dense_delay``) → Dense, traced
    (slayer cuba blocks, seeded)."""
    import slayerc.slayer as slayer
    from slayerc.frontend.trace import trace

    torch.manual_seed(0)
    p = {"threshold": 0.5, "current_decay": 0.25, "voltage_decay": 0.125}
    net = torch.nn.Sequential(
        slayer.block.cuba.Pool(p, 2),
        slayer.block.cuba.Conv(p, 2, 6, 3, padding=1, weight_scale=3, delay=True),
        slayer.block.cuba.Pool(p, 2),
        slayer.block.cuba.Flatten(),
        slayer.block.cuba.Dense(p, 96, 8, weight_scale=3, delay=dense_delay),
        slayer.block.cuba.Dense(p, 8, 4, weight_scale=3))
    return trace(net, torch.zeros(1, 2, 16, 16, 200))


def _pool_delays():
    """Pool → Conv(delays) → Pool → Dense(delays up to 130) → Dense (issue 16): the conv delay
    moves through the pool (a per-channel op) onto the dense layer; the long ones get relays."""
    g = _pool_conv_net(dense_delay=True)
    d = {"1.delay": np.full(6, 7.0),  # one delay for all channels: per-channel ones need Lava form
         "4.delay": np.array([9, 2, 22, 106, 85, 119, 65, 130], np.float64)}
    return _compiled(g.replace(params={**g.params, **d}))


def _pool_channel_delays():
    """Pool → Conv(a different delay per channel) → Pool → Dense → Dense, all slayer blocks:
    the conv delays pass the pool and the flatten and become the per-column (input-side) delays
    of the first dense layer, which carries no delay of its own (netx: one delay per synapse)."""
    g = _pool_conv_net(dense_delay=False)
    d = {"1.delay": np.array([0, 3, 7, 1, 62, 25], np.float64)}
    return _compiled(g.replace(params={**g.params, **d}))


def _pool_channel_own_delays():
    """As :func:`_pool_channel_delays`, and the first dense layer has its own delay per output:
    the conv delays become its column delays and its own delays the next dense layer's."""
    g = _pool_conv_net(dense_delay=True)
    d = {"1.delay": np.array([0, 3, 7, 1, 62, 25], np.float64),
         "4.delay": np.array([4, 0, 9, 2, 30, 1, 6, 11], np.float64)}
    return _compiled(g.replace(params={**g.params, **d}))


def _recurrent_kwta():
    sys.path.insert(0, str(ROOT / "examples"))
    import models

    from slayerc.frontend.trace import trace

    torch.manual_seed(0)
    return _compiled(trace(models.RecurrentKWTA(), torch.zeros(1, 20, 30)))


def _yolo_kp():
    """slayer.obd's YOLO-KP with mean-only norms as training leaves them (non-zero running
    means: sigma-delta neuron biases, put in Lava's form by legalize-layers), its ir_forward
    traced and compiled for loihi2."""
    import slayerc.slayer as slayer
    from slayerc.driver import compile_model

    torch.manual_seed(0)
    net = slayer.obd.models.yolo_kp.Network(num_classes=2)
    gen = torch.Generator().manual_seed(0)
    for m in net.modules():
        if isinstance(m, slayer.neuron.norm.MeanOnlyBatchNorm):
            m.running_mean.copy_(torch.rand(m.running_mean.shape, generator=gen) * 0.2 - 0.1)
    return compile_model(net.eval(), torch.rand(1, 3, 64, 64, 3)).graph


def _torch_cnn():
    """A plain torch CNN with BatchNorm (folded biases) feeding slayer neurons."""
    sys.path.insert(0, str(ROOT / "examples"))
    import models

    from slayerc.frontend.trace import trace

    torch.manual_seed(0)
    return _compiled(trace(models.TorchCNN().eval(), torch.zeros(1, 2, 16, 16, 40)))


if __name__ == "__main__":
    sys.exit(main())
