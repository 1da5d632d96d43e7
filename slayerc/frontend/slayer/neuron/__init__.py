"""Neuron models (``slayer.neuron``): cuba, alif, rf, rf_iz, adrf, adrf_iz, sigma_delta, and
lava-dl's ``dynamics`` functions."""

from slayerc.frontend.slayer.neuron import (
    adrf,
    adrf_iz,
    alif,
    base,
    cuba,
    dynamics,
    norm,
    rf,
    rf_iz,
    sigma_delta,
)
from slayerc.frontend.slayer.neuron.dropout import Dropout

__all__ = [
    "Dropout", "adrf", "adrf_iz", "alif", "base", "cuba", "dynamics", "norm", "rf", "rf_iz",
    "sigma_delta",
]
