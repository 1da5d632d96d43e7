"""Filtering along time (``slayer.utils.filter``): causal convolution and correlation, fixed FIR
filters and learnable FIR filter banks, as lava-dl's."""

from .conv import conv, corr
from .fir import FIR, FIRBank

__all__ = ["conv", "corr", "FIR", "FIRBank"]
