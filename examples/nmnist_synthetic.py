"""NMNIST-style: train a cuba conv SNN with learnable axonal delays on synthetic event data,
compile it for Loihi 2 and compare the float and the fixed-point accuracy.

The data (made here, no download) imitates NMNIST's saccades: each of 10 classes is a fixed
sparse 16×16 glyph; a sample shows its glyph shifted by a random offset of up to one pixel per
saccade, three saccades in a row, with ON events while the glyph moves in and OFF events while
it moves out, plus background noise events.  The flow:

1. train ``Network`` with ``slayer.utils.Assistant`` (``SpikeRate`` loss, rate classifier);
2. save the checkpoint (``nmnist.pt``);
3. compile for ``loihi2`` with the library call behind ``slayerc compile`` (the checkpoint
   compiles from the shell too: the command is printed);
4. run the netx netlist in slayerc's bit-accurate fixed-point simulator
   (``slayerc.run_netlist``, as ``slayerc run``) and print both accuracies.

``python examples/nmnist_synthetic.py`` (full, a few minutes on 2 cores) or ``--quick``.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

import slayerc
import slayerc.slayer as slayer

SIZE, CLASSES = 16, 10
NEURON = {"threshold": 1.25, "current_decay": 0.25, "voltage_decay": 0.03,
          "tau_grad": 0.03, "scale_grad": 3, "requires_grad": True}


class Network(nn.Module):
    """Conv(2→8) → Conv(8→16) → Flatten → Dense(256→64, learnable axonal delays) →
    Dense(64→10), all cuba; input ``[N, 2, 16, 16, T]``.

    Loihi 2 (netx) holds axonal delays on dense layers only, so the delays sit on the hidden
    dense layer (a conv block with ``delay=True`` compiles for the ``slayerc`` target only).
    """

    def __init__(self):
        super().__init__()
        p = NEURON
        self.blocks = nn.Sequential(
            slayer.block.cuba.Conv(p, 2, 8, 3, stride=2, padding=1, weight_scale=2),
            slayer.block.cuba.Conv(p, 8, 16, 3, stride=2, padding=1, weight_scale=2),
            slayer.block.cuba.Flatten(),
            slayer.block.cuba.Dense(p, 16 * 4 * 4, 64, weight_scale=2, delay=True),
            slayer.block.cuba.Dense(p, 64, CLASSES, weight_scale=2),
        )
        with torch.no_grad():  # start the learnable delays spread over 0..3 steps
            self.blocks[3].delay.delay.copy_(torch.arange(64) % 4)

    def forward(self, x):
        return self.blocks(x)


def glyphs(rng: np.random.Generator) -> np.ndarray:
    """One sparse random 12×12 glyph per class (strokes of 4 random segments), padded to 16."""
    out = np.zeros((CLASSES, SIZE, SIZE), bool)
    for k in range(CLASSES):
        for _ in range(4):
            r, c = rng.integers(2, 14, 2)
            dr, dc = [(0, 1), (1, 0), (1, 1), (1, -1)][rng.integers(4)]
            for i in range(rng.integers(4, 9)):
                rr, cc = r + i * dr, c + i * dc
                if 2 <= rr < 14 and 2 <= cc < 14:
                    out[k, rr, cc] = True
    return out


def events(glyph: np.ndarray, steps: int, rng: np.random.Generator) -> np.ndarray:
    """One sample ``[2, 16, 16, T]``: three saccades over the glyph, ON/OFF events, noise."""
    x = np.zeros((2, SIZE, SIZE, steps), np.float32)
    per = steps // 3
    for s in range(3):
        dy, dx = rng.integers(-1, 2, 2)
        shifted = np.roll(glyph, (dy, dx), (0, 1))
        for t in range(s * per, (s + 1) * per):
            phase = (t - s * per) / per
            p = 0.35 if phase < 0.5 else 0.12
            x[0 if phase < 0.5 else 1, :, :, t] = shifted & (rng.random((SIZE, SIZE)) < p)
    x += rng.random(x.shape) < 0.01
    return np.minimum(x, 1)


def dataset(n: int, steps: int, seed: int, shapes: np.ndarray):
    """``n`` samples (balanced classes) and labels."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % CLASSES
    rng.shuffle(labels)
    x = np.stack([events(shapes[k], steps, rng) for k in labels])
    return torch.from_numpy(x), torch.from_numpy(labels).long()


def accuracy(spikes: np.ndarray | torch.Tensor, labels: torch.Tensor) -> float:
    """Percent of samples whose most active output neuron is the label."""
    counts = np.asarray(spikes).sum(-1)
    return 100.0 * float(np.mean(counts.argmax(1) == labels.numpy()))


def train(args, net, train_set, test_set, epochs: int) -> None:
    """``epochs`` passes of mini-batches of 16 through ``slayer.utils.Assistant``."""
    error = slayer.loss.SpikeRate(true_rate=0.3, false_rate=0.03, reduction="sum")
    optimizer = torch.optim.Adam(net.parameters(), lr=0.003)
    stats = slayer.utils.LearningStats()
    assistant = slayer.utils.Assistant(net, error, optimizer, stats,
                                       classifier=slayer.classifier.Rate.predict)
    x, y = train_set
    for epoch in range(epochs):
        order = torch.randperm(len(y))
        for i in range(0, len(y), 16):
            idx = order[i:i + 16]
            assistant.train(x[idx], y[idx])
        assistant.test(*test_set)
        print(f"epoch {epoch}: train accuracy {100 * stats.training.accuracy:.1f}%, "
              f"test accuracy {100 * stats.testing.accuracy:.1f}%")
        stats.update()


def main() -> None:
    """Train, save, compile, run in fixed point, compare."""
    import common

    args = common.parse(__doc__.splitlines()[0], "nmnist")
    steps, n_train, n_test, epochs = (24, 160, 100, 2) if args.quick else (30, 1200, 400, 6)
    shapes = glyphs(np.random.default_rng(1234))
    train_set = dataset(n_train, steps, args.seed, shapes)
    test_set = dataset(n_test, steps, args.seed + 1, shapes)
    net = Network()
    train(args, net, train_set, test_set, epochs)

    ckpt, netlist = args.out / "nmnist.pt", args.out / "nmnist.net"
    torch.save(net.state_dict(), ckpt)
    net.eval()
    x, y = test_set
    with torch.no_grad():
        float_out = net(x)
    compiled = slayerc.compile(net, x[:1], output=netlist)  # loihi2, its default pipeline
    print(f"compiled {len(compiled)} IR nodes to {netlist} (from the shell: slayerc compile "
          f"examples/nmnist_synthetic.py:Network --weights {ckpt} --input-shape 2,{SIZE},{SIZE}"
          f" --steps {steps} -o {netlist})")
    fixed_out = slayerc.run_netlist(netlist, x.numpy())  # as `slayerc run`
    acc_float, acc_fixed = accuracy(float_out, y), accuracy(fixed_out, y)
    same = float(np.mean(np.asarray(fixed_out)[..., :steps] == float_out.numpy()))
    print(f"test accuracy: float {acc_float:.2f}%, fixed point (Loihi 2 netlist) "
          f"{acc_fixed:.2f}% (chance {100 / CLASSES:.0f}%); fixed-point output spikes equal "
          f"to float: {100 * same:.2f}%")

    from slayerc import plot

    common.picture(args, plot.graph_picture, compiled, args.out / "nmnist_graph.png")
    _, layers = slayerc.run_netlist(netlist, x[0].numpy(), all_layers=True)
    rasters = {"input (ON, OFF)": x[0].numpy(), **layers}
    common.picture(args, plot.raster_picture, rasters, args.out / "nmnist_raster.png")
    common.done(args)


if __name__ == "__main__":
    main()
