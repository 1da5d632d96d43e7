"""Neuron models (``slayer.neuron``): cuba, alif, rf, rf_iz, adrf, adrf_iz, sigma_delta."""

from slayerc.frontend.slayer.neuron import (
    adrf,
    adrf_iz,
    alif,
    base,
    cuba,
    norm,
    rf,
    rf_iz,
    sigma_delta,
)
from slayerc.frontend.slayer.neuron.dropout import Dropout

__all__ = [
    "Dropout", "adrf", "adrf_iz", "alif", "base", "cuba", "norm", "rf", "rf_iz", "sigma_delta",
]
