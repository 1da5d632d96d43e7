"""Loading a user's model for ``slayerc compile``: ``FILE.py:NAME`` and an optional checkpoint.

``NAME`` is an ``nn.Module`` class constructible without arguments, or a function returning a
module.  Checkpoints load with ``torch.load(weights_only=True)``: nothing else is unpickled.

The user's code runs at import, in the factory and in ``forward`` while tracing.  An exception
it raises there (or a ``sys.exit``) is the model's, not slayerc's: :func:`user_code` reports it
as a :class:`FrontendError` "the model raised ..." with the file and line in the user's code.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import sys
import traceback
from collections.abc import Iterator
from pathlib import Path

import torch

from slayerc.errors import FrontendError, SlayerError

_INTERNAL = tuple(os.path.dirname(m.__file__ or "") + os.sep
                  for m in (torch, sys.modules["slayerc"]))


def _user_frame(e: BaseException, folder: Path) -> tuple[str, int] | None:
    """The innermost traceback frame in the user's code: a file under ``folder`` (the model
    file's), outside torch and slayerc."""
    found = None
    for fs in traceback.extract_tb(e.__traceback__):
        name = os.path.abspath(fs.filename)
        if name.startswith(str(folder) + os.sep) and not name.startswith(_INTERNAL):
            found = (fs.filename, fs.lineno or 0)
    return found


@contextlib.contextmanager
def user_code(file: str | os.PathLike, what: str) -> Iterator[None]:
    """Report what the user's model code raises while the block runs (``what``: "importing
    it", "tracing it", ...) as a :class:`FrontendError` naming the file and line; so is a
    ``sys.exit`` anywhere in it (it would end slayerc without output).  slayerc's own errors
    pass unchanged, and so does an exception with no frame in the user's code (a bug of
    slayerc's, reported as such)."""
    folder = Path(file).resolve().parent
    try:
        yield
    except (SlayerError, KeyboardInterrupt, GeneratorExit):
        raise
    except BaseException as e:
        where = _user_frame(e, folder)
        if where is None and not isinstance(e, SystemExit):
            raise
        at = f" at {where[0]}:{where[1]}" if where else ""
        if isinstance(e, SystemExit):
            raise FrontendError(f"{file}: the model called sys.exit({e.code!r}){at} while "
                                f"{what}; a model file must not exit (guard script code with "
                                "`if __name__ == \"__main__\":`)") from None
        first = str(e).strip().splitlines()[0] if str(e).strip() else ""
        hint = ""
        if isinstance(e, (OverflowError, ValueError)) and ("infinity" in first or "NaN" in first):
            hint = (" (a value given there is infinite or NaN: neuron parameters such as the "
                    "threshold and the decays, and weights, must be finite)")
        raise FrontendError(f"{file}: the model raised {type(e).__name__}"
                            f"{': ' + first if first else ''}{at} while {what}{hint}; fix the "
                            "model code (--traceback shows the whole traceback)") from e


def clipped_weights(model: torch.nn.Module) -> list[str]:
    """Warnings for synapses whose latent weights the 8-bit quantizer of their block clips
    (slayer's ``quantize_8bit`` pre-hook clamps to ``[−256, 254]/w_scale``): the model's own
    forward, the trace and the netlist all use the clipped values while the threshold stays, so
    a weight of 1e30 acts as 254/64.  Each names the module and the measured error."""
    out = []
    for name, mod in model.named_modules():
        hook, w = getattr(mod, "_pre_hook_fx", None), getattr(mod, "weight", None)
        scale = getattr(getattr(hook, "__self__", None), "w_scale", None)
        if getattr(hook, "__name__", "") != "quantize_8bit" or not isinstance(w, torch.Tensor) \
                or not scale:
            continue
        with torch.no_grad():
            latent = w.detach().double()
            err = (hook(w.detach()).double() - latent).abs()
        step = 2.0 / float(scale)
        over = err > step  # rounding moves a weight by at most step/2; more is clipping
        if not bool(over.any()):
            continue
        big = float(latent.abs().max())
        out.append(f"{name or type(model).__name__}: {int(over.sum())} of {latent.numel()} "
                   f"weights (largest |w| {big:g}) are clipped by the block's 8-bit quantizer to "
                   f"[{-256 / scale:g}, {254 / scale:g}] (largest error {float(err.max()):g}), "
                   "while the neuron threshold stays: the model's forward and the compiled "
                   "network use the clipped weights; scale the weights (and the threshold) "
                   "down, or train with the quantizer on")
    return out


def load_model(spec: str) -> torch.nn.Module:
    """Import ``FILE.py:NAME`` and build the model."""
    file, sep, name = spec.rpartition(":")
    if not sep or not file or not name:
        raise FrontendError(f"expected MODEL.py:NAME, got {spec!r}")
    path = Path(file)
    if not path.is_file():
        raise FrontendError(f"{file}: no such file")
    mod_spec = importlib.util.spec_from_file_location(f"slayerc_user_{path.stem}", path)
    if mod_spec is None or mod_spec.loader is None:
        raise FrontendError(f"{file}: cannot be imported as a Python module")
    module = importlib.util.module_from_spec(mod_spec)
    sys.path.insert(0, str(path.resolve().parent))
    try:
        with user_code(file, "importing it"):
            mod_spec.loader.exec_module(module)
    finally:
        sys.path.pop(0)
    factory = getattr(module, name, None)
    if factory is None:
        raise FrontendError(f"{file} has no '{name}'")
    if not callable(factory):
        raise FrontendError(f"{file}:{name} is a {type(factory).__name__}, not an nn.Module "
                            "class or a function returning a module")
    try:
        with user_code(file, f"building the model ({name}())"):
            model = factory()
    except TypeError as e:  # a constructor that wants arguments: no user frame
        raise FrontendError(f"{file}:{name} must be an nn.Module class constructible without "
                            f"arguments or a function returning a module: {e}") from e
    if not isinstance(model, torch.nn.Module):
        raise FrontendError(f"{file}:{name}() returned {type(model).__name__}, not an nn.Module")
    return model


def load_weights(model: torch.nn.Module, ckpt: str) -> None:
    """Load a state dict (or ``{"state_dict": ...}``) with ``weights_only=True``, strictly."""
    try:
        state = torch.load(ckpt, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise FrontendError(f"{ckpt}: no such file") from None
    except Exception as e:  # torch raises UnpicklingError, RuntimeError, ... for bad files
        raise FrontendError(f"{ckpt}: not a weights-only checkpoint ({type(e).__name__}: "
                            f"{str(e).splitlines()[0]}); save it with "
                            "torch.save(model.state_dict(), path)") from None
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise FrontendError(f"{ckpt}: expected a state dict, got {type(state).__name__}")
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as e:
        raise FrontendError(f"{ckpt} does not fit the model: {str(e).splitlines()[0]} "
                            f"{' '.join(str(e).splitlines()[1:3])}") from None
