"""Figures of the scores and what they choose: parameter budgets, score distributions, criteria
agreement, layer overlap, scores against chance.

Axes-level, following seaborn's contract (see :mod:`widthprune.plotting`).
"""

from __future__ import annotations

import numpy as np

from .axes import _axes, _filter_suffix, _legend_outside

__all__ = [
    "plot_parameter_budget",
    "plot_score_distributions",
    "plot_criterion_agreement",
    "plot_layer_overlap",
    "plot_scores_vs_chance",
]


def plot_parameter_budget(
    data,
    *,
    x: str = "expansion_ratio",
    y: str = "parameters",
    hue: str = "model",
    mark: float | None = None,
    ax=None,
):
    """Parameters (in billions) against expansion ratio, one line per model.

    Args:
        data: long form, e.g. :func:`widthprune.pruning.architectures.budget_table`.
        mark: draw a vertical line at this x (e.g. the study's 2.4x point).
    """
    import seaborn as sns

    ax = _axes(ax)
    frame = data.assign(**{y: data[y] / 1e9})
    sns.lineplot(data=frame, x=x, y=y, hue=hue, marker="o", ax=ax)
    if mark is not None:
        ax.axvline(mark, color="0.4", linestyle="--", linewidth=1)
    ax.set_xlabel("expansion ratio (intermediate / hidden)")
    ax.set_ylabel("parameters (billions)")
    return _legend_outside(ax)


def plot_score_distributions(data, *, criterion: str, ax=None):
    """Per-layer distribution of one criterion's neuron scores (a box per layer).

    Args:
        data: long form with ``criterion, layer, score``, e.g. :func:`widthprune.scores_frame`.
        criterion: which criterion to draw.
    """
    import seaborn as sns

    ax = _axes(ax)
    frame = data[data["criterion"] == criterion]
    if frame.empty:
        raise ValueError(f"No scores of criterion {criterion!r} in data")
    sns.boxplot(data=frame, x="layer", y="score", color="C0", fliersize=1.5, ax=ax)
    ax.set_ylabel(f"{criterion} score")
    return ax


def plot_criterion_agreement(data, *, value: str = "overlap", ax=None):
    """Heatmap of the mean over layers of ``value`` for every pair of criteria.

    The overlap is coloured against what two random choices share (``width / I``): that level
    is the white centre of the colour scale, so a pair that agrees no better than chance looks
    neutral, not "0.6 of the way to full agreement".

    Args:
        data: :func:`widthprune.compare_criteria` output.
        value: ``"overlap"`` (kept-set overlap) or ``"spearman"`` (centred at 0).
    """
    import seaborn as sns

    ax = _axes(ax)
    table = data.pivot_table(index="criterion_a", columns="criterion_b", values=value)
    for name in table.index.intersection(table.columns):
        table.loc[name, name] = 1.0
    centre = data["width"].iloc[0] / _full_width(data) if value == "overlap" else 0.0
    label = f"kept neurons shared (random choice: {centre:.2f})" if value == "overlap" else value
    sns.heatmap(
        table,
        annot=True,
        fmt=".2f",
        vmin=2 * centre - 1,
        vmax=1,
        center=centre,
        cmap="vlag",
        square=True,
        cbar_kws={"label": label},
        ax=ax,
    )
    ax.set_xlabel("")
    ax.set_ylabel("")
    return ax


def plot_layer_overlap(data, *, reference: str, ax=None):
    """Per-layer overlap of each criterion's kept set with the ``reference`` criterion's."""
    import seaborn as sns

    ax = _axes(ax)
    frame = data[data["criterion_a"] == reference]
    sns.lineplot(data=frame, x="layer", y="overlap", hue="criterion_b", marker="o", ax=ax)
    if len(frame):
        ax.axhline(
            frame["width"].iloc[0] / _full_width(data),
            color="0.5",
            linestyle=":",
            linewidth=1,
            label="random choice",
        )
    ax.set_ylabel(f"overlap with {reference}")
    ax.legend(title=None)
    return _legend_outside(ax)


def _full_width(data) -> int:
    """The unpruned width behind a compare_criteria frame (stored in its attrs)."""
    return int(data.attrs.get("intermediate_size", data["width"].iloc[0]))


def plot_scores_vs_chance(data, *, ax=None):
    """One configuration's scores (bars, 95 % intervals) against each metric's chance level.

    Args:
        data: an evaluation summary (``task, metric, filter, value, stderr, chance``); metrics
            outside [0, 1] (perplexities) are left out.
    """

    ax = _axes(ax)
    frame = data[(data["value"] >= 0) & (data["value"] <= 1)].copy()
    frame["label"] = frame["task"] + " · " + frame["metric"] + _filter_suffix(frame["filter"])
    frame = frame.sort_values("label", ascending=False).reset_index(drop=True)
    y = np.arange(len(frame))
    half = 1.96 * frame["stderr"].fillna(0).to_numpy()
    ax.barh(y, frame["value"], xerr=half, color="C0", alpha=0.85, capsize=2, label="score")
    chance = frame["chance"].to_numpy(dtype=float)
    ax.scatter(chance, y, marker="|", s=250, color="C3", zorder=3, label="chance")
    ax.set_yticks(y, frame["label"])
    ax.set_xlim(0, 1)
    ax.set_xlabel("score (95 % interval)")
    ax.legend()
    return _legend_outside(ax)
