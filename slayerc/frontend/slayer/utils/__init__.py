"""Utilities (``slayer.utils``): quantization, learning statistics, time shift/replicate.

As in lava-dl, ``slayer.utils.quantize`` is the quantize *function*; the module is
``slayerc.slayer.utils.quantize`` in ``sys.modules``.
"""

from . import time
from .assistant import Assistant
from .quantize import quantize
from .stats import LearningStat, LearningStats

__all__ = ["time", "quantize", "Assistant", "LearningStat", "LearningStats"]
