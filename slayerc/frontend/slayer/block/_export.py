"""Writers for the netx layer groups (``spec/netx-hdf5.md`` §2–3), shared by every block.

Encodings (exactly lava-dl's): ``type`` is a fixed ``S10`` bytes array of shape ``(1,)``;
``shape`` and geometry are int64 arrays; ``inFeatures``-style counts are int64 scalars; weights,
bias and delay are float32 arrays of integer values; neuron keys are int64 scalars (or per-channel
int64 arrays), HDF5 bools, and variable-length strings for ``type``/``activation``.

Nothing here changes a module: weights are computed with weight norm and masks applied on the
fly, delays are clamped and floored on a copy.  The helpers fill a :class:`LayerTree` (an
in-memory layer group); :func:`through_writer` hands it to the hdf5 backend's writer
(:func:`slayerc.backends.hdf5.write_into`), so block exports and graph netlists are encoded by
one writer.  This module does not import h5py.
"""

from __future__ import annotations

import functools

import numpy as np
import torch

from slayerc.backends.hdf5 import FixedStr, Str, write_into
from slayerc.ir.target import LOIHI2

from ..synapse.layer import ExportError

MAX_DELAY = LOIHI2.max_delay
"""Largest axonal delay netx accepts on a dense layer (and the Delay modules' clamp)."""


class LayerTree:
    """A layer group being built in memory: the subset of h5py's ``Group`` API that the export
    helpers use (``create_dataset``, ``create_group``); ``data`` is the tree the writer takes."""

    def __init__(self):
        self.data: dict = {}

    def create_group(self, name: str) -> LayerTree:
        """A subgroup (``a/b`` paths make the parents)."""
        node = self
        for part in name.split("/"):
            node.data.setdefault(part, LayerTree().data)
            sub = LayerTree()
            sub.data = node.data[part]
            node = sub
        return node

    def create_dataset(self, name: str, shape=None, dtype=None, data=None) -> None:
        """Store ``data`` under ``name`` (``a/b`` makes group ``a``): an ``S10`` (1,) bytes
        dataset is the layer ``type``, a ``str`` a variable-length string."""
        parent, _, leaf = name.rpartition("/")
        node = self.create_group(parent) if parent else self
        if dtype == "S10":
            value = FixedStr(data[0].decode("ascii"))
        elif isinstance(data, str):
            value = Str(data)
        else:
            value = np.asarray(data)
        node.data[leaf] = value


def through_writer(export):
    """Decorate a block's ``export_hdf5(self, handle)``: the body fills a :class:`LayerTree`,
    which the hdf5 backend then writes into ``handle`` (an h5py group)."""
    @functools.wraps(export)
    def wrapper(self, handle):
        if isinstance(handle, LayerTree):  # called from another export: fill the same tree
            return export(self, handle)
        tree = LayerTree()
        export(self, tree)
        write_into(handle, tree.data)
    return wrapper


def h5_value(value):
    """Python/torch value → the numpy value whose HDF5 type lava-dl's exporter produces."""
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu().numpy()
    if isinstance(value, (bool, np.bool_)):
        return np.bool_(value)
    if isinstance(value, (int, np.integer)):
        return np.int64(value)
    if isinstance(value, (tuple, list, torch.Size)):
        return np.asarray(value)
    return value


def write(group, key: str, value) -> None:
    """Create dataset ``key`` holding ``value`` (see :func:`h5_value`)."""
    group.create_dataset(key, data=h5_value(value))


def write_type(group, name: str) -> None:
    """The layer ``type`` dataset: ``S10`` bytes, shape ``(1,)``."""
    group.create_dataset("type", (1,), "S10", [name.encode("ascii")])


def write_shape(group, shape) -> None:
    """The layer ``shape`` dataset: int64, ``(C,)`` or ``(C, H, W)``."""
    group.create_dataset("shape", data=np.asarray(tuple(int(s) for s in shape), dtype=np.int64))


def write_neuron(group, neuron, overrides: dict | None = None) -> None:
    """``neuron/<key>`` for every entry of ``neuron.device_params`` (plus ``overrides``)."""
    params = dict(neuron.device_params)
    params.update(overrides or {})
    for key, value in params.items():
        write(group, f"neuron/{key}", value)


def write_norm_bias(group, neuron) -> None:
    """``bias`` (and ``neuron/weight_exp``) when the neuron has a batch-norm module."""
    norm = getattr(neuron, "norm", None)
    if norm is None:
        return
    with torch.no_grad():
        bias = norm.bias
    group.create_dataset(
        "bias", data=np.asarray(h5_value(bias), dtype=np.float32).reshape(-1)
    )
    if hasattr(norm, "weight_exp"):
        write(group, "neuron/weight_exp", norm.weight_exp)


def write_delay(group, delay_module, channels: int, clamp: bool = True) -> None:
    """``delay``: ``floor(clamp(d, 0, 62))`` per output channel, float32; the module is unchanged.
    """
    if delay_module is None:
        return
    with torch.no_grad():
        d = delay_module.delay.detach().cpu().to(torch.float32).reshape(-1)
        if clamp:
            d = d.clamp(0, MAX_DELAY)
        if d.numel() == 1 and channels > 1:
            d = d.expand(channels)
        if d.numel() != channels:
            raise ExportError(
                f"axonal delay has {d.numel()} values; expected one per output channel "
                f"({channels})"
            )
        group.create_dataset("delay", data=torch.floor(d).numpy().astype(np.float32))


def write_weight(group, synapse, key: str = "weight", mask=None, dims: int = 2) -> None:
    """``weight`` (or ``weight/real`` + ``weight/imag`` for a complex synapse)."""
    if getattr(synapse, "complex", False):
        group.create_dataset(f"{key}/real", data=synapse.real.export_weight(mask, dims))
        group.create_dataset(f"{key}/imag", data=synapse.imag.export_weight(mask, dims))
    else:
        group.create_dataset(key, data=synapse.export_weight(mask, dims))


def write_conv_geometry(group, synapse, with_channels: bool = True) -> None:
    """``inChannels``/``outChannels``/``groups`` and the (H, W) geometry of a conv-like synapse."""
    if with_channels:
        write(group, "inChannels", synapse.in_channels)
        write(group, "outChannels", synapse.out_channels)
    for key, attr in (("kernelSize", "kernel_size"), ("stride", "stride"),
                      ("padding", "padding"), ("dilation", "dilation")):
        group.create_dataset(key, data=np.asarray(getattr(synapse, attr)[:-1], dtype=np.int64))
    if with_channels:
        write(group, "groups", synapse.groups)


def write_dense_features(group, synapse) -> None:
    """``inFeatures``/``outFeatures`` of a dense synapse (a frame kernel counts C·H·W inputs)."""
    real = synapse.real if getattr(synapse, "complex", False) else synapse
    kh, kw = real.kernel_size[:2]
    write(group, "inFeatures", real.in_channels * kh * kw)
    write(group, "outFeatures", real.out_channels)
