"""Deployment on a laptop: GGUF files for llama.cpp, checked against PyTorch, and their speed."""

from .equivalence import check_gguf
from .export import GGUFExport, export_gguf, quantize_gguf
from .llamacpp import SCHEMES, get_scheme, quantize
from .speed import measure_gguf_speed
from .tensors import WidthWarning, check_plan, plan_tensors, read_tensor_types

__all__ = [
    "SCHEMES",
    "GGUFExport",
    "WidthWarning",
    "check_gguf",
    "check_plan",
    "export_gguf",
    "get_scheme",
    "measure_gguf_speed",
    "plan_tensors",
    "quantize",
    "quantize_gguf",
    "read_tensor_types",
]
