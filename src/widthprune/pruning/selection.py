"""The width a pruned layer keeps (from a ratio or a percentage) and which neurons: pure
functions of a config and of scores."""

from __future__ import annotations

import math

import torch
from torch import Tensor

from .architectures import pct_width

__all__ = ["cut_ties", "select_neurons", "target_width"]


def _current_width(config) -> int:
    width = config.intermediate_size
    if not isinstance(width, int):
        raise ValueError(
            f"config.intermediate_size is {width!r}: the layers have different widths. "
            "Give target_width a uniform model, or select per layer."
        )
    return width


def target_width(
    config,
    *,
    expansion_ratio: float | None = None,
    pruning_pct: float | None = None,
    round_to: int | None = None,
    rounding: str = "floor",
) -> int:
    """The MLP width for a target expansion ratio or pruning percentage.

    ``pruning_pct=p`` removes ``floor(p/100 * I)`` neurons (the study's rule; Llama-3.2 at 10..60 %
    gives 7373, 6554, 5735, 4916, 4096, 3277). ``expansion_ratio=r`` gives ``floor(r * hidden)``.
    Either is then rounded to a multiple of ``round_to`` if given, never above the current width.

    Args:
        config: a model config with ``hidden_size`` and (uniform) ``intermediate_size``.
        expansion_ratio: target intermediate_size / hidden_size, > 0.
        pruning_pct: percentage of neurons to remove per layer, in [0, 100).
        round_to: align the width to a multiple of this (e.g. 64 or 128 for tensor cores).
        rounding: ``"floor"`` or ``"nearest"`` multiple of ``round_to``.

    Raises:
        ValueError: both or neither target given; ratio <= 0; pct outside [0, 100); a width
            above the current one or below 1; an unknown rounding; round_to < 1.
    """
    current = _current_width(config)
    if (expansion_ratio is None) == (pruning_pct is None):
        raise ValueError("Give exactly one of expansion_ratio= or pruning_pct=.")
    if pruning_pct is not None:
        width = pct_width(current, pruning_pct)
    else:
        if not (expansion_ratio > 0 and math.isfinite(expansion_ratio)):
            raise ValueError(f"expansion_ratio must be > 0 and finite, got {expansion_ratio}")
        product = expansion_ratio * config.hidden_size  # inf for a ratio near 1e308
        width = math.floor(round(product, 9)) if product <= current + 1 else product
        if width > current:
            raise ValueError(
                f"expansion_ratio {expansion_ratio} gives width {width:.6g} = {expansion_ratio} x "
                f"{config.hidden_size}, above the current width {current} "
                f"(ratio {current / config.hidden_size:.4g}); pruning cannot grow a model."
            )
    if rounding not in ("floor", "nearest"):
        raise ValueError(f"rounding must be 'floor' or 'nearest', got {rounding!r}")
    if round_to is not None:
        if round_to < 1:
            raise ValueError(f"round_to must be >= 1, got {round_to}")
        unrounded = width
        width = (width // round_to) * round_to
        if (
            rounding == "nearest"
            and unrounded - width >= round_to / 2
            and width + round_to <= current
        ):
            width += round_to
    if width < 1:
        raise ValueError(
            f"The target leaves width {width} (< 1 neuron) from {current}"
            + (f" after rounding to a multiple of {round_to}" if round_to else "")
        )
    return width


def select_neurons(scores: dict[int, Tensor], width: int | dict[int, int]) -> dict[int, Tensor]:
    """The ``width`` highest-scoring neurons of each layer, as sorted indices.

    Ties go to the lower index, so the choice is deterministic.

    Args:
        scores: ``{layer: (I,) scores}``.
        width: neurons to keep, the same for every layer or ``{layer: width}``.

    Returns:
        ``{layer: (width,) int64 indices, ascending}``.
    """
    keep = {}
    for layer, s in scores.items():
        w = width[layer] if isinstance(width, dict) else width
        if not 1 <= w <= s.numel():
            raise ValueError(f"Layer {layer}: cannot keep {w} of {s.numel()} neurons")
        if torch.isnan(s).any():
            raise ValueError(f"Layer {layer}: scores contain NaN")
        order = torch.sort(s.float(), descending=True, stable=True).indices
        keep[layer] = order[:w].sort().values
    return keep


def cut_ties(scores: dict[int, Tensor], width: int | dict[int, int]) -> dict[int, tuple[int, int]]:
    """Where :func:`select_neurons`' tie rule decides: per layer, the neurons whose score equals
    the lowest kept score (``tied``) and how many of them are kept (``kept``).

    A layer with ``tied > kept`` has a tie across the cut: which of the tied neurons survive is
    the rule's choice (the lower indices), not the score's, and under the opposite rule
    ``min(kept, tied - kept)`` of them would change places. Weights quantised to few levels
    (4-bit GGUF files) tie often.

    Returns:
        ``{layer: (tied, kept)}`` for every layer.
    """
    out = {}
    for layer, s in scores.items():
        w = width[layer] if isinstance(width, dict) else width
        ordered = torch.sort(s.float(), descending=True, stable=True).values
        edge = ordered[w - 1]
        tied = int((s.float() == edge).sum())
        kept = int((ordered[:w] == edge).sum())
        out[layer] = (tied, kept)
    return out
