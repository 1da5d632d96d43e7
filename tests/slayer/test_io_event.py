"""slayer.io.Event as lava-dl defines it: channel renumbering, rounding, in-place filling, plots."""

from __future__ import annotations

import sys

import numpy as np
import pytest
import torch

import slayerc.slayer as slayer
from slayerc.errors import SlayerError


def test_channels_are_renumbered_from_zero():
    c = np.array([1, 1, 3])
    ev = slayer.io.Event([0, 1, 2], None, c, [0.0, 1.0, 2.0])
    assert ev.c.tolist() == [0, 0, 2]
    assert c.tolist() == [1, 1, 3]  # the caller's array is left alone


def test_oxford_like_events_on_channel_one_fill_a_one_channel_tensor():
    # the Oxford tutorial's 1-D events all have polarity 1 and a tensor of one channel
    ev = slayer.io.Event([0, 5, 9], None, [1, 1, 1], [0.0, 3.0, 7.0])
    spikes = ev.fill_tensor(torch.zeros(1, 1, 10, 8))
    assert spikes.sum() == 3
    assert spikes[0, 0, 5, 3] == 1 and spikes[0, 0, 9, 7] == 1


def test_float_coordinates_are_rounded_when_filling():
    ev = slayer.io.Event([1, 2], [3, 4], [0, 1], [1.0, 2.0])
    ev.x = ev.x + 0.6   # as the NMNIST tutorial's augmentation writes floats
    ev.y = ev.y - 0.4
    spikes = ev.fill_tensor(torch.zeros(2, 6, 6, 4))
    assert spikes.sum() == 2
    assert spikes[0, 3, 2, 1] == 1 and spikes[1, 4, 3, 2] == 1


def test_constructor_casts_float_coordinates_toward_zero():
    ev = slayer.io.Event([1.7, 2.2], [0.9, 3.5], [0.0, 1.0], [1.0, 2.0])
    assert ev.x.tolist() == [1, 2] and ev.y.tolist() == [0, 3]


def test_fill_tensor_writes_the_given_tensor_in_place():
    ev = slayer.io.Event([0, 1], [0, 1], [0, 0], [0.0, 2.0])
    target = torch.zeros(1, 2, 2, 4)
    out = ev.fill_tensor(target, sampling_time=2)
    assert out is target
    assert target[0, 0, 0, 0] == 0.5 and target[0, 1, 1, 1] == 0.5  # 1/sampling_time
    arr = np.zeros((1, 2, 2, 4))
    assert ev.fill_tensor(arr) is arr and arr.sum() == 2


def test_random_shift_draws_from_lava_dls_range():
    # events at 10..20 ms in 50 bins: start = randint(max(10, 20 - 50, 50 - 20, 1)) = randint(30)
    ev = slayer.io.Event([0, 0], None, [0, 0], [10.0, 20.0])
    np.random.seed(3)
    start = np.random.randint(30)
    np.random.seed(3)
    spikes = ev.fill_tensor(np.zeros((1, 1, 1, 50)), random_shift=True)
    expected = [t - start for t in (10, 20) if t - start >= 0]
    assert np.flatnonzero(spikes[0, 0, 0]).tolist() == expected


@pytest.mark.filterwarnings("ignore:Animation was deleted")
def test_anim_returns_an_animation_of_the_events():
    pytest.importorskip("matplotlib")
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.animation import FuncAnimation

    ev2 = slayer.io.Event([0, 3, 1], [2, 0, 1], [0, 1, 1], [0.0, 50.0, 120.0])
    anim = ev2.anim(frame_rate=10)  # 100 ms frames: events span two frames
    assert isinstance(anim, FuncAnimation)
    assert len(list(anim.new_frame_seq())) == 2
    image = anim._fig.axes[0].images[0]
    anim._func(0)  # 0..100 ms: channel 0 blue at (y2, x0), channel 1 red at (y0, x3)
    rgb = np.asarray(image.get_array())
    assert rgb[2, 0].tolist() == [0, 0, 1] and rgb[0, 3].tolist() == [1, 0, 0] and rgb.sum() == 2
    anim._func(1)
    rgb = np.asarray(image.get_array())
    assert rgb[1, 1].tolist() == [1, 0, 0] and rgb.sum() == 1
    ev1 = slayer.io.Event([0, 4], None, [0, 0], [5.0, 250.0], payload=[0.5, 1.0])
    assert isinstance(ev1.anim(frame_rate=4), FuncAnimation)


def test_plotting_without_matplotlib_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", None)
    ev = slayer.io.Event([0], None, [0], [1.0])
    with pytest.raises(SlayerError, match=r"pip install .*slayerc\[plot\]"):
        ev.anim()
