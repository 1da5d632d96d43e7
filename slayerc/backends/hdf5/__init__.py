"""netx hdf5 netlists (``.net``): read every netlist lava-dl writes, write them back exactly.

The format is ``spec/netx-hdf5.md``; ``docs/netlist-format.md`` describes this backend for users.

``read(path, input_shape=None) -> Graph`` gives a graph in slayer units (weight = int/64,
threshold = vThMant/64, decays = int/4096, bias = int/64) that reproduces **Lava's timing**:

* ``input`` with a neuron: ``%inp = io.input``, ``%layer0_transform = tensor.affine`` (only when
  the file has ``weight``/``bias``), ``%layer0`` = the neuron (SDNN: ``axon.delta``).  No shift:
  Lava feeds the input neuron's ``a_in`` directly.  ``input`` without a neuron:
  ``%layer0 = io.input`` (the name tells ``write`` to emit the input layer again).
* ``dense``/``conv``/``pool``/``convT``/``unpool`` K: ``%layerK_shift = axon.shift{steps=1}``
  (Lava's synapse holds one step) → ``%layerK_syn`` → optional ``%layerK_delay = axon.delay``
  (per output channel; netx's DelayDense: delay d arrives d+1 steps after the spike) → the
  neuron ``%layerK`` carrying the bias.  Per-input-feature dense delays (netx accepts them) go
  before the synapse.  A dense group without ``neuron`` (slayer ``Affine(dynamics=False)``) is
  ``%layerK = synapse.dense`` (slayer's meaning; netx would add a never-spiking default CUBA).
* ``dense_rec``: the forward synapse plus ``%layerK_recsyn = synapse.dense(%layerK_recshift)``
  with ``%layerK_recshift = axon.shift(%layerK)``, summed by ``%layerK_add``.
* ``flatten`` → ``tensor.flatten``; ``average`` → ``tensor.average``; SDNN ``sigma_output`` →
  ``dendrite.sigma``; SDNN hidden → ``neuron.sigma_delta``; LOIHI → ``neuron.cuba``.
* The last layer feeds ``%out = io.output``.  Every node has ``loc = Loc("layer/K", path)``.
* Facts: ``shapes``; ``quant-legal`` when every weight is in [-256, 255], every ``vThMant``
  fits 17 bits and every bias 13 bits (Loihi 2's fields); ``delays-legal``
  when every delay is at most 62.

``write(g, path, target="loihi2")`` writes the same keys and dtypes lava-dl writes (``type``
``S10`` (1,), int64 scalars and shapes, float32 integer-valued weights/bias/delay, vlen strings,
HDF5 bools) plus a root ``format_version`` dataset (netx reads only ``layer``).  It also accepts
slayer's block form (``synapse → neuron → axon.shift → [axon.delay]``), which equals Lava's
form when the layer has no bias, and SDNN layers without any shift (Lava then adds one step of
latency per synapse, as with lava-dl's own SDNN exports).  A slayer ``Input`` block's trailing
shift is dropped: Lava's output is then one step earlier, as for lava-dl (reference case
``cuba_input``, shift -1).  ``target="slayerc"`` writes every layer and neuron type;
``"loihi2"`` only what netx 0.6 loads, with every weight, ``vThMant`` and bias inside
the field netx puts it in (a graph that was not legalized, e.g. one read from a netlist with
``vThMant = 2**31``, is refused with the value and the pass to run, never clipped silently).
A real ``dense``/``dense_rec``/``conv`` synapse marked ``sparse = true`` is stored by
``"slayerc"`` as ``weight_csr/{data (float32), indices, indptr,
shape (int64)}`` (CSR of the weight as ``[shape[0], rest]``) instead of ``weight``, and read
back with ``sparse = true``; ``"loihi2"`` writes it exactly as a dense layer (netx loads it;
``sparse_fc_layer=True`` in netx is the user's choice).  Other marked synapses are written dense.

Deviations from the agreed IR conventions: none.  Not kept in the IR (so not written back):
the legacy ``simulation`` group and LOIHI-only keys (written as CUBA), ``refDelay`` values
other than 1, ``neuron/weight_exp`` (netx ignores it), the ``activation``/``vThMant`` of SDNN
input and ``sigma_output`` layers (netx ignores them; written from the nearest sigma-delta
layer), an explicit input-layer ``bias`` of 0, and the legacy flatten ``shape`` (written
``[N, 1, 1]``).
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from slayerc.backends.hdf5.h5io import FixedStr, Str, dump_tree, load_tree, write_into
from slayerc.backends.hdf5.reader import tree_to_graph
from slayerc.backends.hdf5.schema import FORMAT_VERSION
from slayerc.backends.hdf5.writer import TARGETS, graph_to_tree
from slayerc.errors import BackendError
from slayerc.ir.core import Graph
from slayerc.ir.fileio import paused_gc

__all__ = ["FORMAT_VERSION", "TARGETS", "FixedStr", "Str", "read", "write", "write_into"]


def read(path: str | os.PathLike, input_shape: Sequence[int] | None = None) -> Graph:
    """Read a netx netlist into an IR graph (see the module docstring for its form).

    ``input_shape`` (slayer order ``(C, H, W)``) is needed only when the first layer is a conv
    or pool layer and there is no input layer.  Every problem with the file raises
    :class:`BackendError` naming the file, the layer and the key.
    """
    if input_shape is not None:
        try:
            input_shape = tuple(int(d) for d in input_shape)
        except (TypeError, ValueError) as e:
            raise BackendError(f"{path}: input_shape must be a sequence of ints, got "
                               f"{input_shape!r}") from e
        if not input_shape or min(input_shape) < 1:
            raise BackendError(f"{path}: input_shape must be positive sizes, got "
                               f"{list(input_shape)}")
    with paused_gc():
        return tree_to_graph(load_tree(path), str(path), input_shape)


def write(g: Graph, path: str | os.PathLike, target: str = "loihi2") -> None:
    """Write ``g`` as a netx netlist for ``target`` (``loihi2`` or ``slayerc``), atomically."""
    with paused_gc():
        tree = graph_to_tree(g, target)
    try:
        with paused_gc():
            dump_tree(path, tree)
    except OSError as e:
        raise BackendError(f"{path}: cannot write: {e}") from e
