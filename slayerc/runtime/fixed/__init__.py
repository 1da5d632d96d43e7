"""Bit-accurate fixed-point runtime: Lava's fixed_pt semantics for netx netlists, batched.

``simulate(graph, x, steps, record)`` runs an IR graph; ``slayerc.driver.run_netlist(path, x,
...)`` reads and runs a netlist file (the runtime itself loads no files).  See
``docs/fixed-point.md`` for the exact semantics of every op.
"""

from slayerc.runtime.fixed.simulator import Simulator, layer_nodes, simulate

__all__ = ["Simulator", "layer_nodes", "simulate"]
