"""Dendrite modules (``slayer.dendrite``)."""

from slayerc.frontend.slayer.dendrite.sigma import Sigma

__all__ = ["Sigma"]
