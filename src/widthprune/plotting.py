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


def plot_pair(
    data,
    *,
    x: str,
    y: str,
    hue: str = "model",
    label: str = "pruning_pct",
    x_chance: float | None = None,
    ax=None,
):
    """Scatter of two scores, one point per configuration, each labelled (e.g. by pruning %).

    Args:
        data: one row per configuration, columns ``x``, ``y``, ``hue``, ``label``
            (:func:`widthprune.claims.pair_scores`).
        x_chance: draws the chance level of ``x`` as a dotted vertical line.
    """
    import seaborn as sns

    ax = _axes(ax)
    sns.scatterplot(data=data, x=x, y=y, hue=hue, style=hue, s=60, ax=ax)
    for row in data.itertuples(index=False):
        ax.annotate(
            f"{getattr(row, label):g}",
            (getattr(row, x), getattr(row, y)),
            textcoords="offset points",
            xytext=(4, 4),
            fontsize=8,
        )
    if x_chance is not None:
        ax.axvline(x_chance, color="grey", linestyle=":", label=f"chance ({x_chance:g})")
        ax.legend()
    return ax


def plot_change(
    data, *, x: str = "pruning_pct", hue: str = "task", style: str | None = "model", ax=None
):
    """Change from the unpruned baseline against pruning, with its interval as a band.

    Args:
        data: :func:`widthprune.stats.baseline_change` rows (estimate, ci_low, ci_high).
    """
    import seaborn as sns

    ax = _axes(ax)
    sns.lineplot(data=data, x=x, y="estimate", hue=hue, style=style, marker="o", ax=ax)
    palette = dict(
        zip(data[hue].unique(), sns.color_palette(n_colors=data[hue].nunique()), strict=True)
    )
    for keys, part in data.groupby([hue] + ([style] if style else []), sort=False):
        key = keys[0] if isinstance(keys, tuple) else keys
        part = part.sort_values(x)
        ax.fill_between(part[x], part["ci_low"], part["ci_high"], color=palette[key], alpha=0.15)
    ax.axhline(0, color="grey", linewidth=0.8)
    ax.set_ylabel("change from the unpruned model")
    return ax


def plot_intervals(
    data,
    *,
    y: str,
    hue: str | None = None,
    estimate: str = "estimate",
    ref: float | None = 0.0,
    ax=None,
):
    """Forest plot: one estimate with its interval (ci_low, ci_high) per row of ``data``.

    Args:
        data: tidy statistics rows (any function of :mod:`widthprune.stats`).
        y: column labelling the rows; ``hue`` colours them (points are dodged by hue).
        ref: draws a reference line (e.g. 0 for no effect).
    """
    import seaborn as sns

    ax = _axes(ax)
    labels = list(dict.fromkeys(data[y]))
    groups = list(dict.fromkeys(data[hue])) if hue else [None]
    colors = sns.color_palette(n_colors=len(groups))
    step = 0.7 / max(len(groups), 1)
    for g, (group, color) in enumerate(zip(groups, colors, strict=True)):
        part = data if group is None else data[data[hue] == group]
        pos = [labels.index(v) + (g - (len(groups) - 1) / 2) * step for v in part[y]]
        ax.errorbar(
            part[estimate],
            pos,
            xerr=[part[estimate] - part["ci_low"], part["ci_high"] - part[estimate]],
            fmt="o",
            color=color,
            capsize=3,
            label=group,
        )
    ax.set_yticks(range(len(labels)), labels)
    ax.invert_yaxis()
    if ref is not None:
        ax.axvline(ref, color="grey", linewidth=0.8)
    if hue:
        ax.legend(title=hue)
    ax.set_xlabel(estimate)
    return ax
