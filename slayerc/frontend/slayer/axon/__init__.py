"""Axon modules (``slayer.axon``): learnable delay, delay shift, delta encoder."""

from slayerc.frontend.slayer.axon.delay import Delay, delay
from slayerc.frontend.slayer.axon.delta import Delta

__all__ = ["Delay", "Delta", "delay"]
