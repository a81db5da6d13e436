"""widthprune: structured width pruning of the GLU-MLP layers of Llama-style models.

The public API follows the path of the data::

    model, tok = wp.load("toy")                       # or a Hugging Face id / local folder
    scores = wp.score(model, "ppm")                   # {layer: (intermediate,) float32}
    width = wp.target_width(model.config, pruning_pct=40)
    keep = wp.select_neurons(scores, width)           # {layer: sorted indices}
    wp.prune_mlp_(model, keep)                        # in place
"""

from .architectures import (
    SHAPES,
    LlamaShape,
    budget_table,
    count_shape_parameters,
    get_shape,
    llama_config,
)
from .calibration import calibration_batches, calibration_texts
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
from .scoring import CRITERIA, compare_criteria, record_mlp_activations, score, scores_frame
from .verification import masked_logits, verify_pruning

__version__ = "0.1.0"

__all__ = [
    "CRITERIA",
    "SHAPES",
    "LlamaShape",
    "budget_table",
    "compare_criteria",
    "masked_logits",
    "scores_frame",
    "verify_pruning",
    "PruneReport",
    "calibration_batches",
    "calibration_texts",
    "count_parameters",
    "count_shape_parameters",
    "gated_mlps",
    "get_shape",
    "layer_widths",
    "llama_config",
    "load",
    "prune",
    "prune_mlp_",
    "random_model",
    "record_mlp_activations",
    "save_pruned",
    "score",
    "select_neurons",
    "target_width",
]
