"""Spike events (``slayer.io``): the :class:`Event` container, event ↔ tensor, and the binary
spike file formats of lava-dl/SLAYER.

Binary formats (each event 40 bits, big-endian, 5 bytes):

* 1-D (``read_1d_spikes``/``encode_1d_spikes``): bits 39–24 neuron id (16 bits), bit 23 polarity
  (the channel), bits 22–0 timestamp in µs.
* 2-D (``read_2d_spikes``/``encode_2d_spikes``, NMNIST/NCALTECH101): bits 39–32 x, 31–24 y,
  bit 23 polarity, bits 22–0 timestamp in µs.

Times in :class:`Event` are in ms.  As in lava-dl, ``Event`` renumbers channels so that the
smallest is 0, casts non-integer x/y/c to int (truncation, numpy ``astype``) and
:meth:`Event.fill_tensor` rounds x/y/c (so float coordinates written after construction, as
augmentations do, work).  lava-dl's 1-D encoder drops the high byte of neuron ids ≥ 256; here ids
keep all 16 bits.  Out-of-range values raise :class:`EventError`.  :meth:`Event.show` and
:meth:`Event.anim` need matplotlib (``pip install slayerc[plot]``).
"""

from __future__ import annotations

import numpy as np
import torch

from slayerc.errors import EventError, SlayerError  # noqa: F401

__all__ = [
    "Event", "tensor_to_event", "read_1d_spikes", "encode_1d_spikes", "read_2d_spikes",
    "encode_2d_spikes", "read_np_spikes", "encode_np_spikes",
]

_T_MAX_US = (1 << 23) - 1


def _int_array(values) -> np.ndarray:
    """Integer array; non-integer values are cast with ``astype(int)`` (toward zero, as lava-dl)."""
    a = np.asarray(values)
    return a if issubclass(a.dtype.type, np.integer) else a.astype(np.int64)


def _index(values) -> np.ndarray:
    """Rounded integer indices (lava-dl's ``fill_tensor`` rounds x, y and c)."""
    return np.round(np.asarray(values)).astype(np.int64)


def _pyplot():
    """matplotlib's pyplot and animation modules, imported only when a plot is asked for."""
    try:
        import matplotlib.animation as animation
        import matplotlib.pyplot as plt
    except ImportError as err:
        raise EventError("Event.show/Event.anim need matplotlib: pip install 'slayerc[plot]' "
                         "(or pip install matplotlib)") from err
    return plt, animation


class Event:
    """Spike events: ``x``, ``y`` (None for 1-D), channel ``c``, time ``t`` (ms), payload ``p``.

    ``p`` is None for binary spikes (``graded`` False).  Channels are renumbered so that the
    smallest is 0 (lava-dl): ``Event(x, y, [1, 2], t).c`` is ``[0, 1]``.
    """

    def __init__(self, x_event, y_event, c_event, t_event, payload=None):
        self.dim = 1 if y_event is None else 2
        self.graded = payload is not None
        self.x = _int_array(x_event)
        self.y = None if y_event is None else _int_array(y_event)
        c = _int_array(c_event)
        self.c = c - c.min() if c.size else c  # a new array: the caller's is not modified
        self.t = np.asarray(t_event)
        self.p = None if payload is None else np.asarray(payload)
        n = len(self.x)
        lengths = [len(a) for a in (self.y, self.c, self.t, self.p) if a is not None]
        if any(m != n for m in lengths):
            raise EventError(f"event arrays differ in length: x has {n}, others {lengths}")

    def __len__(self):
        return len(self.x)

    def _default_dim(self, sampling_time):
        steps = int(np.round(np.max(self.t) / sampling_time)) + 1 if len(self) else 1
        sizes = [int(_index(a).max(initial=0)) + 1
                 for a in ((self.c, self.x) if self.dim == 1 else (self.c, self.y, self.x))]
        return (*sizes, steps)

    def to_tensor(self, sampling_time=1, dim=None):
        """Numpy array ``[C, X, T]`` (1-D) or ``[C, H, W, T]`` (2-D); shape inferred if None."""
        dim = tuple(self._default_dim(sampling_time) if dim is None else dim)
        frame_shape = (dim[0], 1, dim[1], dim[2]) if self.dim == 1 else dim
        frame = self.fill_tensor(np.zeros(frame_shape), sampling_time)
        return np.asarray(frame).reshape(dim)

    def fill_tensor(self, empty_tensor, sampling_time=1, random_shift=False, binning_mode="OR"):
        """Write the events into a ``[C, H, W, T]`` array or tensor (1-D events use H = 1), in
        place, and return it.

        x, y and c are rounded to the nearest integer, t to the nearest bin of ``sampling_time``.
        ``OR`` sets ``1/sampling_time`` (or the payload); ``SUM`` accumulates (always used for
        graded events).  Events outside the tensor are dropped.  ``random_shift`` moves the events
        earlier by a random number of bins drawn with ``np.random.randint`` from the range
        lava-dl uses.
        """
        shape = tuple(empty_tensor.shape)
        t_event = np.round(np.asarray(self.t) / sampling_time).astype(np.int64)
        if random_shift:
            t_event = t_event - self._random_start(shape[3], sampling_time)
        x_event = _index(self.x)
        y_event = np.zeros_like(x_event) if self.dim == 1 else _index(self.y)
        idx = (_index(self.c), y_event, x_event, t_event)
        valid = np.ones(len(self), dtype=bool)
        for i, size in zip(idx, shape):
            valid &= (i >= 0) & (i < size)
        idx = tuple(i[valid] for i in idx)
        ones = np.full(valid.sum(), 1 / sampling_time)
        values = np.asarray(self.p)[valid] if self.graded else ones
        mode = "SUM" if self.graded else binning_mode.upper()
        if mode not in ("OR", "SUM"):
            raise EventError(f"unsupported binning_mode {binning_mode!r}; use 'OR' or 'SUM'")
        if isinstance(empty_tensor, torch.Tensor):
            dev = empty_tensor.device
            t_idx = tuple(torch.as_tensor(i, device=dev) for i in idx)
            t_val = torch.as_tensor(values, dtype=empty_tensor.dtype, device=dev)
            empty_tensor.index_put_(t_idx, t_val, accumulate=mode == "SUM")
        elif mode == "OR":
            empty_tensor[idx] = values
        else:
            np.add.at(empty_tensor, idx, values)
        return empty_tensor

    def _random_start(self, num_bins, sampling_time):
        """lava-dl's random start bin: ``randint(max(t_min, t_max − T, T − t_max, 1))``."""
        t_min = int(np.min(self.t) / sampling_time) if len(self) else 0
        t_max = int(np.max(self.t) / sampling_time) if len(self) else 0
        return np.random.randint(max(t_min, t_max - num_bins, num_bins - t_max, 1))

    def show(self, fig=None, frame_rate=24, pre_compute_frames=True, repeat=False):
        """Show the events as an animation (matplotlib): a raster (1-D) or frames (2-D) whose
        colours are the channels (0 blue, 1 red, 2 green).  One frame is ``1000/frame_rate`` ms."""
        plt, _ = _pyplot()
        self._animation(fig, frame_rate, pre_compute_frames, repeat)
        plt.show()

    def anim(self, fig=None, frame_rate=24, pre_compute_frames=True, repeat=True):
        """The ``matplotlib.animation.FuncAnimation`` of :meth:`show`, without showing it (its
        figure is closed; use ``anim.save(...)`` or ``anim.to_jshtml()``)."""
        plt, _ = _pyplot()
        animation = self._animation(fig, frame_rate, pre_compute_frames, repeat)
        plt.close(animation._fig)
        return animation

    def _animation(self, fig, frame_rate, pre_compute_frames, repeat):
        plt, animation = _pyplot()
        fig = plt.figure() if fig is None else plt.figure(fig)
        interval = 1e3 / frame_rate  # ms per frame
        t = np.asarray(self.t, dtype=float)
        t_min, t_max = (float(t.min()), float(t.max())) if len(self) else (0.0, 0.0)
        first = int(np.floor(t_min / interval))
        if self.dim == 1:
            draw = self._raster_1d(plt, t, t_max, interval, first)
            frames = int(np.ceil(t_max / interval)) + 1
        else:
            draw = self._frames_2d(plt, t, interval, first, pre_compute_frames)
            frames = max(int(np.ceil(t_max / interval)) - first, 1)
        return animation.FuncAnimation(fig, draw, frames=frames, interval=interval,
                                       repeat=repeat)

    def _raster_1d(self, plt, t, t_max, interval, first):
        """Frame callback of a 1-D raster (x against time) that grows up to each frame's end;
        graded events are drawn with size and opacity by payload."""
        x_dim = int(self.x.max(initial=0)) + 1
        t_min = float(t.min()) if t.size else 0.0
        plt.axis((t_min - 0.1 * t_max, 1.1 * t_max + 1e-9,
                  -0.1 * x_dim, 1.1 * x_dim))
        scan_line, = plt.plot([], [])
        if self.graded:
            p = np.asarray(self.p, dtype=float)
            span = float(p.max() - p.min()) or 1.0
            points = plt.scatter([], [])
        else:
            raster, = plt.plot([], [], ".")

        def draw(i):
            t_end = (i + first + 1) * interval
            shown = t < t_end
            if self.graded:
                alpha = (p[shown] - p.min()) / span
                points.set_offsets(np.stack([t[shown], self.x[shown]], axis=1))
                points.set_sizes(alpha * 50)
                points.set_alpha(alpha)
            else:
                raster.set_data(t[shown], self.x[shown])
            scan_line.set_data([t_end + interval] * 2, [0, x_dim])

        return draw

    def _frames_2d(self, plt, t, interval, first, pre_compute):
        """Frame callback of 2-D events: one RGB image per ``interval`` ms."""
        y_dim, x_dim = int(self.y.max(initial=0)) + 1, int(self.x.max(initial=0)) + 1
        image = plt.imshow(np.zeros((y_dim, x_dim, 3)))
        x, y, c = _index(self.x), _index(self.y), _index(self.c)

        def frame(i):
            start = (i + first) * interval
            now = (t >= start) & (t < start + interval)
            rgb = np.zeros((y_dim, x_dim, 3))
            for colour, channel in enumerate((1, 2, 0)):  # red, green, blue
                sel = now & (c == channel)
                rgb[y[sel], x[sel], colour] = 1
            return rgb

        n = max(int(np.ceil(float(t.max()) / interval)) - first, 1) if t.size else 1
        cache = [frame(i) for i in range(n)] if pre_compute else None

        def draw(i):
            image.set_data(cache[i] if cache is not None else frame(i))
            return image

        return draw


def tensor_to_event(spike_tensor, sampling_time=1):
    """Events from a ``[C, X, T]`` (1-D) or ``[C, H, W, T]`` (2-D) numpy array or tensor."""
    if isinstance(spike_tensor, torch.Tensor):
        spike_tensor = spike_tensor.detach().cpu().numpy()
    if not isinstance(spike_tensor, np.ndarray) or spike_tensor.ndim not in (3, 4):
        raise EventError("expected a numpy array or torch tensor of 3 or 4 dimensions")
    where = np.argwhere(spike_tensor != 0)
    payload = spike_tensor[tuple(where.T)] * sampling_time
    t = where[:, -1] * sampling_time
    y = None if spike_tensor.ndim == 3 else where[:, 1]
    x = where[:, 1] if spike_tensor.ndim == 3 else where[:, 2]
    binary = np.abs(payload - 1).sum() < 1e-6
    return Event(x, y, where[:, 0], t, None if binary else payload)


def _read_words(filename):
    data = np.fromfile(filename, dtype=np.uint8)
    if data.size % 5:
        raise EventError(f"{filename}: size {data.size} is not a multiple of 5 bytes")
    return data.reshape(-1, 5).astype(np.int64)


def _time_polarity(b):
    c = b[:, 2] >> 7
    t = ((b[:, 2] << 16) | (b[:, 3] << 8) | b[:, 4]) & _T_MAX_US
    return c, t / 1000


def read_1d_spikes(filename):
    """Read a 1-D binary spike file into an :class:`Event` (times in ms)."""
    b = _read_words(filename)
    c, t = _time_polarity(b)
    return Event((b[:, 0] << 8) | b[:, 1], None, c, t)


def read_2d_spikes(filename):
    """Read a 2-D binary spike file (NMNIST format) into an :class:`Event` (times in ms)."""
    b = _read_words(filename)
    c, t = _time_polarity(b)
    return Event(b[:, 0], b[:, 1], c, t)


def _check_range(name, values, limit):
    if len(values) and (values.min() < 0 or values.max() > limit):
        raise EventError(f"{name} must lie in [0, {limit}] for this format; got "
                         f"[{values.min()}, {values.max()}]")


def _encode(filename, first, second, td_event):
    c = np.round(td_event.c).astype(np.int64)
    t = np.round(td_event.t * 1000).astype(np.int64)
    _check_range("polarity (channel)", c, 1)
    _check_range("timestamp (µs)", t, _T_MAX_US)
    out = np.empty((len(t), 5), dtype=np.uint8)
    out[:, 0], out[:, 1] = first, second
    out[:, 2] = ((t >> 16) & 0x7F) | (c << 7)
    out[:, 3] = (t >> 8) & 0xFF
    out[:, 4] = t & 0xFF
    out.tofile(filename)


def encode_1d_spikes(filename, td_event):
    """Write a 1-D :class:`Event` as a binary spike file."""
    if td_event.dim != 1:
        raise EventError(f"expected a 1-D event; got dimension {td_event.dim}")
    x = np.round(td_event.x).astype(np.int64)
    _check_range("neuron id", x, 0xFFFF)
    _encode(filename, (x >> 8) & 0xFF, x & 0xFF, td_event)


def encode_2d_spikes(filename, td_event):
    """Write a 2-D :class:`Event` as a binary spike file (NMNIST format)."""
    if td_event.dim != 2:
        raise EventError(f"expected a 2-D event; got dimension {td_event.dim}")
    x = np.round(td_event.x).astype(np.int64)
    y = np.round(td_event.y).astype(np.int64)
    _check_range("x", x, 0xFF)
    _check_range("y", y, 0xFF)
    _encode(filename, x, y, td_event)


def read_np_spikes(filename, fmt="xypt", time_unit=1e-3):
    """Read events stored as a numpy array ``[n, 3]`` (x, p, t) or ``[n, 4]`` (x, y, p, t)."""
    a = np.load(filename)
    if fmt != "xypt":
        raise EventError(f"fmt={fmt!r} is not implemented; use 'xypt'")
    scale = time_unit * 1e3
    if a.ndim == 2 and a.shape[1] == 3:
        return Event(a[:, 0], None, a[:, 1], a[:, 2] * scale)
    if a.ndim == 2 and a.shape[1] == 4:
        return Event(a[:, 0], a[:, 1], a[:, 2], a[:, 3] * scale)
    raise EventError(f"{filename}: expected an [events, 3] or [events, 4] array; got {a.shape}")


def encode_np_spikes(filename, td_event, fmt="xypt", time_unit=1e-3):
    """Write events as a numpy array (the layout :func:`read_np_spikes` reads)."""
    if fmt != "xypt":
        raise EventError(f"fmt={fmt!r} is not implemented; use 'xypt'")
    cols = [td_event.x] + ([] if td_event.dim == 1 else [td_event.y]) + [td_event.c,
                                                                         td_event.t]
    np.save(filename, np.stack([np.asarray(c, dtype=float) for c in cols], axis=1))
