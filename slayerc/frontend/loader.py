"""Loading a user's model for ``slayerc compile``: ``FILE.py:NAME`` and an optional checkpoint.

``NAME`` is an ``nn.Module`` class constructible without arguments, or a function returning a
module.  Checkpoints load with ``torch.load(weights_only=True)``: nothing else is unpickled.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import torch

from slayerc.errors import FrontendError


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
        mod_spec.loader.exec_module(module)
    except Exception as e:
        raise FrontendError(f"{file}: importing it failed: {type(e).__name__}: {e}") from e
    finally:
        sys.path.pop(0)
    factory = getattr(module, name, None)
    if factory is None:
        raise FrontendError(f"{file} has no '{name}'")
    try:
        model = factory()
    except TypeError as e:
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
