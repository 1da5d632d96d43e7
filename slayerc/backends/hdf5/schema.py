"""The netx hdf5 vocabulary as data: layer kinds, neuron types, their keys and units.

One table drives both directions (STYLE.md §22): the reader turns each listed key into the IR
attribute it names (dividing by the unit), the writer turns the attribute back (multiplying).
Nothing here touches h5py; values are numpy arrays as the loader returns them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from slayerc.errors import BackendError
from slayerc.ir import ops
from slayerc.ir.target import LOIHI2

#: Newest version of the files slayerc reads and writes (root dataset ``format_version``; netx
#: never reads it).  1: every weight is a ``weight`` dataset, as lava-dl writes.  2: some layer
#: stores its weight as ``weight_csr`` (target ``slayerc``), which a version-1 reader cannot read.
#: A file gets the lowest version that describes it (:func:`version_of`), so loihi2 files and
#: slayerc files without CSR stay version 1, readable by older slayerc.
FORMAT_VERSION = 2
#: The first version with ``weight_csr`` layers.
CSR_VERSION = 2
#: Units (file integer = IR value x unit): decays are 12-bit fractions, weights/thresholds x64.
DECAY = 4096
SCALE = "scale"  # the neuron's ``scale`` attribute (64 for every netlist slayerc reads)
INT_LIMIT = 1 << 31  # largest magnitude accepted for a neuron integer


@dataclass(frozen=True)
class Key:
    """One ``neuron/<h5>`` dataset: the IR attribute it maps to and how.

    ``kind`` is ``int`` (int64 scalar or per-channel array, IR value = file / unit), ``bool``,
    ``str`` (variable-length string) or ``const`` (written as ``default``, not kept in the IR).
    ``required`` keys must be present when reading; optional ones fall back to ``default``.
    """

    h5: str
    attr: str | None
    kind: str = "int"
    unit: Any = DECAY
    lo: float = 0
    hi: float = DECAY
    required: bool = True
    default: Any = None


_I = Key("iDecay", "current_decay")
_V = Key("vDecay", "voltage_decay")
_TH = Key("vThMant", "threshold", unit=SCALE, hi=INT_LIMIT)
_REFDELAY = Key("refDelay", None, "const", lo=-INT_LIMIT, hi=INT_LIMIT, required=False,
                default=1)
_GRADED = Key("gradedSpike", "graded", "bool", required=False, default=False)
_THDECAY = Key("thDecay", "threshold_decay")
_REFDECAY = Key("refDecay", "refractory_decay")
_THSTEP = Key("vThStep", "threshold_step", unit=SCALE, hi=INT_LIMIT)
_SIN = Key("sinDecay", "sin_decay", lo=-DECAY)
_COS = Key("cosDecay", "cos_decay", lo=-DECAY)
_ACT = Key("activation", "activation", "str", required=False, default="relu")
#: Legacy LOIHI keys netx never reads; accepted and dropped.
_LEGACY = tuple(Key(k, None, "const", lo=-INT_LIMIT, hi=INT_LIMIT, required=False)
                for k in ("theta", "tauRho", "scaleRho", "wgtExp"))


@dataclass(frozen=True)
class NeuronType:
    """A ``neuron/type`` value: the IR op it reads as and the keys lava-dl writes for it."""

    name: str
    op: type[ops.Op]
    keys: tuple[Key, ...]
    loihi2: bool  # netx 0.6 loads it with its real dynamics


NEURON_TYPES: dict[str, NeuronType] = {t.name: t for t in (
    NeuronType("CUBA", ops.Cuba, (_I, _V, _TH, _REFDELAY, _GRADED), True),
    NeuronType("LOIHI", ops.Cuba, (_I, _V, _TH, _REFDELAY, *_LEGACY), True),
    NeuronType("ALIF", ops.Alif, (_I, _V, _THDECAY, _REFDECAY, _TH, _THSTEP, _REFDELAY,
                                  _GRADED), False),
    NeuronType("RF_PHASE", ops.RF, (_SIN, _COS, _TH, _GRADED), True),
    NeuronType("RF_IZHIKEVICH", ops.RFIz, (_SIN, _COS, _TH, _GRADED), True),
    NeuronType("ADRF_PHASE", ops.Adrf, (_SIN, _COS, _THDECAY, _REFDECAY, _TH, _THSTEP,
                                        _GRADED), False),
    NeuronType("ADRF_IZHIKEVICH", ops.AdrfIz, (_SIN, _COS, _THDECAY, _REFDECAY, _TH, _THSTEP,
                                               _GRADED), False),
    NeuronType("SDNN", ops.SigmaDelta, (_ACT, _TH), True),
)}
#: The type each IR neuron op is written as (LOIHI is read-only: it is written as CUBA).
TYPE_OF_OP = {t.op.OP: t for t in reversed(NEURON_TYPES.values())}
#: SDNN as an input layer (a delta encoder) and as ``sigma_output`` (a sigma decoder).
SDNN_INPUT_KEYS = (_ACT, _TH)
SDNN_OUTPUT_KEYS = (_ACT, _TH, Key("sigma_output", None, "const", default=True))


@dataclass(frozen=True)
class LayerKind:
    """A synaptic hdf5 layer type (one with a weight and a neuron)."""

    name: str
    op: type[ops.Op]
    counts: tuple[str, str] | None  # (in, out) count keys lava-dl writes, e.g. inFeatures
    geometry: bool  # kernelSize, stride, padding, dilation
    groups: bool
    pool: bool  # one shared [1, 1, kH, kW] kernel (kernel attribute from kernelSize)


LAYER_KINDS: dict[str, LayerKind] = {k.name: k for k in (
    LayerKind("dense", ops.Dense, ("inFeatures", "outFeatures"), False, False, False),
    LayerKind("dense_rec", ops.Dense, ("inFeatures", "outFeatures"), False, False, False),
    LayerKind("conv", ops.Conv, ("inChannels", "outChannels"), True, True, False),
    LayerKind("convT", ops.ConvTranspose, ("inChannels", "outChannels"), True, True, False),
    LayerKind("pool", ops.Pool, None, True, False, True),
    LayerKind("unpool", ops.Unpool, None, True, False, True),
)}
#: The layer kind each synapse op is written as (``dense_rec`` is chosen by the writer).
KIND_OF_OP = {k.op.OP: k for k in LAYER_KINDS.values() if k.name != "dense_rec"}
#: Layer types and neuron types netx 0.6 can load (target ``loihi2``).
LOIHI2_LAYERS: frozenset[str] = LOIHI2.layers or frozenset()
#: netx clips longer dense delays; slayer's Delay modules clamp to this too.
MAX_DELAY: int = LOIHI2.max_delay or 0
GEOMETRY = ("stride", "padding", "dilation")


def counts_of(kind: LayerKind, wshape: tuple[int, ...], groups: int) -> tuple[int, int]:
    """(in, out) counts lava-dl writes for a weight of ``wshape``."""
    if kind.op is ops.ConvTranspose:
        return wshape[0], wshape[1] * groups
    return wshape[1] * (groups if kind.groups else 1), wshape[0]


# ------------------------------------------------------------------------ value checks (read)


class Where:
    """Names the file and the layer for diagnostics: ``f.net: layer/3: key 'weight': ...``."""

    def __init__(self, path: str, layer: str | None = None):
        self.path, self.layer = path, layer

    def at(self, layer: str) -> Where:
        """The same file, another layer."""
        return Where(self.path, layer)

    def error(self, key: str | None, message: str) -> BackendError:
        """A :class:`BackendError` for ``key`` of this layer."""
        parts = [self.path]
        if self.layer is not None:
            parts.append(self.layer)
        if key is not None:
            parts.append(f"key '{key}'")
        return BackendError(": ".join(parts) + ": " + message)


def describe_value(v: Any) -> str:
    """``float32[3, 4]`` or ``group`` for messages."""
    if isinstance(v, dict):
        return "a group"
    a = np.asarray(v)
    return f"{a.dtype}{list(a.shape)}"


def dataset(tree: dict, key: str, where: Where, required: bool = True,
            label: str | None = None) -> np.ndarray | None:
    """The dataset ``key`` of a group (``label`` names it), or None when optional and absent."""
    label = label or key
    if key not in tree:
        if required:
            raise where.error(label, "missing")
        return None
    v = tree[key]
    if isinstance(v, dict):
        raise where.error(label, "expected a dataset, got a group")
    return v


def as_int(v: np.ndarray, key: str, where: Where, shapes: tuple[tuple[int, ...], ...],
           lo: float = -INT_LIMIT, hi: float = INT_LIMIT) -> np.ndarray:
    """An integer array (integer dtype, or floats holding integers) of one of ``shapes``."""
    if (v.dtype.kind in "iu" and v.size == 1 and (not shapes or v.shape in shapes)
            and lo <= v.item() <= hi):
        return v.astype(np.int64)  # the common case (a neuron key), without numpy reductions
    if v.dtype.kind not in "iuf" or (shapes and v.shape not in shapes):
        want = " or ".join("scalar" if s == () else str(list(s)) for s in shapes)
        raise where.error(key, f"expected integers of shape {want}, got {describe_value(v)}")
    if v.dtype.kind == "f" and not (np.all(np.isfinite(v)) and np.all(v == np.floor(v))):
        raise where.error(key, "expected whole numbers, got fractional or non-finite values")
    if v.size and (float(v.min()) < lo or float(v.max()) > hi):
        raise where.error(key, f"values {float(v.min()):g}..{float(v.max()):g} are outside "
                          f"[{lo:g}, {hi:g}]")
    return v.astype(np.int64)


def as_weight(v: np.ndarray, key: str, where: Where, ndim: int) -> np.ndarray:
    """A finite, integer-valued float array of rank ``ndim`` (netx truncates fractions)."""
    if v.dtype.kind not in "iuf" or v.ndim != ndim or 0 in v.shape:
        raise where.error(key, f"expected a {ndim}-d array of numbers, got {describe_value(v)}")
    a = v.astype(np.float64)
    if not np.all(np.isfinite(a)):
        raise where.error(key, "holds inf or nan")
    if not np.all(a == np.floor(a)):
        raise where.error(key, "holds fractional values (netx would truncate them; lava-dl "
                          "writes integers)")
    if np.abs(a).max() >= 1 << 24:
        raise where.error(key, f"value {np.abs(a).max():g} does not fit 24 bits")
    return a


def as_str(v: np.ndarray, key: str, where: Where) -> str:
    """A string stored as a (variable- or fixed-length) scalar or one-element array."""
    if v.dtype.kind not in "SOU" or v.size != 1 or v.ndim > 1:
        raise where.error(key, f"expected a string, got {describe_value(v)}")
    s = v.reshape(-1)[0]
    if isinstance(s, bytes):
        try:
            return s.decode("ascii")
        except UnicodeDecodeError:
            raise where.error(key, "is not ascii text") from None
    if not isinstance(s, str):
        raise where.error(key, f"expected a string, got {type(s).__name__}")
    return s


def as_bool(v: np.ndarray, key: str, where: Where) -> bool:
    """An HDF5 bool (or a 0/1 integer) scalar."""
    if (v.dtype.kind not in "biu" or v.size != 1 or v.ndim > 1
            or int(v.reshape(-1)[0]) not in (0, 1)):
        raise where.error(key, f"expected a bool, got {describe_value(v)}")
    return bool(v.reshape(-1)[0])


# ------------------------------------------------------------------- sparse weights (CSR)

#: Layer kinds whose ``weight`` target ``slayerc`` may store as ``weight_csr`` (real weights
#: of synapses marked ``sparse``); target ``loihi2`` always writes ``weight`` (netx reads it).
CSR_KINDS = frozenset({"dense", "dense_rec", "conv"})
CSR = "weight_csr"
CSR_LIMIT = 1 << 28  # most weight elements a CSR group may expand to


def version_of(layers: dict[str, Any]) -> int:
    """The ``format_version`` a file with these layer groups needs: 2 with CSR weights, else 1."""
    return CSR_VERSION if any(CSR in grp for grp in layers.values()) else 1


def to_csr(w: np.ndarray) -> dict[str, np.ndarray]:
    """The ``weight_csr`` group of a weight: CSR of ``w`` as ``[shape[0], rest]`` + its shape."""
    flat = w.reshape(w.shape[0], -1)
    rows, cols = np.nonzero(flat)
    return {"data": flat[rows, cols].astype(np.float32), "indices": cols.astype(np.int64),
            "indptr": np.concatenate([[0], np.cumsum(np.bincount(rows, minlength=flat.shape[0]))
                                      ]).astype(np.int64),
            "shape": np.asarray(w.shape, np.int64)}


def from_csr(grp: Any, where: Where, ndim: int) -> np.ndarray:
    """The dense weight (float64, file units) of a ``weight_csr`` group, validated."""
    if not isinstance(grp, dict):
        raise where.error(CSR, "expected a group")

    def get(key: str) -> np.ndarray:
        return dataset(grp, key, where, label=f"{CSR}/{key}")

    shape = tuple(int(d) for d in as_int(get("shape"), f"{CSR}/shape", where, ((ndim,),), 1,
                                         1 << 24))
    if int(np.prod(shape, dtype=np.float64)) > CSR_LIMIT:
        raise where.error(f"{CSR}/shape", f"{list(shape)} is too large")
    rows, cols = shape[0], int(np.prod(shape[1:], dtype=np.int64))
    data = get("data")
    if data.dtype.kind not in "iuf" or data.ndim != 1:
        raise where.error(f"{CSR}/data", f"expected a 1-d array of numbers, got "
                          f"{describe_value(data)}")
    nnz = data.shape[0]
    if nnz:
        data = as_weight(data, f"{CSR}/data", where, 1)
    indptr = as_int(get("indptr"), f"{CSR}/indptr", where, ((rows + 1,),), 0, nnz)
    if indptr[0] != 0 or indptr[-1] != nnz or np.any(np.diff(indptr) < 0):
        raise where.error(f"{CSR}/indptr", f"must rise from 0 to the {nnz} stored values")
    indices = as_int(get("indices"), f"{CSR}/indices", where, ((nnz,),), 0, cols - 1)
    row_of = np.repeat(np.arange(rows), np.diff(indptr))
    if nnz > 1 and np.any((np.diff(indices) <= 0) & (np.diff(row_of) == 0)):
        raise where.error(f"{CSR}/indices", "must increase strictly within each row")
    dense = np.zeros((rows, cols), np.float64)
    dense[row_of, indices] = data
    return dense.reshape(shape)
