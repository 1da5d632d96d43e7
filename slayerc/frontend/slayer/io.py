"""Spike events (``slayer.io``): the :class:`Event` container, event ↔ tensor, and the binary
spike file formats of lava-dl/SLAYER.

Binary formats (each event 40 bits, big-endian, 5 bytes):

* 1-D (``read_1d_spikes``/``encode_1d_spikes``): bits 39–24 neuron id (16 bits), bit 23 polarity
  (the channel), bits 22–0 timestamp in µs.
* 2-D (``read_2d_spikes``/``encode_2d_spikes``, NMNIST/NCALTECH101): bits 39–32 x, 31–24 y,
  bit 23 polarity, bits 22–0 timestamp in µs.

Times in :class:`Event` are in ms.  lava-dl's 1-D encoder drops the high byte of neuron ids
≥ 256 and its ``Event`` renumbers channels so that the smallest is 0; here ids keep all 16 bits
and channels are kept as given.  Out-of-range values raise :class:`EventError`.
"""

from __future__ import annotations

import numpy as np
import torch

from slayerc.errors import SlayerError

__all__ = [
    "Event", "tensor_to_event", "read_1d_spikes", "encode_1d_spikes", "read_2d_spikes",
    "encode_2d_spikes", "read_np_spikes", "encode_np_spikes",
]

_T_MAX_US = (1 << 23) - 1


class EventError(SlayerError, ValueError):
    """Events that do not fit a tensor or a file format."""


def _int_array(values) -> np.ndarray:
    a = np.asarray(values)
    return a if issubclass(a.dtype.type, np.integer) else np.round(a).astype(np.int64)


class Event:
    """Spike events: ``x``, ``y`` (None for 1-D), channel ``c``, time ``t`` (ms), payload ``p``.

    ``p`` is None for binary spikes (``graded`` False).
    """

    def __init__(self, x_event, y_event, c_event, t_event, payload=None):
        self.dim = 1 if y_event is None else 2
        self.graded = payload is not None
        self.x = _int_array(x_event)
        self.y = None if y_event is None else _int_array(y_event)
        self.c = _int_array(c_event)
        self.t = np.asarray(t_event)
        self.p = None if payload is None else np.asarray(payload)
        n = len(self.x)
        lengths = [len(a) for a in (self.y, self.c, self.t, self.p) if a is not None]
        if any(m != n for m in lengths):
            raise EventError(f"event arrays differ in length: x has {n}, others {lengths}")

    def __len__(self):
        return len(self.x)

    def _default_dim(self, sampling_time):
        steps = int(np.round(self.t.max() / sampling_time)) + 1 if len(self) else 1
        if self.dim == 1:
            return (int(self.c.max(initial=0)) + 1, int(self.x.max(initial=0)) + 1, steps)
        return (int(self.c.max(initial=0)) + 1, int(self.y.max(initial=0)) + 1,
                int(self.x.max(initial=0)) + 1, steps)

    def to_tensor(self, sampling_time=1, dim=None):
        """Numpy array ``[C, X, T]`` (1-D) or ``[C, H, W, T]`` (2-D); shape inferred if None."""
        dim = tuple(self._default_dim(sampling_time) if dim is None else dim)
        frame_shape = (dim[0], 1, dim[1], dim[2]) if self.dim == 1 else dim
        frame = self.fill_tensor(np.zeros(frame_shape), sampling_time)
        return np.asarray(frame).reshape(dim)

    def fill_tensor(self, empty_tensor, sampling_time=1, random_shift=False, binning_mode="OR"):
        """Write the events into a ``[C, H, W, T]`` array or tensor (1-D events use H = 1).

        ``OR`` sets ``1/sampling_time`` (or the payload); ``SUM`` accumulates (always used for
        graded events).  Events outside the tensor are dropped.
        """
        shape = tuple(empty_tensor.shape)
        t_event = np.round(self.t / sampling_time).astype(np.int64)
        if random_shift:
            t_event = t_event - np.random.randint(max(int(shape[3] - t_event.max(initial=0)), 1))
        y_event = np.zeros_like(self.x) if self.dim == 1 else self.y
        idx = (self.c, y_event, self.x, t_event)
        valid = np.ones(len(self), dtype=bool)
        for i, size in zip(idx, shape):
            valid &= (i >= 0) & (i < size)
        idx = tuple(i[valid] for i in idx)
        values = self.p[valid] if self.graded else np.full(valid.sum(), 1 / sampling_time)
        mode = "SUM" if self.graded else binning_mode.upper()
        if mode not in ("OR", "SUM"):
            raise EventError(f"unsupported binning_mode {binning_mode!r}; use 'OR' or 'SUM'")
        is_torch = isinstance(empty_tensor, torch.Tensor)
        target = empty_tensor.detach().cpu().numpy().copy() if is_torch else empty_tensor
        if mode == "OR":
            target[idx] = values
        else:
            np.add.at(target, idx, values)
        if is_torch:
            return torch.as_tensor(target, dtype=empty_tensor.dtype)
        return target


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
