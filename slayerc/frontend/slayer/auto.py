"""Rebuild a slayer network from a netx hdf5 netlist (lava-dl ``slayer.auto``).

``SequentialNetwork("net.net")`` reads the netlist (``spec/netx-hdf5.md``) and builds one slayer
block per ``layer/K`` group, in order, with the netlist's weights, neuron parameters, delays and
biases, so a deployed network can be evaluated or fine-tuned in PyTorch.  It inverts the blocks'
``export_hdf5``: for a netlist written by slayer blocks that used their family's default
``delay_shift``, the rebuilt blocks export the same datasets and compute the same output.

Layer mapping (``fam`` = the block module of the layer's neuron type: ``CUBA``/``LOIHI`` → cuba,
``ALIF`` → alif, ``RF_PHASE`` → rf, ``RF_IZHIKEVICH`` → rf_iz, ``ADRF_PHASE`` → adrf,
``ADRF_IZHIKEVICH`` → adrf_iz, ``SDNN`` → sigma_delta)::

    input                          fam.Input (weight/bias → the block's weight/bias); without a
                                   neuron, the Input of the file's first neuron family (else cuba)
    flatten, average               Flatten, Average
    dense                          fam.Dense; fam.Affine when vThMant = 2^18−1 (slayer's marker)
                                   or without neuron (cuba.Affine(dynamics=False));
                                   sigma_delta.Output when neuron/sigma_output is set
    dense_rec                      fam.Recurrent (weight → input_synapse, weight_rec → recurrent)
    conv, convT, pool, unpool      fam.Conv, ConvT, Pool, Unpool
    weight, weight/real+imag       synapse weights (file / 64); weight_csr is read as dense
    delay (one per channel)        the block's axonal Delay
    bias                           neuron norm MeanOnlyBatchNorm with running_mean = −bias/64
                                   (the only slayer construct whose export writes ``bias``);
                                   with neuron/weight_exp, WgtScaleBatchNorm
    neuron/*                       the neuron module's ``neuron_params`` (decays and SDNN
                                   thresholds per channel when the file has arrays), then the
                                   exact file integers are set as the decay parameters

Deviations from lava-dl's ``SequentialNetwork`` (which builds CUBA dense layers only): every
layer type and neuron type above is built; ``input_shape`` is a keyword-only addition (needed
only to check a netlist whose first layer is not conv, dense or input); ``reduction`` reduces
over all but the first two dimensions (lava-dl reshapes to a hard-coded 11 classes);
``count_log`` returns ``(output, counts)`` (lava-dl's forward fails with it);
``weight_norm=True`` enables weight norm on every learnable synapse; ``delay_shift`` (keyword)
overrides the family default, which the netlist does not record.  Malformed files raise
:class:`~slayerc.errors.BackendError` and valid netlists the blocks cannot express raise
:class:`AutoError`, both naming the file, the layer and the key.
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from slayerc.errors import AutoError, FrontendError  # noqa: F401

from . import block as _block
from . import neuron as _neuron
from .block._export import MAX_DELAY
from .block._recurrent import AFFINE_VTH_MANT

__all__ = ["AutoError", "SequentialNetwork", "get_classes", "get_neuron_params"]

#: netx neuron ``type`` → block/neuron module name.
FAMILIES = {
    "CUBA": "cuba", "LOIHI": "cuba", "ALIF": "alif", "RF_PHASE": "rf", "RF_IZHIKEVICH": "rf_iz",
    "ADRF_PHASE": "adrf", "ADRF_IZHIKEVICH": "adrf_iz", "SDNN": "sigma_delta",
}
#: netx decay key → neuron parameter (stored ×4096, so the file integer is the parameter).
DECAYS = {
    "iDecay": "current_decay", "vDecay": "voltage_decay", "thDecay": "threshold_decay",
    "refDecay": "refractory_decay", "sinDecay": "sin_decay", "cosDecay": "cos_decay",
}
SCALE = 64
"""Weight scale of every netlist (slayer's default neuron ``scale``)."""
REDUCTIONS = (None, "sum", "mean")


def identity(x):
    """The ``identity`` SDNN activation."""
    return x


#: SDNN ``activation`` name → function whose ``__name__`` the export writes back.
ACTIVATIONS = {"relu": torch.nn.functional.relu, "identity": identity,
               "sigmoid": torch.sigmoid, "tanh": torch.tanh}


def get_classes(neuron_type=None):
    """``(neuron module, block module)`` of a netx neuron ``type`` (None means CUBA), e.g.
    ``get_classes("CUBA") == (slayer.neuron.cuba, slayer.block.cuba)``.

    lava-dl knows CUBA/LOIHI only; here every type of :data:`FAMILIES` maps to its family.
    """
    if isinstance(neuron_type, bytes):
        neuron_type = neuron_type.decode("ascii")
    family = FAMILIES.get("CUBA" if neuron_type is None else neuron_type)
    if family is None:
        raise AutoError(f"neuron type {neuron_type!r} is not one of {sorted(FAMILIES)}")
    return getattr(_neuron, family), getattr(_block, family)


def get_neuron_params(neuron_handle, neuron_class):
    """Neuron constructor parameters from a netx ``neuron`` group (an h5py group or a dict of
    values): every dataset is read and passed to ``neuron_class.neuron_params`` (the module of
    the family, e.g. ``slayer.neuron.cuba``)."""
    values = {}
    for key in neuron_handle.keys():
        value = neuron_handle[key]
        readable = hasattr(value, "shape") and not isinstance(value, np.generic)
        values[key] = value[()] if readable else value
    return neuron_class.neuron_params(values)


@dataclass
class _Layer:
    """One ``layer/K`` group of an already validated netlist."""

    path: str
    k: str
    grp: dict

    def fail(self, key: str | None, message: str) -> AutoError:
        """An :class:`AutoError` naming the file, this layer and ``key``."""
        where = f"{self.path}: layer/{self.k}" + (f": key '{key}'" if key else "")
        return AutoError(f"{where}: {message}")

    def get(self, key: str, default=None):
        """The dataset or group at ``key`` (``a/b`` descends), or ``default``."""
        node = self.grp
        for part in key.split("/"):
            if not isinstance(node, dict) or part not in node:
                return default
            node = node[part]
        return node

    def type(self, key: str = "type") -> str:
        """A string dataset (the layer ``type`` by default) as ``str``."""
        v = np.asarray(self.get(key)).reshape(-1)[0]
        return v.decode("ascii") if isinstance(v, bytes) else str(v)

    def ints(self, key: str) -> tuple[int, ...]:
        """An integer dataset as a tuple."""
        return tuple(int(d) for d in np.asarray(self.get(key)).reshape(-1))


@dataclass
class _NeuronSpec:
    """How to build a layer's neuron: constructor params, then exact values to set."""

    family: str
    params: dict
    exact: dict[str, np.ndarray] = field(default_factory=dict)
    threshold: np.ndarray | None = None  # per-channel SDNN thresholds (slayer units)
    sigma_output: bool = False
    affine: bool = False


# ------------------------------------------------------------------------------ file reading


def _load(path: str, input_shape: tuple[int, ...] | None) -> dict:
    """The file as a validated dict tree (every malformed file raises a BackendError)."""
    from slayerc.backends.hdf5.h5io import load_tree
    from slayerc.backends.hdf5.reader import tree_to_graph

    tree = load_tree(path)
    tree_to_graph(tree, path, input_shape or _conv_input_shape(tree))
    return tree


def _conv_input_shape(tree: dict) -> tuple[int, ...] | None:
    """The smallest input a first ``conv`` layer maps onto its ``shape`` (only for checking the
    file: the blocks take any input that gives that shape); None when not applicable."""
    try:
        grp = tree["layer"]["0"]
        if np.asarray(grp["type"]).reshape(-1)[0] != b"conv":
            return None
        out = [int(d) for d in np.asarray(grp["shape"]).reshape(-1)]
        k, s, p, d = (np.asarray(grp[key]).astype(int).reshape(2) for key in
                      ("kernelSize", "stride", "padding", "dilation"))
        cin = int(np.asarray(grp["weight"]).shape[1]) * int(np.asarray(grp["groups"]))
        hw = [max(1, (out[i + 1] - 1) * s[i] - 2 * p[i] + d[i] * (k[i] - 1) + 1) for i in (0, 1)]
        return (cin, *hw)
    except (KeyError, TypeError, ValueError, IndexError, AttributeError):
        return None  # the reader reports what is wrong with the layer


def _layers(path: str, tree: dict) -> list[_Layer]:
    return [_Layer(path, str(i), tree["layer"][str(i)]) for i in range(len(tree["layer"]))]


def _first_family(layers: list[_Layer]) -> str:
    for layer in layers:
        if isinstance(layer.get("neuron"), dict):
            return FAMILIES[layer.type("neuron/type")]
    return "cuba"


# ------------------------------------------------------------------------------- neurons


def _device_params(layer: _Layer) -> dict:
    """``neuron/*`` numbers: Python numbers when scalar, arrays when per channel."""
    out = {}
    for key, v in layer.grp["neuron"].items():
        a = np.asarray(v)
        if a.dtype.kind in "biuf":
            out[key] = a.reshape(-1)[0].item() if a.size == 1 else a.astype(np.float64)
    return out


def _per_channel(params: dict) -> dict:
    """Arrays become the ``(min, max)`` range of a per-channel (``shared_param=False``) neuron."""
    arrays = [k for k, v in params.items() if isinstance(v, np.ndarray)]
    out = {k: (float(v.min()), float(v.max())) if k in arrays else v for k, v in params.items()}
    if arrays:
        out["shared_param"] = False
    return out


def _neuron_spec(layer: _Layer, persistent: bool, norm: bool = True) -> _NeuronSpec:
    """The layer's neuron; ``norm=False`` for an input layer, whose ``bias`` is the block's own.
    """
    family = FAMILIES[layer.type("neuron/type")]
    dp = _device_params(layer)
    if dp.get("refDelay", 1) != 1:
        raise layer.fail("neuron/refDelay", f"is {dp['refDelay']}; slayer neurons have a "
                         "refractory delay of 1")
    params = dict(getattr(_neuron, family).neuron_params(dp))
    threshold = None
    if family == "sigma_delta":
        has_act = layer.get("neuron/activation") is not None
        params["activation"] = ACTIVATIONS[layer.type("neuron/activation") if has_act else "relu"]
        if isinstance(params["threshold"], np.ndarray):  # per channel: set after construction
            threshold = params["threshold"]
            params.update(threshold=float(threshold.min()), shared_param=False)
    else:
        _check_scalar(layer, dp, ("vThMant", "vThStep"))
        params["graded_spike"] = bool(dp.get("gradedSpike", False))
    if family.startswith("adrf"):
        params.update(threshold_step=dp["vThStep"] / SCALE, threshold_decay=dp["thDecay"] / 4096,
                      refractory_decay=dp["refDecay"] / 4096)
    params = _per_channel(params)
    params["persistent_state"] = persistent
    params.update(_norm(layer, family) if norm else {})
    exact = {DECAYS[k]: np.asarray(v, np.float32).reshape(-1) for k, v in dp.items()
             if k in DECAYS}
    return _NeuronSpec(family, params, exact, threshold,
                       sigma_output="sigma_output" in layer.grp["neuron"],
                       affine=family != "sigma_delta" and dp.get("vThMant") == AFFINE_VTH_MANT)


def _check_scalar(layer: _Layer, dp: dict, keys: Sequence[str]) -> None:
    for key in keys:
        if isinstance(dp.get(key), np.ndarray):
            raise layer.fail(f"neuron/{key}", "holds one value per channel; only sigma-delta "
                             "thresholds can differ between channels in slayer")


def _norm(layer: _Layer, family: str) -> dict:
    """``norm`` of the neuron params when the layer has a ``bias`` (or ``neuron/weight_exp``)."""
    if layer.get("bias") is None and layer.get("neuron/weight_exp") is None:
        return {}
    if family not in ("cuba", "alif", "sigma_delta"):
        raise layer.fail("bias", f"a {family} neuron has no normalization, so slayer has no "
                         "bias for it")
    if layer.get("neuron/weight_exp") is not None:
        return {"norm": _neuron.norm.WgtScaleBatchNorm}
    return {"norm": _neuron.norm.MeanOnlyBatchNorm}


def _set_norm(layer: _Layer, neuron, channels: int) -> None:
    """Running statistics whose export gives the layer's ``bias`` and ``neuron/weight_exp``."""
    norm = getattr(neuron, "norm", None)
    if norm is None:
        return
    bias = layer.get("bias")
    if bias is not None:
        b = np.asarray(bias, np.float64).reshape(-1)
        if b.size not in (1, channels):
            raise layer.fail("bias", f"has {b.size} values; slayer's norm bias has one per "
                             f"channel ({channels})")
        if np.any(b % 2) or b.min() < -254 or b.max() > 256:
            raise layer.fail("bias", "holds values that are not even integers in [-254, 256]; "
                             "slayer's norm bias (−quantize_8bit(mean)·64) cannot take them")
        norm.running_mean = torch.tensor(-b / SCALE, dtype=torch.float32).expand(channels).clone()
    exp = layer.get("neuron/weight_exp")
    if exp is not None:
        e = np.asarray(exp, np.float64).reshape(-1)
        # 0.75·4^e: ceil(log2(sqrt(var + eps))) = e exactly, away from the ceil's edges
        norm.running_var = torch.tensor(0.75 * 4.0 ** e, dtype=torch.float32)


def _finish_neuron(layer: _Layer, spec: _NeuronSpec, neuron, shape) -> None:
    """Fix the shape, then set the exact file values (decays, SDNN thresholds, norm)."""
    if shape is not None:
        neuron.set_shape(shape)
    neuron.keep_values()
    for name, value in spec.exact.items():
        param = getattr(neuron, name)
        t = torch.tensor(value, dtype=param.dtype, device=param.device)
        # a scalar stays one value (the file's form) even in a per-channel neuron
        param.data = t.reshape(param.shape) if t.numel() == param.numel() else t
    if spec.threshold is not None:
        neuron.delta.threshold.data = torch.tensor(spec.threshold, dtype=torch.float32)
    _set_norm(layer, neuron, shape[0] if shape is not None else 1)


# ------------------------------------------------------------------------------ synapses


def _weight(layer: _Layer, key: str = "weight") -> tuple[np.ndarray, np.ndarray | None]:
    """(real, imag or None) weights in file units."""
    if key == "weight" and layer.get("weight_csr") is not None:
        from slayerc.backends.hdf5.schema import Where, from_csr

        ndim = 2 if layer.type() in ("dense", "dense_rec") else 4
        return from_csr(layer.grp["weight_csr"], Where(layer.path, f"layer/{layer.k}"), ndim), None
    v = layer.get(key)
    if isinstance(v, dict):
        return np.asarray(v["real"], np.float64), np.asarray(v["imag"], np.float64)
    return np.asarray(v, np.float64), None


def _set_weight(layer: _Layer, synapse, key: str = "weight") -> None:
    real, imag = _weight(layer, key)
    parts = [(synapse, real)] if imag is None else [(synapse.real, real), (synapse.imag, imag)]
    for syn, w in parts:
        if np.any(w % 2) or w.min() < -256 or w.max() > 254:
            warnings.warn(f"{layer.path}: layer/{layer.k}: key '{key}': holds values off "
                          "slayer's 8-bit grid (even integers in [-256, 254]); the blocks' "
                          "quantize_8bit changes them", stacklevel=2)
        syn.weight.data = torch.tensor(w / SCALE, dtype=torch.float32).reshape(syn.weight.shape)


def _delay(layer: _Layer, channels: int) -> np.ndarray | None:
    v = layer.get("delay")
    if v is None:
        return None
    d = np.asarray(v, np.float64).reshape(-1)
    d = np.full(channels, d[0]) if d.size == 1 else d
    if d.shape != (channels,):
        raise layer.fail("delay", f"has {d.size} values, one per input; slayer's axonal delay "
                         f"has one per output channel ({channels})")
    if d.max() > MAX_DELAY:
        raise layer.fail("delay", f"{d.max():g} exceeds slayer's largest axonal delay "
                         f"{MAX_DELAY}")
    return d


# -------------------------------------------------------------------------------- builder


class _Builder:
    """Turns validated layer groups into blocks: one method per netx layer ``type``."""

    def __init__(self, layers: list[_Layer], persistent: bool, count_log: bool,
                 delay_shift: bool | None):
        self.persistent, self.count_log = persistent, count_log
        self.delay_shift = delay_shift
        self.default_family = _first_family(layers)

    def kw(self) -> dict:
        """``count_log`` and, when given, ``delay_shift`` for a block constructor."""
        kw = {"count_log": self.count_log}
        if self.delay_shift is not None:
            kw["delay_shift"] = self.delay_shift
        return kw

    def build(self, layer: _Layer) -> torch.nn.Module:
        """The block of one layer group (its ``type`` is known to the reader)."""
        return getattr(self, "_" + layer.type())(layer)

    def _input(self, layer: _Layer) -> torch.nn.Module:
        shape = layer.ints("shape")
        if layer.get("neuron") is None:
            blk = getattr(_block, self.default_family).Input(None, **self.kw())
            blk.input_shape = torch.Size(shape)
            return blk
        spec = _neuron_spec(layer, self.persistent, norm=False)
        extra = {key: float(np.asarray(layer.get(key)).reshape(-1)[0]) / SCALE
                 for key in ("weight", "bias") if layer.get(key) is not None}
        blk = getattr(_block, spec.family).Input(spec.params, **extra, **self.kw())
        blk.input_shape = torch.Size(shape)
        _finish_neuron(layer, spec, blk.neuron, shape)
        return blk

    def _flatten(self, layer: _Layer) -> torch.nn.Module:
        blk = getattr(_block, self.default_family).Flatten(count_log=self.count_log)
        blk.shape = list(layer.ints("shape"))
        return blk

    def _average(self, layer: _Layer) -> torch.nn.Module:
        groups = math.prod(layer.ints("shape"))
        return getattr(_block, self.default_family).Average(groups, count_log=self.count_log)

    def _dense(self, layer: _Layer) -> torch.nn.Module:
        real, _ = _weight(layer)
        out, in_neurons = real.shape
        if layer.get("neuron") is None:
            return self._affine(layer, None, in_neurons, out)
        spec = _neuron_spec(layer, self.persistent)
        if spec.sigma_output:
            return self._output(layer, spec, in_neurons, out)
        if spec.affine:
            return self._affine(layer, spec, in_neurons, out)
        return self._synaptic(layer, spec, "Dense", (in_neurons, out), out)

    def _affine(self, layer: _Layer, spec: _NeuronSpec | None, n_in, out) -> torch.nn.Module:
        for key in ("delay", "bias"):
            if layer.get(key) is not None:
                raise layer.fail(key, "a dense layer without spiking neuron (slayer Affine) "
                                 "cannot have one")
        if spec is None:
            params = {"threshold": 1.0, "current_decay": 0.0, "voltage_decay": 0.0}
            blk = _block.cuba.Affine(params, n_in, out, dynamics=False, count_log=self.count_log)
        else:
            fam = getattr(_block, spec.family)
            if not hasattr(fam, "Affine"):
                raise layer.fail("neuron/vThMant", f"marks a slayer Affine layer, which the "
                                 f"{spec.family} family does not have")
            blk = fam.Affine(spec.params, n_in, out, count_log=self.count_log)
            _finish_neuron(layer, spec, blk.neuron, (out,))
        _set_weight(layer, blk.synapse)
        return blk

    def _output(self, layer: _Layer, spec: _NeuronSpec, n_in, out) -> torch.nn.Module:
        for key in ("delay", "bias"):
            if layer.get(key) is not None:
                raise layer.fail(key, "a sigma-delta Output layer cannot have one")
        blk = _block.sigma_delta.Output(spec.params, n_in, out, count_log=self.count_log)
        _finish_neuron(layer, spec, blk.neuron, (out,))
        _set_weight(layer, blk.synapse)
        return blk

    def _dense_rec(self, layer: _Layer) -> torch.nn.Module:
        real, _ = _weight(layer)
        out, n_in = real.shape
        spec = _neuron_spec(layer, self.persistent)
        fam = getattr(_block, spec.family)
        if not hasattr(fam, "Recurrent"):
            raise layer.fail("type", f"the {spec.family} family has no Recurrent block")
        delay = _delay(layer, out)
        blk = fam.Recurrent(spec.params, n_in, out, delay=delay is not None, **self.kw())
        _finish_neuron(layer, spec, blk.neuron, (out,))
        _set_weight(layer, blk.input_synapse)
        _set_weight(layer, blk.recurrent_synapse, "weight_rec")
        _set_delay(blk, delay)
        return blk

    def _conv(self, layer: _Layer, kind: str = "Conv") -> torch.nn.Module:
        real, _ = _weight(layer)
        groups = int(np.asarray(layer.get("groups", 1)))
        n_in, out = ((real.shape[1] * groups, real.shape[0]) if kind == "Conv"
                     else (real.shape[0], real.shape[1] * groups))
        args = (n_in, out, *self._geometry(layer), groups)
        return self._synaptic(layer, _neuron_spec(layer, self.persistent), kind, args, out)

    def _convT(self, layer: _Layer) -> torch.nn.Module:  # noqa: N802 (netx's type name)
        return self._conv(layer, "ConvT")

    def _pool(self, layer: _Layer, kind: str = "Pool") -> torch.nn.Module:
        spec = _neuron_spec(layer, self.persistent)
        return self._synaptic(layer, spec, kind, self._geometry(layer), layer.ints("shape")[0])

    def _unpool(self, layer: _Layer) -> torch.nn.Module:
        return self._pool(layer, "Unpool")

    @staticmethod
    def _geometry(layer: _Layer) -> tuple:
        return tuple(layer.ints(key) for key in ("kernelSize", "stride", "padding", "dilation"))

    def _synaptic(self, layer: _Layer, spec: _NeuronSpec, kind: str, args: tuple,
                  channels: int) -> torch.nn.Module:
        if spec.sigma_output:
            raise layer.fail("neuron/sigma_output", f"a sigma-delta Output is a dense layer, "
                             f"not {layer.type()}")
        if kind in ("Pool", "Unpool") and layer.get("bias") is not None:
            raise layer.fail("bias", "slayer's pooling blocks have no norm, hence no bias")
        delay = _delay(layer, channels)
        fam = getattr(_block, spec.family)
        blk = getattr(fam, kind)(spec.params, *args, delay=delay is not None, **self.kw())
        shape = (channels,) if kind == "Dense" else layer.ints("shape")
        _finish_neuron(layer, spec, blk.neuron, shape)
        _set_weight(layer, blk.synapse)
        _set_delay(blk, delay)
        return blk


def _set_delay(blk, delay: np.ndarray | None) -> None:
    if delay is not None:
        blk.delay.delay.data = torch.tensor(delay, dtype=torch.float32)
        blk.delay.keep_values()


def _enable_weight_norm(blk: torch.nn.Module) -> None:
    """Weight norm on the block's learnable synapses (a pooling kernel is fixed)."""
    if isinstance(blk, _block.base.AbstractPool):
        return
    for name in ("synapse", "input_synapse", "recurrent_synapse"):
        syn = getattr(blk, name, None)
        if syn is not None and not syn.weight_norm_enabled:
            syn.enable_weight_norm()


# -------------------------------------------------------------------------------- network


class SequentialNetwork(torch.nn.Module):
    """A sequential slayer network rebuilt from a netx hdf5 netlist (module docstring).

    Args:
        network_config: path of the ``.net`` file.
        persistent_state: neuron states carry over between forward calls.
        reduction: None, ``"sum"`` or ``"mean"`` of the output over every dimension after the
            channel (time, and H, W for a conv output).
        weight_norm: enable weight norm on every learnable synapse after loading the weights.
        count_log: every block also returns its spike rate; ``forward`` returns
            ``(output, counts)`` with ``counts`` of shape ``[1, blocks that count]``.
        input_shape: per-sample input shape ``(C,)`` or ``(C, H, W)`` (slayer order), checked
            against the netlist; needed only when the first layer is pool, convT, unpool,
            flatten or average and the file has no input layer.
        delay_shift: the blocks' one-step output delay (the netlist does not record it); None
            uses each family's default (True, False for sigma-delta) as the original blocks did.

    Attributes:
        blocks: the blocks, one per ``layer/K`` group, as a ``torch.nn.ModuleList``.
        input_shape: the per-sample input shape when the netlist or the caller gives it.
    """

    def __init__(self, network_config: str | os.PathLike, persistent_state: bool = False,
                 reduction: str | None = None, weight_norm: bool = False,
                 count_log: bool = False, *, input_shape: Sequence[int] | None = None,
                 delay_shift: bool | None = None):
        super().__init__()
        if reduction not in REDUCTIONS:
            raise AutoError(f"reduction must be None, 'sum' or 'mean'; got {reduction!r}")
        path = str(network_config)
        shape = None if input_shape is None else tuple(int(d) for d in input_shape)
        tree = _load(path, shape)
        layers = _layers(path, tree)
        self.persistent_state, self.reduction = persistent_state, reduction
        self.weight_norm, self.count_log = weight_norm, count_log
        builder = _Builder(layers, persistent_state, count_log, delay_shift)
        self.blocks = torch.nn.ModuleList(builder.build(layer) for layer in layers)
        self.input_shape = shape or _netlist_input_shape(layers)
        if weight_norm:
            for blk in self.blocks:
                _enable_weight_norm(blk)

    def forward(self, x: torch.Tensor):
        """Runs the blocks in order on ``x`` ``[N, C(, H, W), T]``."""
        counts = []
        for blk in self.blocks:
            x = blk(x)
            if self.count_log:
                x, count = x
                if count is not None:
                    counts.append(count.reshape(()))
        if self.reduction is not None:
            x = x.reshape(x.shape[0], x.shape[1], -1)
            x = x.sum(2) if self.reduction == "sum" else x.mean(2)
        if not self.count_log:
            return x
        return x, torch.stack(counts).reshape(1, -1) if counts else torch.zeros(1, 0)


def _netlist_input_shape(layers: list[_Layer]) -> tuple[int, ...] | None:
    """The input shape an ``input`` layer or a first dense layer implies."""
    first = layers[0]
    if first.type() == "input":
        return first.ints("shape")
    if first.type() in ("dense", "dense_rec"):
        return (int(_weight(first)[0].shape[1]),)
    return None
