"""The torch oracle of the fused ops: each family's ``dynamics`` from its one home in
:mod:`slayerc.runtime.neurons` (same signatures as :mod:`slayerc.backends.triton.ops`).

Kept as a name for the fallback and the tests; the dynamics themselves live only in the
family modules.
"""

from __future__ import annotations

from slayerc.runtime.dynamics import DynamicsShapeError
from slayerc.runtime.neurons import adrf as _adrf
from slayerc.runtime.neurons import adrf_iz as _adrf_iz
from slayerc.runtime.neurons import alif as _alif
from slayerc.runtime.neurons import cuba as _cuba
from slayerc.runtime.neurons import rf as _rf
from slayerc.runtime.neurons import rf_iz as _rf_iz
from slayerc.runtime.neurons import sigma_delta as _sd
from slayerc.runtime.neurons.common import NO_OUTPUT, Output, apply_output

__all__ = [
    "NO_OUTPUT", "DynamicsShapeError", "Output", "adrf", "adrf_iz", "alif", "apply_output",
    "cuba", "rf", "rf_iz", "sigma_delta",
]

cuba, alif, rf, rf_iz = _cuba.dynamics, _alif.dynamics, _rf.dynamics, _rf_iz.dynamics
adrf, adrf_iz, sigma_delta = _adrf.dynamics, _adrf_iz.dynamics, _sd.dynamics
