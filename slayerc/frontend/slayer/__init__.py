"""The SLAYER modelling library behind ``slayerc.slayer`` (a drop-in for ``lava.lib.dl.slayer``).

``import slayerc.slayer as slayer`` gives this package; lava-dl SLAYER code runs unchanged with
only the import changed.  See ``docs/differences-from-lava-dl.md`` for the places where slayerc
deliberately differs (each a lava-dl bug).
"""

from . import (
    auto,
    axon,
    block,
    classifier,
    dendrite,
    io,
    loss,
    neuron,
    obd,
    spike,
    synapse,
    utils,
)

__all__ = [
    "neuron", "axon", "dendrite", "spike", "synapse", "block", "classifier", "loss", "io", "utils",
    "auto", "obd", "object_detection",
]

object_detection = obd  # lava-dl's module name
