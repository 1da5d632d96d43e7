"""Utilities (``slayer.utils``): filters in time, recurrent loops, quantization, learning
statistics, the training assistant, time shift/replicate and small helpers.

As in lava-dl, ``slayer.utils.quantize`` is the quantize *function*; the module is
``slayerc.slayer.utils.quantize`` in ``sys.modules``.
"""

from . import filter, recurrent, time
from .assistant import Assistant
from .quantize import MODE as QUANTIZE_MODE
from .quantize import quantize, quantize_hook_fx
from .stats import LearningStat, LearningStats
from .utils import diagonal_mask, dotdict, event_rate, staticproperty

__all__ = [
    "filter", "recurrent", "time", "quantize", "quantize_hook_fx", "QUANTIZE_MODE", "Assistant",
    "LearningStat", "LearningStats", "dotdict", "staticproperty", "diagonal_mask", "event_rate",
]
