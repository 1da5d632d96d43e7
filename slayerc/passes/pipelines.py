"""The shipped pipelines: ``default_pipeline(target)`` for ``slayerc compile`` without ``-p``."""

from __future__ import annotations

from slayerc.errors import PassError
from slayerc.ir.target import get as get_target


def default_pipeline(target: str = "loihi2", netlist: bool = False) -> str:
    """The default pass pipeline for ``target`` (``loihi2`` or ``slayerc``), as a string.

    ``netlist``: the result is written as a ``.net``, whose layers always hold one step per
    synapse (the reader gives Lava's form back), so ``legalize-layers`` runs for any target;
    without it only targets with ``lava_layers`` (loihi2) run it and the slayerc target keeps the
    model's own timing.
    """
    spec = get_target(target, PassError)
    max_delay = spec.max_delay
    steps = [
        # every pass below reads shapes (channels, features) to rewrite layers
        "shape-infer",
        # drop inference identities (dropout, unit affines, zero delays) so layers match
        "canonicalize",
        # a BatchNorm has no hardware unit: fold it into the synapse weights and bias
        "fold-batchnorm",
        # folding exposes scales (lif(bn(conv(x)) * 2)) that now sit next to the synapse
        "canonicalize",
        # masks into weights, dead neurons out: the chip pays for every synapse and neuron
        "sparsify-masks",
        # a KWTA's fixed lateral weights as a dense synapse: a dense_rec layer
        "lower-kwta",
        # a sum pool the netlist cannot hold becomes the depthwise conv it equals
        f"lower-pool{{target={target}}}",
        # Lava's layer form: one step held per synapse, biases on the neuron (netx has no
        # synapse bias); reports the latency this adds and where it is not exact
        *(["legalize-layers"] if spec.lava_layers or netlist else []),
        # whole steps, at most the target's maximum, only where the netlist holds them
        f"legalize-delay{{max={max_delay if max_delay is not None else 1 << 30},target={target}}}",
        # last: weights, decays, thresholds on the integer grid (relays are already on it)
        f"legalize-quant{{target={target}}}",
    ]
    return ",".join(steps)
