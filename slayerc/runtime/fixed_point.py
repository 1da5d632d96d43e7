"""The fixed-point runtime's public API (implemented in :mod:`slayerc.runtime.fixed`)."""

from slayerc.runtime.fixed import Simulator, layer_nodes, simulate

__all__ = ["Simulator", "layer_nodes", "simulate"]
