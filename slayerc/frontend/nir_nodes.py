"""NIR import, one converter per NIR primitive: each emits the IR nodes of one NIR node.

Split from :mod:`slayerc.frontend.nir_import` (which orders the nodes, cuts cycles and names
things, and whose docstring lists each primitive's equation and discretisation); a converter is
``(importer, key, node, x, shape, final, loc) -> None`` and is found in :data:`_CONVERTERS` by the
NIR node's type name.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from slayerc.ir import ops

if TYPE_CHECKING:
    from slayerc.frontend.nir_import import _Importer

_TAUS = ("tau", "tau_syn", "tau_mem")


def _numpy(value: Any) -> Any:
    if hasattr(value, "detach"):
        return value.detach().cpu().numpy()
    return value


def _dense(imp: _Importer, key, node, x, shape, final, loc, bias: bool) -> None:
    w = imp.array(key, node, "weight").astype(np.float32)
    if w.ndim != 2:
        raise imp.fail(key, f"weight must be 2-d [out, in], got shape {list(w.shape)}")
    if len(shape) != 1:
        raise imp.fail(key, f"receives shape {list(shape)}; a dense layer needs a 1-d input "
                            "(add a Flatten before it)")
    attrs = {"weight": imp.b.param(f"{final}.weight", w)}
    if bias:
        bvec = imp.array(key, node, "bias").astype(np.float32)
        if bvec.shape != (w.shape[0],):
            raise imp.fail(key, f"bias has shape {list(bvec.shape)}, expected [{w.shape[0]}]")
        attrs["bias"] = imp.b.param(f"{final}.bias", bvec)
    imp.add(key, ops.Dense, final, [x], loc=loc, **attrs)


def _ints(imp: _Importer, key: str, node: Any, attr: str, n: int, default: int) -> tuple:
    value = getattr(node, attr, default)
    if isinstance(value, str):
        raise imp.fail(key, f"{attr}={value!r}: give explicit integers")
    arr = np.asarray(_numpy(value)).reshape(-1)
    if arr.size == 1:
        arr = np.repeat(arr, n)
    if arr.size != n or arr.dtype.kind not in "iuf" or not np.all(np.isfinite(arr)) \
            or not np.all(arr == np.round(arr)):
        raise imp.fail(key, f"'{attr}' must be {n} integers, got {value!r}")
    return tuple(int(v) for v in arr)


def _padding(imp: _Importer, key, node, n: int, kernel: tuple, dilation: tuple) -> tuple:
    pad = getattr(node, "padding", 0)
    if isinstance(pad, str):
        if pad == "valid":
            return (0,) * n
        if pad == "same" and all((d * (k - 1)) % 2 == 0 for k, d in zip(kernel, dilation)):
            return tuple(d * (k - 1) // 2 for k, d in zip(kernel, dilation))
        raise imp.fail(key, f"padding={pad!r} with kernel {list(kernel)} is not a symmetric "
                            "padding; give explicit integers")
    return _ints(imp, key, node, "padding", n, 0)


def _conv2d(imp: _Importer, key, node, x, shape, final, loc) -> None:
    w = imp.array(key, node, "weight").astype(np.float32)
    if w.ndim != 4:
        raise imp.fail(key, f"weight must be 4-d [out, in/groups, kH, kW], got {list(w.shape)}")
    if len(shape) != 3:
        raise imp.fail(key, f"receives shape {list(shape)}; Conv2d needs [C, H, W]")
    _conv_common(imp, key, node, x, final, loc, w, 2, ops.Conv)


def _conv_common(imp, key, node, x, final, loc, w, n, cls, extra=None) -> str:
    stride = _ints(imp, key, node, "stride", n, 1)
    dilation = _ints(imp, key, node, "dilation", n, 1)
    padding = _padding(imp, key, node, n, tuple(w.shape[2:]) if n == 2 else (w.shape[-1],),
                       dilation)
    groups = int(getattr(node, "groups", 1) or 1)
    if n == 1:
        stride, dilation, padding = (1, *stride), (1, *dilation), (0, *padding)
        w = w[:, :, None, :]
    attrs: dict[str, Any] = {"weight": imp.b.param(f"{final}.weight", w), "stride": stride,
                             "padding": padding, "dilation": dilation, "groups": groups}
    b = getattr(node, "bias", None)
    if b is not None and np.size(_numpy(b)) and np.any(np.asarray(_numpy(b)) != 0):
        bvec = imp.array(key, node, "bias").astype(np.float32).reshape(-1)
        if bvec.shape != (w.shape[0],):
            raise imp.fail(key, f"bias has shape {list(bvec.shape)}, expected [{w.shape[0]}]")
        attrs["bias"] = imp.b.param(f"{final}.bias", bvec)
    name = final if extra is None else imp.helper(f"{final}_conv")
    return imp.add(key, cls, name, [x], loc=loc, **attrs)


def _conv1d(imp: _Importer, key, node, x, shape, final, loc) -> None:
    w = imp.array(key, node, "weight").astype(np.float32)
    if w.ndim != 3:
        raise imp.fail(key, f"weight must be 3-d [out, in/groups, k], got {list(w.shape)}")
    if len(shape) != 2:
        raise imp.fail(key, f"receives shape {list(shape)}; Conv1d needs [C, L]")
    r = imp.add(key, ops.Reshape, imp.helper(f"{final}_in"), [x], to=(shape[0], 1, shape[1]),
                loc=loc)
    c = _conv_common(imp, key, node, r, final, loc, w, 1, ops.Conv, extra=True)
    out = imp.shapes[c]
    imp.add(key, ops.Reshape, final, [c], to=(out[0], out[2]), loc=loc)


def _pool(imp: _Importer, key, node, x, shape, final, loc, average: bool) -> None:
    if len(shape) != 3:
        raise imp.fail(key, f"receives shape {list(shape)}; pooling needs [C, H, W]")
    k = _ints(imp, key, node, "kernel_size", 2, 2)
    s = _ints(imp, key, node, "stride", 2, 2) if getattr(node, "stride", None) is not None \
        else k
    p = _ints(imp, key, node, "padding", 2, 0)
    want = tuple((shape[i + 1] + 2 * p[i] - k[i]) // s[i] + 1 for i in range(2))
    kernel = np.full((1, 1, *k), 1.0 / (k[0] * k[1]) if average else 1.0, np.float32)
    name = imp.add(key, ops.Pool, final, [x], kernel=k, stride=s, padding=p,
                   weight=imp.b.param(f"{final}.weight", kernel), loc=loc)
    got = imp.shapes[name][1:]
    if got != want:
        raise imp.fail(key, f"pooling [H, W] = {list(shape[1:])} with kernel {list(k)} gives "
                            f"{list(want)} in NIR but {list(got)} in the IR (slayer pads the "
                            "remainder H mod kH); use sizes divisible by the kernel")


def _flatten(imp: _Importer, key, node, x, shape, final, loc) -> None:
    n = len(shape)
    a, e = int(getattr(node, "start_dim", 0)), int(getattr(node, "end_dim", -1))
    a, e = a + n if a < 0 else a, e + n if e < 0 else e
    if not 0 <= a <= e < n:
        raise imp.fail(key, f"start_dim/end_dim {node.start_dim}/{node.end_dim} do not fit "
                            f"the input shape {list(shape)}")
    out = (*shape[:a], int(np.prod(shape[a:e + 1])), *shape[e + 1:])
    if len(out) == 1:
        imp.add(key, ops.Flatten, final, [x], loc=loc)
    else:
        imp.add(key, ops.Reshape, final, [x], to=out, loc=loc)


def _scale(imp: _Importer, key, node, x, shape, final, loc) -> None:
    s = imp.array(key, node, "scale")
    if s.size and np.all(s == s.flat[0]):
        imp.add(key, ops.Affine, final, [x], scale=float(s.flat[0]), loc=loc)
        return
    if len(shape) != 1 or s.shape != shape:
        raise imp.fail(key, f"a per-element scale of shape {list(s.shape)} on input "
                            f"{list(shape)} is expressible only on 1-d inputs; fold it into the "
                            "preceding weight")
    w = np.diag(s).astype(np.float32)
    imp.add(key, ops.Dense, final, [x], weight=imp.b.param(f"{final}.weight", w), loc=loc)


def _delay(imp: _Importer, key, node, x, shape, final, loc) -> None:
    d = imp.array(key, node, "delay") / imp.opts.dt
    steps = np.round(d)
    if np.any(steps < 0):
        raise imp.fail(key, f"delay {float(d.min()) * imp.opts.dt!r} s is negative")
    if np.any(np.abs(d - steps) > 1e-6 * np.maximum(1, np.abs(d))):
        imp.warn(key, f"delay {float(d.flat[0]) * imp.opts.dt!r} s is no whole number of "
                      f"dt = {imp.opts.dt} s steps; rounded to whole steps")
    if steps.size and np.all(steps == steps.flat[0]):
        imp.add(key, ops.Shift, final, [x], steps=int(steps.flat[0]), loc=loc)
        return
    ref = imp.b.param(f"{final}.delay", _per_neuron(imp, key, "delay", steps, shape))
    imp.add(key, ops.Delay, final, [x], delay=ref, loc=loc)


def _integrator(imp: _Importer, key, node, x, shape, final, loc) -> None:
    gain = imp.array(key, node, "r") * imp.opts.dt
    if not (gain.size and np.all(gain == gain.flat[0])):
        raise imp.fail(key, "per-neuron 'r' is not expressible; the IR's integrator has one gain")
    if gain.flat[0] == 1.0:
        imp.add(key, ops.Sigma, final, [x], loc=loc)
        return
    s = imp.add(key, ops.Sigma, imp.helper(f"{final}_sum"), [x], loc=loc)
    imp.add(key, ops.Affine, final, [s], scale=float(gain.flat[0]), loc=loc)


def _per_neuron(imp: _Importer, key: str, attr: str, arr: np.ndarray,
                shape: tuple[int, ...]) -> np.ndarray:
    if arr.shape == shape or arr.shape == (shape[0],):
        return arr
    if arr.size == 1:
        return np.full(shape, arr.flat[0])
    raise imp.fail(key, f"'{attr}' has shape {list(arr.shape)} but the input has shape "
                        f"{list(shape)}; give one value per neuron")


def _uniform(imp: _Importer, key: str, attr: str, arr: np.ndarray, what: str) -> float:
    """The one value of ``arr`` (values within float32 rounding of each other count as one)."""
    lo, hi = float(arr.min()), float(arr.max())
    if hi - lo > 1e-6 * max(abs(lo), abs(hi)):
        raise imp.fail(key, f"{what} differs between neurons ({float(arr.min())!r} .. "
                            f"{float(arr.max())!r}); the IR holds one {what} per layer")
    return float(arr.flat[0])


def _neuron(imp: _Importer, key, node, x, shape, final, loc) -> None:
    kind = type(node).__name__
    if kind == "Threshold":
        th = _per_neuron(imp, key, "threshold", imp.array(key, node, "threshold"), shape)
        imp.add(key, ops.Cuba, final, [x], threshold=_uniform(
            imp, key, "threshold", th, "threshold"), current_decay=1.0,
            voltage_decay=1.0, loc=loc)
        return
    get, a_u, a_v, g = _discretise(imp, key, node, shape)
    ones = np.ones(shape)
    v_reset = get.get("v_reset", 0 * ones)
    v_leak = get.get("v_leak", 0 * ones)
    th = float(np.float32(_uniform(imp, key, "v_threshold", (get["v_threshold"] - v_reset) / g,
                  "threshold (v_threshold − v_reset)/gain")))
    if th < 0:
        raise imp.fail(key, f"v_threshold below v_reset (threshold {th!r}) is not expressible")
    if np.any(v_reset != 0):  # warned once the graph is built, with the measured error
        imp.warn(key, f"v_reset = {float(v_reset.flat[0])!r} ≠ 0: the IR measures the voltage "
                      "from v_reset and starts it there, so the first steps differ from a peer "
                      "that starts at 0 (exact after each neuron's first spike)",
                 start=(final, -v_reset / g))
    bias = a_v * (v_leak - v_reset) / g
    attrs: dict[str, Any] = {"threshold": th,
                             "current_decay": _scalar_or_param(imp, f"{final}.current_decay", a_u),
                             "voltage_decay": _scalar_or_param(imp, f"{final}.voltage_decay", a_v)}
    attrs.update(_exact(a_u, a_v))
    if np.any(bias != 0):
        attrs["bias"] = _scalar_or_param(imp, f"{final}.bias", bias)
    imp.add(key, ops.Cuba, final, [x], loc=loc, **attrs)


def _discretise(imp: _Importer, key, node, shape) -> tuple[dict, np.ndarray, np.ndarray, float]:
    """A LIF-like node's per-neuron parameters, its decays ``dt/τs`` and ``dt/τm`` (1 without a
    current, 0 without a leak) and its one input gain ``G = g_u·g_v``."""
    kind = type(node).__name__
    dt = imp.opts.dt
    get = {a: _per_neuron(imp, key, a, imp.array(key, node, a), shape)
           for a in _NEURON_ATTRS[kind]}
    norse_export = imp.opts.convention == "norse-export"
    if norse_export:  # Norse 1.1's to_nir writes tau = dt/tau_inv = dt·τ
        get.update({a: get[a] / dt for a in _TAUS if a in get})
    ones = np.ones(shape)
    a_u = dt / get["tau_syn"] if "tau_syn" in get else ones
    a_v = dt / get["tau_mem"] if "tau_mem" in get else (dt / get["tau"] if "tau" in get
                                                        else 0 * ones)
    for attr, a in (("tau_syn", a_u), ("tau_mem", a_v), ("tau", a_v)):
        if attr in get and (np.any(a > 1) or np.any(a < 0)):
            bad = float(get[attr].flat[int(np.argmax((a > 1) | (a < 0)))])
            raise imp.fail(key, f"{attr} = {bad:.6g} s is shorter than dt = {dt} s (or negative): "
                                "forward Euler overshoots; pass the dt the file was made with "
                                f"(--dt){_NORSE_HINT if not norse_export and bad < dt else ''}")
    g_v = dt * get["r"] / get["tau_mem" if "tau_mem" in get else "tau"] if "r" in get and (
        "tau" in get or "tau_mem" in get) else (1 if norse_export else dt) * get.get("r", ones)
    g_u = ones
    if "tau_syn" in get:
        g_u = get["w_in"] * (a_u if imp.opts.convention == "euler" else 1.0)
    gain = g_u * g_v
    if np.any(gain <= 0):
        raise imp.fail(key, f"input gain {float(gain.min())!r} (from r, w_in, tau) must be "
                            "positive")
    g = _uniform(imp, key, "gain", gain, "input gain (dt·r/tau_mem · w_in·dt/tau_syn)")
    g = 1.0 if abs(g - 1.0) <= 1e-6 else g  # r = tau/dt written in float32: unit gain
    return get, a_u, a_v, g


def _li(imp: _Importer, key, node, x, shape, final, loc) -> None:
    """LI / CubaLI → ``neuron.li`` (voltage in units of the gain ``G``) and, for ``G ≠ 1``, a
    ``tensor.affine`` by ``G`` that gives NIR's voltage back: ``v = G·v_IR``."""
    get, a_u, a_v, g = _discretise(imp, key, node, shape)
    attrs: dict[str, Any] = {"current_decay": _scalar_or_param(imp, f"{final}.current_decay", a_u),
                             "voltage_decay": _scalar_or_param(imp, f"{final}.voltage_decay", a_v)}
    attrs.update(_exact(a_u, a_v))
    bias = a_v * get["v_leak"] / g
    if np.any(bias != 0):
        attrs["bias"] = _scalar_or_param(imp, f"{final}.bias", bias)
    if g == 1.0:
        imp.add(key, ops.LI, final, [x], loc=loc, **attrs)
        return
    v = imp.add(key, ops.LI, imp.helper(f"{final}_v"), [x], loc=loc, **attrs)
    imp.add(key, ops.Affine, final, [v], scale=float(np.float32(g)), loc=loc)


def _scalar_or_param(imp: _Importer, name: str, arr: np.ndarray) -> Any:
    arr = _snap(np.asarray(arr, np.float64))
    if np.all(arr == arr.flat[0]):
        return float(np.float32(arr.flat[0]))  # NIR files hold float32: no 1e-9 residues
    return imp.b.param(name, arr.astype(np.float32))


def _exact(*decays: np.ndarray) -> dict[str, bool]:
    """``exact_decays`` for a neuron whose decays are off the 12-bit grid (e.g. β = 0.9):
    the interpreter then runs NIR's decay, not slayer's rounding of it (410/4096)."""
    snapped = [_snap(np.asarray(d, np.float64)) for d in decays]
    off = any(np.any(d * 4096 != np.round(d * 4096)) for d in snapped)
    return {"exact_decays": True} if off else {}


def _snap(arr: np.ndarray) -> np.ndarray:
    """Values within float32 rounding of the IR's 1/4096 grid (decays, states) put on it: NIR
    files hold float32, so ``dt/tau`` of a decay written as ``tau = dt/α`` misses ``α`` by an
    ulp, and a bias a hair under the grid would lose a whole state unit to the truncation."""
    q = np.round(arr * 4096) / 4096
    near = np.abs(arr - q) <= 4 * np.finfo(np.float32).eps * np.maximum(np.abs(arr), 1 / 4096)
    return np.where(near, q, arr)


_NORSE_HINT = ("; a file written by Norse 1.1's to_nir (tau = dt/tau_inv) imports with "
               "convention='norse-export' (--convention norse-export)")

_RANK = {"Affine": 1, "Linear": 1, "Conv1d": 2, "Conv2d": 3, "SumPool2d": 3, "AvgPool2d": 3}
"""The input rank a node takes, for nodes that declare no input type (Norse's Conv2d)."""

_STATELESS = ("Affine", "Linear", "Scale", "Conv1d", "Conv2d", "Flatten")

_NEURON_ATTRS = {
    "LIF": ("tau", "r", "v_leak", "v_threshold", "v_reset"),
    "CubaLIF": ("tau_syn", "tau_mem", "r", "v_leak", "v_threshold", "v_reset", "w_in"),
    "IF": ("r", "v_threshold", "v_reset"),
    "Threshold": ("threshold",),
    "LI": ("tau", "r", "v_leak"),
    "CubaLI": ("tau_syn", "tau_mem", "r", "v_leak", "w_in"),
}

_CONVERTERS = {
    "Affine": lambda *a: _dense(*a, bias=True),
    "Linear": lambda *a: _dense(*a, bias=False),
    "Scale": _scale,
    "Conv1d": _conv1d,
    "Conv2d": _conv2d,
    "SumPool2d": lambda *a: _pool(*a, average=False),
    "AvgPool2d": lambda *a: _pool(*a, average=True),
    "Flatten": _flatten,
    "Delay": _delay,
    "LIF": _neuron,
    "CubaLIF": _neuron,
    "IF": _neuron,
    "Threshold": _neuron,
    "I": _integrator,
    "LI": _li,
    "CubaLI": _li,
}
