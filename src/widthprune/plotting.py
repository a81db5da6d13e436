"""Figures, following seaborn's axes-level contract.

Every function takes a long-form frame as ``data=`` and keyword arguments, draws on ``ax`` (a
new one if omitted) and returns the Axes. No titles, no ``show()``, no ``savefig``: captions
belong to the book.
"""

from __future__ import annotations

import matplotlib.pyplot as plt


def _axes(ax=None):
    """The Axes to draw on: ``ax`` or a new one of the book's default size."""
    if ax is None:
        _, ax = plt.subplots(figsize=(6.4, 4.0))
    return ax


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
        data: long form, e.g. :func:`widthprune.architectures.budget_table`.
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
    return ax


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

    Args:
        data: :func:`widthprune.compare_criteria` output.
        value: ``"overlap"`` (kept-set overlap) or ``"spearman"``.
    """
    import seaborn as sns

    ax = _axes(ax)
    table = data.pivot_table(index="criterion_a", columns="criterion_b", values=value)
    for name in table.index.intersection(table.columns):
        table.loc[name, name] = 1.0
    sns.heatmap(
        table,
        annot=True,
        fmt=".2f",
        vmin=-1 if value == "spearman" else 0,
        vmax=1,
        cmap="viridis",
        square=True,
        cbar_kws={"label": value},
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
            label="random expectation",
        )
    ax.set_ylabel(f"overlap with {reference}")
    ax.legend(title=None, fontsize="small")
    return ax


def _full_width(data) -> int:
    """The unpruned width behind a compare_criteria frame (stored in its attrs)."""
    return int(data.attrs.get("intermediate_size", data["width"].iloc[0]))


def plot_scores_vs_chance(data, *, ax=None):
    """One configuration's scores (bars, 95 % intervals) against each metric's chance level.

    Args:
        data: an evaluation summary (``task, metric, filter, value, stderr, chance``); metrics
            outside [0, 1] (perplexities) are left out.
    """
    import numpy as np

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
    ax.legend(loc="lower right", fontsize="small")
    return ax


def _filter_suffix(filters):
    """`` (filter)`` where lm-eval used a filter other than its default ``none``."""
    return filters.fillna("none").map(lambda f: "" if f == "none" else f" ({f})")
