"""Oxford-style spike-to-spike regression: one cuba Dense layer learns to turn random input
spike trains into a target spike train that draws a picture, then runs on the Loihi 2 netlist.

As lava-dl's Oxford tutorial (there: a 200-neuron Radcliffe Camera image drawn by spikes), the
target here is a spike pattern that draws a shape over time; the input is fixed Poisson noise.
Made here: 40 input neurons firing at 5 % per step; the target of the 32 output neurons draws
two sine waves (neuron ``i`` fires at the steps where a wave passes its row).  The flow:

1. train ``Network`` (a single ``slayer.block.cuba.Dense``) with ``slayer.loss.SpikeTime`` (a
   van Rossum distance: both trains filtered by a causal exponential, then squared error)
   through ``slayer.utils.Assistant``;
2. compile for ``loihi2`` and run the netlist in fixed point;
3. print the distance to the target before and after training, for the float model and the
   netlist, and how many output spikes the netlist shares with the float model.

``python examples/spike_regression.py`` (full) or ``--quick``.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

import slayerc
import slayerc.slayer as slayer

INPUTS, OUTPUTS = 40, 32
NEURON = {"threshold": 0.1, "current_decay": 1.0, "voltage_decay": 0.1, "tau_grad": 1.0,
          "scale_grad": 1.0, "requires_grad": False}


class Network(nn.Module):
    """One cuba Dense layer 40 → 32: input ``[N, 40, T]``."""

    def __init__(self):
        super().__init__()
        self.blocks = nn.Sequential(slayer.block.cuba.Dense(NEURON, INPUTS, OUTPUTS,
                                                            weight_scale=2))

    def forward(self, x):
        return self.blocks(x)


def target_train(steps: int) -> np.ndarray:
    """``[32, T]``: two sine waves drawn in spikes (row = neuron, one spike every 2 steps)."""
    y = np.zeros((OUTPUTS, steps), np.float32)
    t = np.arange(0, steps, 2)
    for phase, amp in ((0.0, 0.4), (np.pi, 0.25)):
        rows = np.round((OUTPUTS - 1) * (0.5 + amp * np.sin(2 * np.pi * t / steps * 2 + phase)))
        y[rows.astype(int), t] = 1
    return y


def distance(error: slayer.loss.SpikeTime, out, target: torch.Tensor) -> float:
    """The SpikeTime loss of one output ``[1, 32, T]`` (as float)."""
    return float(error(torch.as_tensor(np.asarray(out), dtype=torch.float32), target))


def main() -> None:
    """Train, compile, run in fixed point, compare."""
    import common

    args = common.parse(__doc__.splitlines()[0], "spike_regression")
    steps, epochs = (100, 80) if args.quick else (300, 1500)
    rng = np.random.default_rng(args.seed)
    x = torch.from_numpy((rng.random((1, INPUTS, steps)) < 0.05).astype(np.float32))
    target = torch.from_numpy(target_train(steps))[None]
    net = Network()
    error = slayer.loss.SpikeTime(time_constant=2, filter_order=2)
    optimizer = torch.optim.Adam(net.parameters(), lr=0.003)
    stats = slayer.utils.LearningStats()
    assistant = slayer.utils.Assistant(net, error, optimizer, stats)
    with torch.no_grad():
        before = distance(error, net(x), target)
    for epoch in range(epochs):
        out = assistant.train(x, target)
        if epoch % max(epochs // 5, 1) == 0 or epoch == epochs - 1:
            print(f"epoch {epoch}: SpikeTime loss {float(error(out, target).detach()):.2f}, "
                  f"{int(out.sum())} output spikes ({int(target.sum())} in the target)")
    net.eval()
    with torch.no_grad():
        float_out = net(x)
    netlist = args.out / "spike_regression.net"
    torch.save(net.state_dict(), args.out / "spike_regression.pt")
    slayerc.compile(net, x, output=netlist)
    fixed = slayerc.run_netlist(netlist, x.numpy())[..., :steps]
    same = float(np.mean(fixed == float_out.numpy()))
    hits = int(np.sum((fixed > 0) & (target.numpy() > 0)))
    print(f"SpikeTime distance to the target: untrained {before:.2f}, trained float "
          f"{distance(error, float_out, target):.2f}, trained Loihi 2 netlist (fixed point) "
          f"{distance(error, fixed, target):.2f}")
    print(f"netlist output equal to the float model's: {100 * same:.2f}% of entries; "
          f"{hits} of {int(target.sum())} target spikes hit exactly")

    from slayerc import plot

    shown = {"input": x[0].numpy(), "target": target[0].numpy(),
             "float model output": float_out[0].numpy(), "Loihi 2 netlist output": fixed[0]}
    common.picture(args, plot.raster_picture, shown, args.out / "spike_regression.png")
    common.done(args)


if __name__ == "__main__":
    main()
