"""slayerc: a compiler toolchain for spiking neural networks."""

__version__ = "0.1.0"
