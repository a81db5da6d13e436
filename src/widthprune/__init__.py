"""widthprune: structured width pruning of the GLU-MLP layers of Llama-style models.

The public API follows the path of the data::

    model, tok = wp.load("toy")                       # or a Hugging Face id / local folder
    scores = wp.score(model, "ppm")                   # {layer: (intermediate,) float32}
    width = wp.target_width(model.config, pruning_pct=40)
    keep = wp.select_neurons(scores, width)           # {layer: sorted indices}
    wp.prune_mlp_(model, keep)                        # in place
"""

from .architectures import SHAPES, LlamaShape, count_shape_parameters, get_shape, llama_config
from .calibration import calibration_batches
from .efficiency import BenchSettings, load_results, measure
from .energy import EnergyMeter
from .generation import StaticGenerator, generate_plain
from .models import gated_mlps, layer_widths, load, random_model
from .pruning import (
    PruneReport,
    count_parameters,
    prune,
    prune_mlp_,
    save_pruned,
    select_neurons,
    target_width,
)
from .roofline import roofline_table, weight_bytes
from .scoring import CRITERIA, record_mlp_activations, score

__version__ = "0.1.0"

__all__ = [
    "CRITERIA",
    "BenchSettings",
    "EnergyMeter",
    "SHAPES",
    "LlamaShape",
    "PruneReport",
    "StaticGenerator",
    "calibration_batches",
    "count_parameters",
    "count_shape_parameters",
    "gated_mlps",
    "generate_plain",
    "get_shape",
    "layer_widths",
    "llama_config",
    "load",
    "load_results",
    "measure",
    "prune",
    "prune_mlp_",
    "random_model",
    "record_mlp_activations",
    "roofline_table",
    "save_pruned",
    "score",
    "select_neurons",
    "target_width",
    "weight_bytes",
]
