"""Agreement between criteria: rank correlation of their scores and overlap of kept neurons."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.stats import spearmanr
from torch import Tensor

from ..pruning.selection import select_neurons

__all__ = ["compare_criteria"]


def compare_criteria(scores: dict[str, dict[int, Tensor]], width: int) -> pd.DataFrame:
    """How much two criteria agree, per layer and pair of criteria.

    Args:
        scores: ``{criterion name: {layer: (I,) scores}}`` over the same model.
        width: neurons kept, for the overlap of kept sets.

    Returns:
        One row per (layer, criterion_a, criterion_b), a != b both ways: ``spearman`` (rank
        correlation of the scores), ``overlap`` (fraction of the ``width`` kept neurons the two
        share; ``width / I`` is what two random choices share on average), ``width``.
    """
    names = list(scores)
    kept = {n: select_neurons(scores[n], width) for n in names}
    rows = []
    for a in names:
        for b in names:
            if a == b:
                continue
            for layer in scores[a]:
                shared = np.intersect1d(kept[a][layer].numpy(), kept[b][layer].numpy()).size
                rho = spearmanr(scores[a][layer].numpy(), scores[b][layer].numpy()).statistic
                rows.append(
                    {
                        "layer": layer,
                        "criterion_a": a,
                        "criterion_b": b,
                        "spearman": float(rho),
                        "overlap": shared / width,
                        "width": width,
                    }
                )
    frame = pd.DataFrame(rows)
    first = next(iter(scores.values()))
    frame.attrs["intermediate_size"] = int(next(iter(first.values())).numel())
    return frame
