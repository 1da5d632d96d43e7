"""Spike functions (``slayer.spike``): real and complex (phase) spikes with surrogate gradients."""

from slayerc.frontend.slayer.spike import complex, spike
from slayerc.frontend.slayer.spike.spike import Spike

__all__ = ["Spike", "complex", "spike"]
