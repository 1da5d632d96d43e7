"""``slayer.utils.Assistant``: lava-dl's per-batch train/valid/test helper."""

from __future__ import annotations

import pytest
import torch

import slayerc.slayer as slayer
from slayerc.errors import FrontendError

LIF = {"threshold": 0.5, "current_decay": 0.25, "voltage_decay": 0.1, "requires_grad": False}


class Net(torch.nn.Module):
    """Returns lava-dl's tuples: ``(x, net_loss, count)``, ``(x, count)``, ``(x, net_loss)``."""

    def __init__(self, count_log: bool = False, net_loss: bool = False):
        super().__init__()
        self.count_log, self.net_loss = count_log, net_loss
        self.blocks = torch.nn.ModuleList([slayer.block.cuba.Dense(LIF, 8, 12),
                                           slayer.block.cuba.Dense(LIF, 12, 2)])

    def forward(self, x):
        counts = []
        for b in self.blocks:
            x = b(x)
            counts.append(x.mean())
        count = torch.stack(counts)
        extra = ((count.mean(),) if self.net_loss else ()) + ((count,) if self.count_log else ())
        return (x, *extra) if extra else x


def _data(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Class 0 fires on the first four inputs, class 1 on the last four."""
    g = torch.Generator().manual_seed(seed)
    label = torch.randint(0, 2, (n,), generator=g)
    rate = torch.full((n, 8, 1), 0.05)
    rate[label == 0, :4] = 0.6
    rate[label == 1, 4:] = 0.6
    return (torch.rand(n, 8, 30, generator=g) < rate).float(), label


def _assistant(count_log=False, lam=None):
    torch.manual_seed(0)
    net = Net(count_log, net_loss=lam is not None)
    opt = torch.optim.Adam(net.parameters(), lr=0.01)
    stats = slayer.utils.LearningStats()
    error = slayer.loss.SpikeRate(true_rate=0.4, false_rate=0.02)
    return net, opt, stats, slayer.utils.Assistant(net, error, opt, stats,
                                                   slayer.classifier.Rate.predict, count_log, lam)


def test_training_learns_and_logs_every_phase():
    net, _, stats, assistant = _assistant()
    x, y = _data(32, 0)
    xt, yt = _data(32, 1)
    first = None
    for _ in range(15):
        out = assistant.train(x, y)
        assert out.shape == (32, 2, 30)
        assistant.valid(xt, yt)
        assistant.test(xt, yt)
        assert stats.training.num_samples == 32 and stats.testing.num_samples == 32
        first = first if first is not None else stats.training.loss
        stats.update()
    assert stats.training.loss_log[-1] < 0.5 * first
    assert stats.testing.accuracy_log[-1] >= 0.9
    assert stats.validation.loss_log == stats.testing.loss_log  # same data, no learning
    assert not net.training  # test left it in eval mode


def test_valid_and_test_do_not_learn():
    net, _, _, assistant = _assistant()
    x, y = _data(8, 2)
    before = [p.detach().clone() for p in net.parameters()]
    assistant.valid(x, y)
    assistant.test(x, y)
    assert all(torch.equal(a, b) for a, b in zip(before, net.parameters()))
    assistant.train(x, y)
    assert any(not torch.equal(a, b) for a, b in zip(before, net.parameters()))


def test_count_log_returns_counts_and_lam_adds_the_net_loss():
    x, y = _data(16, 3)
    rates = []
    for lam in (None, 50.0):
        net, _, stats, assistant = _assistant(count_log=True, lam=lam)
        for _ in range(10):
            out, count = assistant.train(x, y)
        assert out.shape == (16, 2, 30) and count.shape == (2,)
        rates.append(float(count.detach().mean()))
    assert rates[1] < rates[0]  # the penalty lowers the event rate


def test_errors_and_reduce_lr():
    net, opt, _, assistant = _assistant()
    assistant.reduce_lr(4.0)
    assert opt.param_groups[0]["lr"] == pytest.approx(0.0025)
    bad = slayer.utils.Assistant(net, lambda o, t: o.sum(), opt, count_log=True)
    with pytest.raises(FrontendError, match=r"must return \(output, count\)"):
        bad.train(*_data(2, 4))
    bad = slayer.utils.Assistant(net, lambda o, t: o.sum(), opt, lam=1.0)
    with pytest.raises(FrontendError, match=r"must return \(output, net_loss\)"):
        bad.train(*_data(2, 4))


def test_lam_without_count_log_adds_lam_times_net_loss_to_the_gradient():
    # lava-dl: a network returning (output, net_loss) trains on error + lam·net_loss; the
    # statistics log the error alone
    w = torch.nn.Parameter(torch.tensor(2.0))

    class Tiny(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.w = w

        def forward(self, x):
            return x * self.w, self.w ** 2  # net_loss = w²: gradient 2w = 4

    opt = torch.optim.SGD([w], lr=1.0)
    stats = slayer.utils.LearningStats()
    a = slayer.utils.Assistant(Tiny(), lambda o, t: (o - t).sum(), opt, stats, lam=0.5)
    out = a.train(torch.ones(3), torch.zeros(3))  # error = 3w: gradient 3
    assert out.shape == (3,)
    assert float(w.detach()) == pytest.approx(2.0 - (3 + 0.5 * 4))  # w = −3
    assert stats.training.loss_sum == pytest.approx(6.0 * 3)  # error 6 per batch × 3 outputs
    a.test(torch.ones(3), torch.zeros(3))  # net_loss is ignored outside training
    assert stats.testing.loss_sum == pytest.approx(3 * -3.0 * 3)  # error 3w = −9, × 3 outputs
