"""Recurrent + KWTA: a cuba Recurrent layer remembers the order of two input bursts and a
k-winner-take-all output layer picks the class; compiled for Loihi 2 (``lower-kwta`` turns the
KWTA block into a dense layer with fixed lateral weights) and run in fixed point.

The task (made here): 24 input channels in 4 groups of 6; a sample fires one group in a burst,
then (after a pause) another, random one.  The class is the group that came first, so the
network must tell the first burst from the second (both drive the input layer equally): its
recurrent state has to hold which came first.  The flow:

1. train ``Network`` (Dense 24→32 → Recurrent 32→32 → KWTA 32→4, one winner) with
   ``slayer.utils.Assistant`` (``SpikeRate`` loss on the KWTA output, rate classifier), every
   batch from rest (``reset``: lava-dl's looped blocks otherwise carry state between calls);
2. save the checkpoint and load it into a fresh ``Network`` (as a deployment does), compile
   that for ``loihi2``, run the netlist in fixed point and print both accuracies, with the
   per-layer spike agreement of the fixed-point run (``slayerc.compile``'s quantization
   report, as ``slayerc compile --quant-report``).

``python examples/recurrent_kwta.py`` (full) or ``--quick``.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

import slayerc
import slayerc.slayer as slayer

GROUPS, PER_GROUP, CLASSES = 4, 6, 4
NEURON = {"threshold": 0.5, "current_decay": 0.5, "voltage_decay": 0.02, "tau_grad": 0.5,
          "scale_grad": 1, "requires_grad": False}  # slow voltage decay: the memory


class Network(nn.Module):
    """Dense(24→32) → Recurrent(32→32) → KWTA(32→4, num_winners=1), cuba; input ``[N, 24, T]``."""

    def __init__(self):
        super().__init__()
        p = NEURON
        self.blocks = nn.Sequential(
            slayer.block.cuba.Dense(p, GROUPS * PER_GROUP, 32, weight_scale=2),
            slayer.block.cuba.Recurrent(p, 32, 32, weight_scale=2),
            slayer.block.cuba.KWTA(p, 32, CLASSES, num_winners=1, weight_scale=2),
        )

    def forward(self, x):
        return self.blocks(x)


def reset(net: nn.Module) -> None:
    """Start the next call from rest.  lava-dl's Recurrent and KWTA blocks carry state from one
    call to the next when the batch size matches (persistent neurons; the first step's feedback
    is the previous call's last spikes), which would leak one batch into the next; the compiled
    network starts every run from rest, as this does."""
    for m in net.modules():
        for name in ("spike_state", "current_state", "voltage_state"):
            if isinstance(getattr(m, name, None), torch.Tensor):
                setattr(m, name, torch.zeros(1))


def sample(label: int, steps: int, rng: np.random.Generator) -> np.ndarray:
    """``[24, T]``: a burst of group ``label``, a pause, a burst of another (random) group."""
    second = (label + rng.integers(1, GROUPS)) % GROUPS
    x = (rng.random((GROUPS * PER_GROUP, steps)) < 0.01).astype(np.float32)
    burst = steps // 5
    for group, start in ((label, 1), (second, 2 * burst)):
        rows = slice(group * PER_GROUP, (group + 1) * PER_GROUP)
        x[rows, start:start + burst] = rng.random((PER_GROUP, burst)) < 0.5
    return x


def dataset(n: int, steps: int, seed: int):
    """``n`` samples of 4 classes and labels."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % CLASSES
    return (torch.from_numpy(np.stack([sample(k, steps, rng) for k in labels])),
            torch.from_numpy(labels).long())


def accuracy(spikes, labels: torch.Tensor, start: int) -> float:
    """Percent of samples whose most active output (from step ``start``) is the label."""
    counts = np.asarray(spikes)[..., start:].sum(-1)
    return 100.0 * float(np.mean(counts.argmax(1) == labels.numpy()))


def main() -> None:
    """Train, compile with the quantization report, run in fixed point, compare."""
    import common

    args = common.parse(__doc__.splitlines()[0], "recurrent_kwta")
    steps, n_train, n_test, epochs = (30, 64, 32, 3) if args.quick else (30, 384, 128, 16)
    train_set, test_set = dataset(n_train, steps, args.seed), dataset(n_test, steps,
                                                                      args.seed + 1)
    net = Network()
    error = slayer.loss.SpikeRate(true_rate=0.4, false_rate=0.02, reduction="sum")
    optimizer = torch.optim.Adam(net.parameters(), lr=0.003)
    stats = slayer.utils.LearningStats()
    predict = slayer.classifier.Rate.predict
    assistant = slayer.utils.Assistant(net, error, optimizer, stats, classifier=predict)
    x, y = train_set
    for epoch in range(epochs):
        order = torch.randperm(len(y))
        for i in range(0, len(y), 32):
            reset(net)
            assistant.train(x[order[i:i + 32]], y[order[i:i + 32]])
        reset(net)
        assistant.test(*test_set)
        if epoch % max(epochs // 6, 1) == 0 or epoch == epochs - 1:
            print(f"epoch {epoch}: train accuracy {100 * stats.training.accuracy:.1f}%, "
                  f"test accuracy {100 * stats.testing.accuracy:.1f}%")
        stats.update()

    from slayerc.driver import compile_model

    ckpt = args.out / "recurrent_kwta.pt"
    torch.save(net.state_dict(), ckpt)
    net = Network()  # deploy from the checkpoint: a fresh model, from rest
    net.load_state_dict(torch.load(ckpt))
    net.eval()
    reset(net)  # the checkpoint holds the last call's spikes (spike_state), as lava-dl's does
    x, y = test_set
    with torch.no_grad():
        float_out = net(x)
    netlist = args.out / "recurrent_kwta.net"
    done = compile_model(net, x[:4], output=netlist, quant=True)  # = slayerc compile
    fixed = slayerc.run_netlist(netlist, x.numpy())
    lat = done.output_latency
    print(f"test accuracy: float {accuracy(float_out, y, 0):.2f}%, fixed point (Loihi 2 "
          f"netlist) {accuracy(fixed[..., lat:], y, 0):.2f}% (chance {100 / CLASSES:.0f}%); "
          f"output latency {lat:+d} steps")
    print(done.quant.table())

    from slayerc import plot

    common.picture(args, plot.graph_picture, done.graph, args.out / "recurrent_kwta_graph.png")
    common.picture(args, plot.quant_picture, done.quant, args.out / "recurrent_kwta_quant.png")
    _, layers = slayerc.run_netlist(netlist, x[0].numpy(), all_layers=True)
    common.picture(args, plot.raster_picture, {"input": x[0].numpy(), **layers},
                   args.out / "recurrent_kwta_raster.png")
    common.done(args)


if __name__ == "__main__":
    main()
