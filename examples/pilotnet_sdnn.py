"""PilotNet-style: a sigma-delta network regresses a steering angle from synthetic road frames;
compiled for Loihi 2, it is compared with the float model, with the message rate per layer.

The frames (made here): a 3×24×32 camera view of a road whose centre line leaves the bottom
centre at an angle θ ∈ [−0.5, 0.5] rad (the target), on a textured background; a sample is a
short video of the same view with a slowly drifting texture and camera noise, so a sigma-delta
layer sends a message only where its activation changes by more than its threshold.  The flow:

1. train ``Network`` (sigma-delta Input → Conv → Conv → Flatten → Dense → Output, lava-dl's
   PilotNet blocks, smaller) with ``slayer.utils.Assistant`` on the MSE of the decoded output,
   plus lava-dl's ``SparsityEnforcer`` on the message rate;
2. compile for ``loihi2`` (``slayerc.compile``), run the netlist in fixed point
   (``slayerc.run_netlist``) and print the regression error of both;
3. print the message rates: per layer the fraction of neurons that send a message per step
   (1.0 would be an ANN: every neuron every step), of the float model (``sdnn_report``) and of
   the fixed-point netlist run (its recorded layers).

``python examples/pilotnet_sdnn.py`` (full) or ``--quick``.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

import slayerc
import slayerc.slayer as slayer

H, W = 24, 32
NEURON = {"threshold": 0.05, "tau_grad": 0.5, "scale_grad": 1, "requires_grad": True,
          "shared_param": True, "activation": torch.nn.functional.relu}
SIGMA_UNIT = float(1 << 18)  # the netlist's decoded output, in fixed-point units (2^-18)


class Network(nn.Module):
    """Input → Conv(3→12, s2) → Conv(12→24, s2) → Flatten → Dense(→32) → Output(→1)."""

    def __init__(self):
        super().__init__()
        p = NEURON
        self.blocks = nn.Sequential(
            slayer.block.sigma_delta.Input(p),
            slayer.block.sigma_delta.Conv(p, 3, 12, 3, stride=2, weight_scale=2),
            slayer.block.sigma_delta.Conv(p, 12, 24, 3, stride=2, weight_scale=2),
            slayer.block.sigma_delta.Flatten(),
            slayer.block.sigma_delta.Dense(p, 24 * 5 * 7, 32, weight_scale=2),
            slayer.block.sigma_delta.Output(p, 32, 1, weight_scale=2),
        )

    def forward(self, x):
        count = []
        for block in self.blocks:
            x = block(x)
            if hasattr(block, "neuron"):
                count.append(torch.mean((torch.abs(x) > 0).float()))
        return x, torch.stack(count).mean()


class Traceable(nn.Module):
    """``Network`` returning its output only (what is traced and compiled)."""

    def __init__(self, net: Network | None = None):
        super().__init__()
        self.net = net or Network()

    def forward(self, x):
        return self.net.blocks(x)


def frames(angle: float, steps: int, rng: np.random.Generator) -> np.ndarray:
    """One video ``[3, H, W, T]`` of a road leaving the bottom centre at ``angle``."""
    yy, xx = np.mgrid[0:H, 0:W].astype(np.float32)
    depth = (H - 1 - yy) / (H - 1)  # 0 at the bottom, 1 at the top
    centre = W / 2 + np.tan(angle) * depth * H
    road = np.exp(-((xx - centre) / (1.5 + 2.5 * (1 - depth))) ** 2)
    texture = rng.random((H, W)).astype(np.float32)
    out = np.empty((3, H, W, steps), np.float32)
    for t in range(steps):
        drift = np.roll(texture, t // 4, axis=0)
        noise = rng.normal(0, 0.01, (H, W))
        base = 0.2 * drift + noise
        out[0, :, :, t] = base + 0.8 * road  # red: the road line
        out[1, :, :, t] = base + 0.3 * road
        out[2, :, :, t] = base + 0.1 * depth  # blue: the sky brightens upwards
    return np.clip(out, 0, 1)


def dataset(n: int, steps: int, seed: int):
    """``n`` videos and their angles."""
    rng = np.random.default_rng(seed)
    angles = rng.uniform(-0.5, 0.5, n).astype(np.float32)
    x = np.stack([frames(a, steps, rng) for a in angles])
    return torch.from_numpy(x), torch.from_numpy(angles)


def error_fn(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """MSE of the decoded output against the angle, from step 4 on (the first steps settle)."""
    out = output.reshape(output.shape[0], -1)[:, 4:]
    return torch.nn.functional.mse_loss(out, target[:, None].expand_as(out))


def rms_error(pred: np.ndarray, target: torch.Tensor) -> float:
    """RMS error in degrees of the last step's output."""
    return float(np.degrees(np.sqrt(np.mean((pred - target.numpy()) ** 2))))


def train(net: Network, train_set, test_set, epochs: int) -> None:
    """Mini-batches of 16 through ``Assistant``; the network returns (output, rate), the
    rate weighted by ``lam`` as lava-dl's PilotNet tutorial does with its event rate."""
    optimizer = torch.optim.Adam(net.parameters(), lr=0.003)
    stats = slayer.utils.LearningStats()
    assistant = slayer.utils.Assistant(net, error_fn, optimizer, stats, lam=0.01)
    x, y = train_set
    for epoch in range(epochs):
        order = torch.randperm(len(y))
        for i in range(0, len(y), 16):
            idx = order[i:i + 16]
            assistant.train(x[idx], y[idx])
        assistant.test(*test_set)
        print(f"epoch {epoch}: train loss {stats.training.loss:.4f}, "
              f"test loss {stats.testing.loss:.4f}")
        stats.update()


def main() -> None:
    """Train, compile, run in fixed point, compare, report message rates."""
    import common

    from slayerc.frontend.onnx.report import sdnn_report

    args = common.parse(__doc__.splitlines()[0], "pilotnet")
    steps, n_train, n_test, epochs = (12, 96, 32, 2) if args.quick else (16, 800, 200, 15)
    train_set, test_set = dataset(n_train, steps, args.seed), dataset(n_test, steps,
                                                                      args.seed + 1)
    net = Network()
    train(net, train_set, test_set, epochs)
    model = Traceable(net).eval()
    torch.save(model.state_dict(), args.out / "pilotnet.pt")
    x, y = test_set
    with torch.no_grad():
        float_pred = model(x)[:, 0, -1].numpy()
    netlist = args.out / "pilotnet.net"
    compiled = slayerc.compile(model, x[:1], output=netlist)
    fixed = slayerc.run_netlist(netlist, x.numpy())
    fixed_pred = fixed[:, 0, -1] / SIGMA_UNIT
    print(f"steering error (RMS, last step): float {rms_error(float_pred, y):.2f} deg, fixed "
          f"point (Loihi 2 netlist) {rms_error(fixed_pred, y):.2f} deg; predicting 0 would "
          f"give {rms_error(np.zeros_like(float_pred), y):.2f} deg")

    report = sdnn_report(slayerc.trace(model, x[:1]), x[:8].numpy())  # float model
    print(f"{'float model layer':<28}{'neurons':>8}{'threshold':>11}{'messages/neuron/step':>22}")
    for row in report.layers:
        print(f"{row.name:<28}{row.neurons:>8}{row.threshold:>11.3g}{row.rate:>22.4f}")
    _, layers = slayerc.run_netlist(netlist, x[:8].numpy(), all_layers=True)
    print(f"{'Loihi 2 netlist layer':<28}{'neurons':>8}{'messages/neuron/step':>33}")
    sent = total = 0
    for name, out in layers.items():
        count = int(np.prod(out.shape[1:-1]))
        rate = float(np.mean(out != 0))
        sent, total = sent + rate * count, total + count
        print(f"{name:<28}{count:>8}{rate:>33.4f}")
    print(f"message rate: float model {report.rate:.4f}, fixed-point netlist {sent / total:.4f} "
          f"per neuron per step ({total / max(sent, 1e-9):.1f}x fewer messages than a dense "
          "network that sends every activation every step)")

    from slayerc import plot

    common.picture(args, plot.graph_picture, compiled, args.out / "pilotnet_graph.png")
    shown = {"input (red channel)": x[0, 0].numpy().reshape(-1, steps),
             **{name: out[0] for name, out in layers.items()}}
    common.picture(args, plot.raster_picture, shown, args.out / "pilotnet_messages.png")
    common.done(args)


if __name__ == "__main__":
    main()
