"""The driver: flows that the CLI and the Python API share, above every layer of slayerc.

The runtime does not load files and backends do not simulate; a flow that does both lives here.

``run_netlist``: run a netx netlist file through the fixed-point simulator, fed as
``netx_run.py`` feeds Lava.

Netlists whose layer 0 is an ``input`` layer with a neuron take the data through that neuron
(after the input transform ``x·weight + bias``, 64 and 0 by default); all others take it through
the first synapse.  Both routes are explicit in the graph the hdf5 reader builds, so this module
only reads the file, picks the input shape and renames the recorded layers.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from slayerc.backends import files
from slayerc.errors import SlayerError
from slayerc.ir.core import Graph
from slayerc.ir.target import Target
from slayerc.runtime.fixed.simulator import layer_nodes, simulate


def load_netlist(path: str | os.PathLike, input_shape: tuple[int, ...] | None = None) -> Graph:
    """Read a netlist with the hdf5 backend."""
    options = {"input_shape": tuple(input_shape)} if input_shape else {}
    return files.load(path, **options)


def _load_for(path: str | os.PathLike, x: Any, input_shape: tuple[int, ...] | None) -> Graph:
    """Read the netlist; a conv netlist without input layer gets its input shape from ``x``."""
    if input_shape:
        return load_netlist(path, input_shape)
    try:
        return load_netlist(path)
    except SlayerError:
        guess = _shape_from(x)
        if guess is None:
            raise
        return load_netlist(path, guess)


def _shape_from(x: Any) -> tuple[int, ...] | None:
    """(C, H, W) of a conv input ``[C,H,W,T]`` / ``[N,C,H,W,T]``; None for dense inputs."""
    ndim = np.ndim(x)
    return tuple(int(d) for d in np.shape(x)[-4:-1]) if ndim >= 4 else None


def run_netlist(path: str | os.PathLike, x: Any, steps: int | None = None,
                all_layers: bool = False, input_shape: tuple[int, ...] | None = None,
                target: str | Target | None = "loihi2"
                ) -> np.ndarray | tuple[np.ndarray, dict[str, np.ndarray]]:
    """Simulate the netlist at ``path`` on ``x`` (slayer layout, optionally batched).

    Returns the int32 output ``[N?, out..., T]``; with ``all_layers`` also a dict ``layerK`` →
    output of the K-th netx layer (flatten not counted), as ``netx_run.py --all-layers`` records.
    ``input_shape`` (C, H, W) is needed only for a conv netlist without input layer, and is taken
    from ``x`` when not given.  Graded messages must fit ``target``'s message bits (see
    :func:`~slayerc.runtime.fixed.simulator.simulate`): ``"loihi2"`` (16 bits, what netx
    configures), ``"slayerc"`` (24) or None (no check).
    """
    g = _load_for(path, x, input_shape)
    layers = layer_nodes(g)
    res = simulate(g, x, steps=steps, record=layers if all_layers else None, target=target)
    out = res[g.outputs[0].name]
    if not all_layers:
        return out
    return out, {f"layer{k}": res[name] for k, name in enumerate(layers)}
