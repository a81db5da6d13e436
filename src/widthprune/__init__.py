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
from .published import build_published_tables, published
from .scoring import CRITERIA, record_mlp_activations, score

__version__ = "0.1.0"

__all__ = [
    "CRITERIA",
    "SHAPES",
    "LlamaShape",
    "PruneReport",
    "build_published_tables",
    "calibration_batches",
    "count_parameters",
    "count_shape_parameters",
    "gated_mlps",
    "get_shape",
    "layer_widths",
    "llama_config",
    "load",
    "prune",
    "prune_mlp_",
    "published",
    "random_model",
    "record_mlp_activations",
    "save_pruned",
    "score",
    "select_neurons",
    "target_width",
]
