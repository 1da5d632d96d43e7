"""Blocks (``slayer.block``): synapse + neuron + axon bundles, one module per neuron family."""

from . import adrf, adrf_iz, alif, base, cuba, rf, rf_iz, sigma_delta

__all__ = ["base", "cuba", "sigma_delta", "rf", "rf_iz", "alif", "adrf", "adrf_iz"]
