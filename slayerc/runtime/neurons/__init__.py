"""One home per neuron family: the table every path dispatches through.

Each stateful IR op (``neuron.cuba`` … ``neuron.sigma_delta``, ``axon.delta``,
``dendrite.sigma``, ``axon.shift``, ``axon.delay``) has one module here that owns

* ``OP``: the IR op it implements;
* ``PARAMS``: its learnable tensors (decays ×4096, as ``slayerc.slayer`` stores them);
* ``STATES``: the states a persistent neuron carries from call to call;
* ``dynamics(x, *params, threshold, …, output=…) -> (y, states)``: the float dynamics, a pure
  function of attributes, parameters, input and state, with autograd (the integer-exact kernels
  of :mod:`slayerc.runtime.dynamics`);
* ``node_args(node, value) -> (args, kwargs)``: how an IR node's attributes and parameters feed
  ``dynamics`` (``value(attr)`` gives a live tensor for a parameter);
* ``KERNELS``: its implementations by kind, ``"torch"`` (``dynamics``), ``"fixed"`` (the
  fixed-point integer kernel class of :mod:`slayerc.runtime.fixed`), ``"numba"`` (the compiled
  loop behind it); other layers add theirs with :func:`register` (the Triton backend registers
  ``"triton"`` when it is imported, since the runtime never imports backends).

The interpreter, :func:`slayerc.to_module`, the ``slayerc.slayer`` neuron modules and the
fixed-point simulator all look implementations up here.  Adding a family = one module here,
listed in :data:`FAMILIES`, plus its IR op (``docs/adding-a-neuron-family.md``).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from types import ModuleType
from typing import Any

from slayerc.errors import RuntimeSimError

FAMILIES: dict[str, str] = {
    "neuron.cuba": "slayerc.runtime.neurons.cuba",
    "neuron.alif": "slayerc.runtime.neurons.alif",
    "neuron.rf": "slayerc.runtime.neurons.rf",
    "neuron.rf_iz": "slayerc.runtime.neurons.rf_iz",
    "neuron.adrf": "slayerc.runtime.neurons.adrf",
    "neuron.adrf_iz": "slayerc.runtime.neurons.adrf_iz",
    "neuron.sigma_delta": "slayerc.runtime.neurons.sigma_delta",
    "neuron.li": "slayerc.runtime.neurons.li",
    "axon.delta": "slayerc.runtime.neurons.delta",
    "axon.shift": "slayerc.runtime.neurons.shift",
    "axon.delay": "slayerc.runtime.neurons.delay",
    "dendrite.sigma": "slayerc.runtime.neurons.sigma",
}
"""IR op -> the dotted path of its home module (:func:`add_family` adds one from outside)."""

KINDS = ("torch", "triton", "fixed", "numba")

_EXTRA: dict[tuple[str, str], Any] = {}


def family(op: str) -> ModuleType:
    """The home module of ``op`` (``RuntimeSimError`` for an op that is not a family)."""
    name = FAMILIES.get(op)
    if name is None:
        raise RuntimeSimError(f"{op} is not a neuron family; families: {', '.join(FAMILIES)}")
    return importlib.import_module(name)


def add_family(op: str, module: str) -> None:
    """Make the module at dotted path ``module`` the home of IR op ``op`` (a family defined
    outside slayerc).  The module must define what the package docstring lists; the interpreter
    and :func:`slayerc.to_module` then run ``op`` through it."""
    if op in FAMILIES and FAMILIES[op] != module:
        raise RuntimeSimError(f"{op} has a home already ({FAMILIES[op]})")
    home = importlib.import_module(module)
    missing = [a for a in ("OP", "PARAMS", "STATES", "dynamics", "node_args")
               if not hasattr(home, a)]
    if missing or home.OP != op:
        raise RuntimeSimError(f"{module} is not a family module of {op}: "
                              f"{'missing ' + ', '.join(missing) if missing else 'OP differs'}")
    FAMILIES[op] = module


def register(op: str, kind: str, impl: Any) -> None:
    """Add (or replace) the ``kind`` implementation of ``op`` (e.g. the Triton kernels)."""
    family(op)
    if kind not in KINDS:
        raise RuntimeSimError(f"unknown kernel kind {kind!r}; kinds: {', '.join(KINDS)}")
    _EXTRA[(op, kind)] = impl


def kernel(op: str, kind: str = "torch") -> Any:
    """The ``kind`` implementation of ``op``, or None when the family has none of that kind.

    A table entry may be a ``"module:attribute"`` string (resolved on first use, so that the
    compiled and integer kernels load only when asked for).
    """
    impl = _EXTRA.get((op, kind))
    if impl is None:
        impl = getattr(family(op), "KERNELS", {}).get(kind)
    if isinstance(impl, str):
        module, _, attr = impl.partition(":")
        impl = getattr(importlib.import_module(module), attr)
        _EXTRA[(op, kind)] = impl
    return impl


def kinds(op: str) -> list[str]:
    """The kinds of implementation ``op`` has now."""
    return [k for k in KINDS if kernel(op, k) is not None]


def ops_with(kind: str) -> list[str]:
    """Every family op that has a ``kind`` implementation."""
    return [op for op in FAMILIES if kernel(op, kind) is not None]


Dynamics = Callable[..., tuple[Any, dict[str, Any]]]
