"""Figures, following seaborn's axes-level contract, one module per kind of figure.

Every function takes a long-form frame as ``data=`` and keyword arguments, draws on ``ax`` (a
new one if omitted) and returns the Axes. No titles, no ``show()``, no ``savefig``: captions
belong to the book.
"""

from .across_models import plot_across_models
from .capabilities import plot_capabilities, plot_capability_gap, plot_capability_panels
from .comparisons import plot_change, plot_intervals, plot_pair
from .efficiency import (
    plot_alignment,
    plot_energy_comparison,
    plot_energy_per_token,
    plot_gguf_widths,
    plot_latency_decomposition,
    plot_roofline_fraction,
    plot_round_ratios,
    plot_time_per_token,
)
from .recovery import plot_recovery, plot_recovery_losses
from .scores import (
    plot_criterion_agreement,
    plot_layer_overlap,
    plot_parameter_budget,
    plot_score_distributions,
    plot_scores_vs_chance,
)
from .study import plot_curve_panels, plot_study_curve

__all__ = [
    "plot_across_models",
    "plot_alignment",
    "plot_capabilities",
    "plot_capability_gap",
    "plot_capability_panels",
    "plot_change",
    "plot_criterion_agreement",
    "plot_curve_panels",
    "plot_energy_comparison",
    "plot_energy_per_token",
    "plot_gguf_widths",
    "plot_intervals",
    "plot_latency_decomposition",
    "plot_layer_overlap",
    "plot_pair",
    "plot_parameter_budget",
    "plot_recovery",
    "plot_recovery_losses",
    "plot_roofline_fraction",
    "plot_round_ratios",
    "plot_score_distributions",
    "plot_scores_vs_chance",
    "plot_study_curve",
    "plot_time_per_token",
]
