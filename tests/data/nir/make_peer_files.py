"""Regenerate the peer NIR files under tests/data/nir/ and the peers' own simulations of them.

Run ``python tests/data/nir/make_peer_files.py`` with snnTorch (``pip install snntorch``) and
Norse (``pip install norse --no-deps`` plus ``nirtorch --no-deps``) installed beside slayerc's
torch.  For each case it writes ``<case>.nir`` and ``<case>.npz`` (``x``: the seeded spike input,
``y``: the peer's output spikes, both ``[N, *S, T]``, time last; ``dt`` and ``convention``: how to
import the file).

* snnTorch cases are written by snnTorch's own exporter (``export_to_nir``, dt = 1e-4,
  r = tau/dt, w_in = tau_syn/dt) from models with ``reset_mechanism="zero", reset_delay=False``
  as snnTorch's own NIR importer builds them (NIR resets to ``v_reset`` at the spike;
  snnTorch's default, reset by subtraction, has no NIR form, and its delayed zero reset of
  ``Synaptic`` drops the step after a spike) and per-neuron ``beta``/``threshold``
  tensors (snnTorch's exporter needs them to infer the layer shapes); snnTorch simulates them.
* Norse cases (``norse_*``): built with the ``nir`` package the way Norse's importer reads them
  (tau in seconds, dt = 1e-3, r = 1, w_in = 1, v_reset = 0) and Norse simulates the same network.
  Norse's ``LIFCell`` adds its input to the synaptic current undecayed: import with
  ``convention="norse"``.
* Norse export cases (``norse_export_*``): written by Norse 1.1's own exporter
  (``norse.torch.to_nir``, dt = 1e-3), which writes ``tau = dt/tau_inv`` (1e-5 s for
  ``tau_mem_inv = 100``) and the sample's batch axis into the Input type: import with
  ``convention="norse-export"``.  Parameters are per neuron (``nir.write`` cannot store the
  0-d arrays Norse exports for scalar ones).  ``norse_export_if_li`` ends on a leaky
  integrator: its ``y`` is the float voltage, not spikes.
"""

from __future__ import annotations

from pathlib import Path

import nir
import numpy as np
import torch

HERE = Path(__file__).resolve().parent
T, N = 60, 8


def _spikes(shape: tuple[int, ...], p: float, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return (torch.rand((N, *shape, T), generator=g) < p).float()


def _save(name: str, graph, x: torch.Tensor, y: torch.Tensor, dt: float, convention: str):
    nir.write(HERE / f"{name}.nir", graph)
    spikes = bool(((y == 0) | (y == 1)).all())
    np.savez_compressed(HERE / f"{name}.npz", x=x.numpy().astype(np.uint8),
                        y=y.numpy().astype(np.uint8 if spikes else np.float32), dt=dt,
                        convention=convention)
    print(f"{name}: {int(y.sum())} output spikes" if spikes else f"{name}: voltages")


# ------------------------------------------------------------------------------ snnTorch


def _snn_run(net, x: torch.Tensor) -> torch.Tensor:
    from snntorch import utils

    utils.reset(net)
    out = []
    with torch.no_grad():
        for t in range(x.shape[-1]):
            y = net(x[..., t])
            out.append(y[0] if isinstance(y, tuple) else y)
    return torch.stack(out, -1)


def _leaky(shape, beta, **kw):
    import snntorch as snn

    return snn.Leaky(beta=torch.full(shape, beta), threshold=torch.ones(shape),
                     reset_mechanism="zero", reset_delay=False, init_hidden=True, **kw)


def snntorch_cases() -> None:
    import snntorch as snn
    from snntorch.export_nir import export_to_nir

    torch.manual_seed(1)
    # feed-forward dense, snnTorch's default beta (not on the 12-bit decay grid)
    net = torch.nn.Sequential(torch.nn.Linear(32, 48), _leaky((48,), 0.9),
                              torch.nn.Linear(48, 10), _leaky((10,), 0.9, output=True))
    with torch.no_grad():
        net[0].weight.mul_(3.0)
        net[2].weight.mul_(3.0)
    x = _spikes((32,), 0.25, 10)
    _save("snntorch_dense", export_to_nir(net, torch.zeros(1, 32), ignore_dims=[0]), x,
          _snn_run(net, x), 1e-4, "euler")

    # the same with dyadic weights and decays on the grid: must agree exactly
    net = torch.nn.Sequential(torch.nn.Linear(32, 48), _leaky((48,), 0.875),
                              torch.nn.Linear(48, 10), _leaky((10,), 0.75, output=True))
    with torch.no_grad():
        for m in (net[0], net[2]):
            m.weight.copy_(torch.round(m.weight * 192) / 64)
            m.bias.copy_(torch.round(m.bias * 64) / 64)
    _save("snntorch_dense_exact", export_to_nir(net, torch.zeros(1, 32), ignore_dims=[0]), x,
          _snn_run(net, x), 1e-4, "euler")

    # CubaLIF (snn.Synaptic)
    syn = snn.Synaptic(alpha=torch.full((24,), 0.8), beta=torch.full((24,), 0.9),
                       threshold=torch.ones(24), reset_mechanism="zero", reset_delay=False,
                       init_hidden=True,
                       output=True)
    net = torch.nn.Sequential(torch.nn.Linear(32, 24), syn)
    with torch.no_grad():
        net[0].weight.mul_(1.5)
    x = _spikes((32,), 0.2, 11)
    _save("snntorch_cuba", export_to_nir(net, torch.zeros(1, 32), ignore_dims=[0]), x,
          _snn_run(net, x), 1e-4, "euler")

    # convolution, average pooling, flatten
    net = torch.nn.Sequential(
        torch.nn.Conv2d(2, 4, 3, padding=1), _leaky((4, 8, 8), 0.9),
        torch.nn.AvgPool2d(2), torch.nn.Flatten(), torch.nn.Linear(64, 10),
        _leaky((10,), 0.9, output=True))
    with torch.no_grad():
        net[0].weight.mul_(4.0)
        net[4].weight.mul_(4.0)
    x = _spikes((2, 8, 8), 0.3, 12)
    _save("snntorch_conv", export_to_nir(net, torch.zeros(1, 2, 8, 8), ignore_dims=[0]), x,
          _snn_run(net, x), 1e-4, "euler")

    # recurrent (snn.RLeaky, all-to-all): a nested graph with a cycle
    rl = snn.RLeaky(beta=torch.full((20,), 0.9), threshold=torch.ones(20), linear_features=20,
                    reset_mechanism="zero", reset_delay=False, init_hidden=True,
                    output=True)
    net = torch.nn.Sequential(torch.nn.Linear(16, 20), rl)
    with torch.no_grad():
        net[0].weight.mul_(2.0)
        rl.recurrent.weight.mul_(2.0)
    x = _spikes((16,), 0.25, 13)
    _save("snntorch_recurrent", export_to_nir(net, torch.zeros(1, 16), ignore_dims=[0]), x,
          _snn_run(net, x), 1e-4, "euler")


# ------------------------------------------------------------------------------ Norse


def _norse_run(layers, x: torch.Tensor) -> torch.Tensor:
    """Step Norse's cells through time (state carried per cell), as Norse's own loops do."""
    states: list = [None] * len(layers)
    out = []
    with torch.no_grad():
        for t in range(x.shape[-1]):
            h = x[..., t]
            for i, layer in enumerate(layers):
                if isinstance(layer, torch.nn.Linear):
                    h = layer(h)
                else:
                    h, states[i] = layer(h, states[i])
            out.append(h)
    return torch.stack(out, -1)


def norse_cases() -> None:
    import norse.torch as norse

    torch.manual_seed(2)
    dt = 1e-3
    fc1, fc2 = torch.nn.Linear(32, 40), torch.nn.Linear(40, 10)
    with torch.no_grad():
        fc1.weight.mul_(8.0)
        fc2.weight.mul_(8.0)
    p1 = norse.LIFBoxParameters(tau_mem_inv=torch.tensor(200.0), v_th=torch.tensor(0.5))
    p2 = norse.LIFParameters(tau_syn_inv=torch.tensor(250.0), tau_mem_inv=torch.tensor(100.0),
                             v_th=torch.tensor(0.3))
    model = [fc1, norse.LIFBoxCell(p1, dt=dt), fc2, norse.LIFCell(p2, dt=dt)]
    x = _spikes((32,), 0.25, 20)
    y = _norse_run(model, x)

    def arr(v, n):
        return np.full(n, float(v), np.float32)

    graph = nir.NIRGraph(
        nodes={
            "input": nir.Input(input_type={"input": np.array([32])}),
            "fc1": nir.Affine(weight=fc1.weight.detach().numpy(), bias=fc1.bias.detach().numpy()),
            "lif": nir.LIF(tau=arr(1 / 200.0, 40), r=arr(1, 40), v_leak=arr(0, 40),
                           v_threshold=arr(0.5, 40), v_reset=arr(0, 40)),
            "fc2": nir.Affine(weight=fc2.weight.detach().numpy(), bias=fc2.bias.detach().numpy()),
            "cuba": nir.CubaLIF(tau_syn=arr(1 / 250.0, 10), tau_mem=arr(1 / 100.0, 10),
                                r=arr(1, 10), v_leak=arr(0, 10), v_threshold=arr(0.3, 10),
                                v_reset=arr(0, 10), w_in=arr(1, 10)),
            "output": nir.Output(output_type={"output": np.array([10])}),
        },
        edges=[("input", "fc1"), ("fc1", "lif"), ("lif", "fc2"), ("fc2", "cuba"),
               ("cuba", "output")])
    _save("norse_lif_cuba", graph, x, y, dt, "norse")


def _norse_state_run(model, x: torch.Tensor) -> torch.Tensor:
    """A ``norse.SequentialState`` stepped through time."""
    out, state = [], None
    with torch.no_grad():
        for t in range(x.shape[-1]):
            y, state = model(x[..., t], state)
            out.append(y)
    return torch.stack(out, -1)


def norse_export_cases() -> None:
    import norse.torch as norse

    dt = 1e-3

    def full(v, n):
        return torch.full((n,), float(v))

    # the network of norse_lif_cuba, through Norse's own exporter
    torch.manual_seed(2)
    fc1, fc2 = torch.nn.Linear(32, 40), torch.nn.Linear(40, 10)
    with torch.no_grad():
        fc1.weight.mul_(8.0)
        fc2.weight.mul_(8.0)
    p1 = norse.LIFBoxParameters(tau_mem_inv=full(200, 40), v_th=full(0.5, 40), v_leak=full(0, 40))
    p2 = norse.LIFParameters(tau_syn_inv=full(250, 10), tau_mem_inv=full(100, 10),
                             v_th=full(0.3, 10), v_leak=full(0, 10))
    model = norse.SequentialState(fc1, norse.LIFBoxCell(p1, dt=dt), fc2,
                                  norse.LIFCell(p2, dt=dt))
    x = _spikes((32,), 0.25, 20)
    _save("norse_export_lif_cuba", norse.to_nir(model, torch.zeros(1, 32), dt=dt), x,
          _norse_state_run(model, x), dt, "norse-export")

    # IAFCell (v += x) into a leaky-integrator read-out (LIBoxCell); dyadic weights, so the
    # integrate-and-fire layer is exact on the IR's state grid
    torch.manual_seed(3)
    fc1, fc2 = torch.nn.Linear(16, 20), torch.nn.Linear(20, 5)
    with torch.no_grad():
        for m in (fc1, fc2):
            m.weight.copy_(torch.round(m.weight * 128) / 64)
            m.bias.copy_(torch.round(m.bias * 64) / 64)
    model = norse.SequentialState(
        fc1, norse.IAFCell(norse.IAFParameters(v_th=full(1.0, 20), v_reset=full(0, 20)), dt=dt),
        fc2, norse.LIBoxCell(norse.LIBoxParameters(tau_mem_inv=full(125, 5), v_leak=full(0, 5)),
                             dt=dt))
    x = _spikes((16,), 0.3, 21)
    _save("norse_export_if_li", norse.to_nir(model, torch.zeros(1, 16), dt=dt), x,
          _norse_state_run(model, x), dt, "norse-export")


if __name__ == "__main__":
    snntorch_cases()
    norse_cases()
    norse_export_cases()
