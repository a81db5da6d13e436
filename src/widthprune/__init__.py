"""widthprune: structured width pruning of the GLU-MLP layers of Llama-style models.

The public API follows the path of the data::

    model, tok = wp.load("toy")                       # or a Hugging Face id / local folder
    scores = wp.score(model, "ppm")                   # {layer: (intermediate,) float32}
    width = wp.target_width(model.config, pruning_pct=40)
    keep = wp.select_neurons(scores, width)           # {layer: sorted indices}
    wp.prune_mlp_(model, keep)                        # in place
    res = wp.evaluate(model, tok, tasks="toy")        # res.summary, res.samples
"""

from .analysis.agreement import compare_criteria
from .analysis.published import build_published_tables, published
from .architectures import (
    SHAPES,
    LlamaShape,
    budget_table,
    count_shape_parameters,
    get_shape,
    llama_config,
)
from .calibration import calibration_batches, calibration_texts
from .config import EvalConfig
from .efficiency.energy import EnergyMeter
from .efficiency.generation import StaticGenerator, generate_plain
from .efficiency.roofline import roofline_table, weight_bytes
from .efficiency.timing import BenchSettings, load_measurements, measure
from .evaluation.harness import PRESETS, EvalResult, evaluate, perplexity
from .evaluation.metrics import CHANCE, aggregate_samples
from .experiment import evaluate_config
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
from .scoring import CRITERIA, record_mlp_activations, score, scores_frame
from .store import load_results, load_samples
from .verification import masked_logits, verify_pruning

__version__ = "0.1.0"

__all__ = [
    "weight_bytes",
    "measure",
    "load_measurements",
    "StaticGenerator",
    "EnergyMeter",
    "BenchSettings",
    "CHANCE",
    "CRITERIA",
    "PRESETS",
    "SHAPES",
    "EvalConfig",
    "EvalResult",
    "LlamaShape",
    "PruneReport",
    "aggregate_samples",
    "budget_table",
    "build_published_tables",
    "calibration_batches",
    "calibration_texts",
    "compare_criteria",
    "count_parameters",
    "count_shape_parameters",
    "evaluate",
    "evaluate_config",
    "gated_mlps",
    "generate_plain",
    "get_shape",
    "layer_widths",
    "llama_config",
    "load",
    "load_results",
    "load_samples",
    "masked_logits",
    "perplexity",
    "prune",
    "prune_mlp_",
    "published",
    "random_model",
    "record_mlp_activations",
    "roofline_table",
    "save_pruned",
    "score",
    "scores_frame",
    "select_neurons",
    "target_width",
    "verify_pruning",
]
