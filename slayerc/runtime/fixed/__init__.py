"""Bit-accurate fixed-point runtime: Lava's fixed_pt semantics for netx netlists, batched.

``simulate(graph, x, steps, record)`` runs an IR graph; ``run_netlist(path, x, ...)`` reads and
runs a netlist file.  See ``docs/fixed-point.md`` for the exact semantics of every op.
"""

from slayerc.runtime.fixed.netlist import load_netlist, run_netlist
from slayerc.runtime.fixed.simulator import Simulator, layer_nodes, simulate

__all__ = ["Simulator", "layer_nodes", "load_netlist", "run_netlist", "simulate"]
