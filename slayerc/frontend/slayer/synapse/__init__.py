"""Synapses (``slayer.synapse``): Conv3d-based layers with a time kernel of 1."""

from . import complex, layer
from .layer import Conv, ConvTranspose, Dense, GenericLayer, Pool, Unpool

__all__ = [
    "layer", "complex", "GenericLayer", "Dense", "Conv", "Pool", "ConvTranspose", "Unpool",
]
