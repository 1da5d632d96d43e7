"""slayer.io, slayer.loss, slayer.classifier and slayer.utils."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import slayerc.slayer as slayer
from slayerc.errors import SlayerError


def test_event_tensor_roundtrip_2d():
    spikes = np.zeros((2, 3, 4, 10))
    spikes[0, 1, 2, 3] = spikes[1, 2, 0, 9] = spikes[1, 0, 3, 0] = 1
    ev = slayer.io.tensor_to_event(spikes)
    assert ev.dim == 2 and not ev.graded and len(ev) == 3
    np.testing.assert_array_equal(ev.to_tensor(dim=spikes.shape), spikes)
    t = ev.fill_tensor(torch.zeros(2, 3, 4, 10))
    assert isinstance(t, torch.Tensor) and torch.equal(t, torch.tensor(spikes, dtype=t.dtype))


def test_graded_events_sum():
    ev = slayer.io.Event([0, 0], None, [0, 0], [2.0, 2.0], payload=[0.5, 0.25])
    out = ev.to_tensor(dim=(1, 1, 3))
    assert out.shape == (1, 1, 3) and out[0, 0, 2] == 0.75


def test_binary_1d_file_roundtrip(tmp_path):
    ev = slayer.io.Event([0, 300, 65535], None, [1, 0, 1], [0.001, 12.5, 8000.0])
    slayer.io.encode_1d_spikes(tmp_path / "a.bs1", ev)
    raw = (tmp_path / "a.bs1").read_bytes()
    assert len(raw) == 15 and raw[5:7] == bytes([1, 44])  # id 300 keeps its high byte
    back = slayer.io.read_1d_spikes(tmp_path / "a.bs1")
    np.testing.assert_array_equal(back.x, ev.x)
    np.testing.assert_array_equal(back.c, ev.c)
    np.testing.assert_allclose(back.t, ev.t)


def test_binary_2d_file_roundtrip(tmp_path):
    ev = slayer.io.Event([3, 33], [7, 0], [0, 1], [1.0, 2.5])
    slayer.io.encode_2d_spikes(tmp_path / "a.bs2", ev)
    raw = (tmp_path / "a.bs2").read_bytes()
    assert raw[:5] == bytes([3, 7, 0, 0x03, 0xE8])  # x, y, p|t[22:16], t[15:8], t[7:0]; 1000 us
    back = slayer.io.read_2d_spikes(tmp_path / "a.bs2")
    np.testing.assert_array_equal(back.y, ev.y)
    np.testing.assert_allclose(back.t, ev.t)
    with pytest.raises(SlayerError, match="x must lie"):
        slayer.io.encode_2d_spikes(tmp_path / "b.bs2", slayer.io.Event([300], [0], [0], [1.0]))


def test_np_spikes_roundtrip(tmp_path):
    ev = slayer.io.Event([1, 2], [3, 4], [0, 1], [5.0, 6.0])
    slayer.io.encode_np_spikes(tmp_path / "e.npy", ev)
    back = slayer.io.read_np_spikes(tmp_path / "e.npy")
    np.testing.assert_array_equal(back.x, ev.x)
    np.testing.assert_allclose(back.t, ev.t)


def test_rate_classifier_and_losses():
    spikes = torch.zeros(2, 3, 10)
    spikes[0, 1, :6] = 1
    spikes[1, 2, :3] = 1
    assert slayer.classifier.Rate.predict(spikes).tolist() == [1, 2]
    conf = slayer.classifier.Rate.confidence(spikes)
    assert conf.shape == (2, 3) and torch.allclose(conf.sum(1), torch.ones(2), atol=1e-4)
    label = torch.tensor([1, 2])
    rate_loss = slayer.loss.SpikeRate(true_rate=0.6, false_rate=0.0)(spikes, label)
    assert float(rate_loss) == pytest.approx((0.3 - 0.6) ** 2)
    assert float(slayer.loss.SpikeMax()(spikes + 0.01, label)) > 0
    with pytest.raises(SlayerError):
        slayer.loss.SpikeRate(true_rate=2, false_rate=0)


def test_moving_window_and_windowed_losses():
    spikes = torch.zeros(1, 2, 8)
    spikes[0, 0, ::2] = 1
    mw = slayer.classifier.MovingWindow(4)
    rate = mw.rate(spikes)
    assert rate[0, 0, -1] == pytest.approx(0.5) and rate[0, 0, 0] == pytest.approx(0.25)
    assert mw.confidence(spikes).shape == (1, 2, 8)
    assert mw.predict(spikes).shape == (1, 8)
    loss = slayer.loss.SpikeRate(0.5, 0.0, moving_window=4)(spikes, torch.tensor([0]))
    assert loss.dim() == 0
    assert slayer.loss.SpikeMax(moving_window=4)(spikes + 0.1, torch.tensor([0])).dim() == 0


def test_spike_time_loss_is_filtered_mse():
    a, b = torch.zeros(1, 1, 20), torch.zeros(1, 1, 20)
    a[0, 0, 3] = 1
    assert float(slayer.loss.SpikeTime()(a, a)) == 0
    assert float(slayer.loss.SpikeTime(time_constant=2, length=10)(a, b)) == pytest.approx(
        float(np.sum(np.exp(-np.arange(10) / 2) ** 2)), rel=1e-5)


def test_learning_stats():
    stats = slayer.utils.LearningStats()
    stats.training.loss_sum, stats.training.num_samples = 4.0, 2
    stats.training.correct_samples = 1
    stats.update()
    assert stats.training.min_loss == 2.0 and stats.training.max_accuracy == 0.5
    stats.update()  # an empty epoch logs None without failing
    assert stats.training.loss_log == [2.0, None] and not stats.training.best_loss
    assert "Train" in str(stats)


def test_time_shift_and_replicate():
    x = torch.arange(5.0).reshape(1, 1, 5)
    assert slayer.utils.time.shift(x, 2).tolist() == [[[0.0, 0.0, 0.0, 1.0, 2.0]]]
    assert slayer.utils.time.shift(x, -1).tolist() == [[[1.0, 2.0, 3.0, 4.0, 0.0]]]
    r = slayer.utils.time.replicate(torch.tensor([1, 2]), 3)
    assert r.tolist() == [[1, 1, 1], [2, 2, 2]]
    assert slayer.utils.quantize(torch.tensor([0.26]), step=0.5).item() == 0.5


def test_learning_stats_names_units_and_load(tmp_path):
    stats = slayer.utils.LearningStats(loss_str="err", loss_unit="(mse)",
                                       accuracy_str="hit", accuracy_unit="%")
    stats.training.loss_sum, stats.training.num_samples = 3.0, 3
    stats.testing.loss_sum, stats.testing.num_samples, stats.testing.correct_samples = 2.0, 4, 3
    text = str(stats)
    assert "err =     1.00000" in text and "(mse)" in text and "hit = 0.75000" in text
    assert "accuracy" not in text
    stats.update()
    stats.training.loss_sum, stats.training.num_samples = 1.0, 4
    stats.testing.loss_sum, stats.testing.num_samples = 4.0, 4  # no correct sample: 0.0
    stats.update()
    assert stats.testing.accuracy_log == [0.75, 0.0]
    prefix = str(tmp_path) + "/"
    stats.save(prefix)
    assert (tmp_path / "err.txt").exists() and (tmp_path / "hit.txt").exists()
    back = slayer.utils.LearningStats(loss_str="err", accuracy_str="hit")
    back.load(prefix)
    assert back.training.loss_log == pytest.approx([1.0, 0.25])
    assert back.testing.loss_log == pytest.approx([0.5, 1.0])
    assert back.testing.accuracy_log == pytest.approx([0.75, 0.0])
    assert back.training.min_loss == pytest.approx(0.25)
    assert back.testing.max_accuracy == pytest.approx(0.75)
