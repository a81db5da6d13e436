"""Efficiency: timing at a fixed output length, generation paths, NVML energy, the roofline."""

from .energy import EnergyMeter
from .roofline import roofline_table, weight_bytes
from .timing import BenchSettings, load_measurements, measure

__all__ = [
    "BenchSettings",
    "EnergyMeter",
    "load_measurements",
    "measure",
    "roofline_table",
    "weight_bytes",
]
