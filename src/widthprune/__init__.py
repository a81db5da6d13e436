"""widthprune: structured width pruning of the GLU-MLP layers of Llama-style models.

The public API follows the path of the data::

    model, tok = wp.load("toy")                       # or a Hugging Face id / local folder
    scores = wp.score(model, "ppm")                   # {layer: (intermediate,) float32}
    width = wp.target_width(model.config, pruning_pct=40)
    keep = wp.select_neurons(scores, width)           # {layer: sorted indices}
    wp.prune_mlp_(model, keep)                        # in place
    res = wp.evaluate(model, tok, tasks="toy")        # res.summary, res.samples
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

# Public name -> module that defines it. Imported on first use, so that `import widthprune`
# (and the command line) start in milliseconds; torch and transformers load when needed.
_EXPORTS: dict[str, str] = {
    "aggregate_samples": "evaluation.metrics",
    "BenchSettings": "efficiency.timing",
    "budget_table": "pruning.architectures",
    "build_published_tables": "analysis.published",
    "calibration_batches": "pruning.calibration",
    "calibration_texts": "pruning.calibration",
    "check_gguf": "deployment.equivalence",
    "CHANCE": "evaluation.metrics",
    "compare_criteria": "analysis.agreement",
    "count_parameters": "pruning.surgery",
    "count_shape_parameters": "pruning.architectures",
    "CRITERIA": "pruning.scoring",
    "EnergyMeter": "efficiency.energy",
    "EvalConfig": "runs.config",
    "EvalResult": "evaluation.harness",
    "evaluate": "evaluation.harness",
    "evaluate_config": "runs.experiment",
    "export_gguf": "deployment.export",
    "gated_mlps": "pruning.architectures",
    "generate_plain": "efficiency.generation",
    "get_shape": "pruning.architectures",
    "layer_widths": "pruning.architectures",
    "llama_config": "pruning.architectures",
    "LlamaShape": "pruning.architectures",
    "load": "models.loading",
    "load_measurements": "efficiency.timing",
    "load_results": "runs.store",
    "load_samples": "runs.store",
    "masked_logits": "pruning.verification",
    "measure": "efficiency.timing",
    "perplexity": "evaluation.harness",
    "PRESETS": "evaluation.harness",
    "prune": "pruning.surgery",
    "prune_mlp_": "pruning.surgery",
    "PruneReport": "pruning.surgery",
    "published": "analysis.published",
    "random_model": "models.loading",
    "record_mlp_activations": "pruning.scoring",
    "recover": "pruning.recovery",
    "RecoveryReport": "pruning.recovery",
    "roofline_table": "efficiency.roofline",
    "save_pruned": "pruning.surgery",
    "score": "pruning.scoring",
    "scores_frame": "pruning.scoring",
    "select_neurons": "pruning.selection",
    "SHAPES": "pruning.architectures",
    "StaticGenerator": "efficiency.generation",
    "target_width": "pruning.selection",
    "verify_pruning": "pruning.verification",
    "weight_bytes": "efficiency.roofline",
}
# Sub-modules and sub-packages reachable as attributes (wp.runs, wp.analysis, ...).
_SUBMODULES = frozenset(
    {
        "analysis",
        "chapters",
        "cli",
        "deployment",
        "efficiency",
        "evaluation",
        "models",
        "plotting",
        "pruning",
        "runs",
        "toy",
    }
)

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        value = getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
        globals()[name] = value
        return value
    if name in _SUBMODULES:
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted([*globals(), *_EXPORTS, *_SUBMODULES])
