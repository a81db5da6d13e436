"""Figures of paired comparisons: one configuration against another, changes against width, and
intervals.

Axes-level, following seaborn's contract (see :mod:`widthprune.plotting`).
"""

from __future__ import annotations

import numpy as np

from .axes import _axes, _legend_outside

__all__ = ["plot_pair", "plot_change", "plot_intervals"]


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
    return _legend_outside(ax)


def plot_change(
    data, *, x: str = "pruning_pct", hue: str = "task", style: str | None = "model", ax=None
):
    """Change from the unpruned baseline against pruning, with its interval as a band.

    Each line runs over the x values of the whole frame: where one group has no row (a model
    the study evaluated at fewer percentages), its line and band break instead of drawing
    through widths without data.

    Args:
        data: :func:`widthprune.analysis.stats.baseline_change` rows (estimate, ci_low, ci_high).
    """
    import seaborn as sns

    ax = _axes(ax)
    grid = np.sort(data[x].unique())
    colours = dict(
        zip(data[hue].unique(), sns.color_palette(n_colors=data[hue].nunique()), strict=False)
    )
    styles = list(data[style].unique()) if style else [None]
    marks = dict(zip(styles, ["o", "s", "^", "D", "v", "P"] * len(styles), strict=False))
    dashes = dict(zip(styles, ["-", "--", ":", "-."] * len(styles), strict=False))
    for keys, part in data.groupby([hue] + ([style] if style else []), sort=False):
        keys = keys if isinstance(keys, tuple) else (keys,)
        key, kind = keys[0], keys[1] if style else None
        full = part.groupby(x)[["estimate", "ci_low", "ci_high"]].mean().reindex(grid)
        label = f"{key}, {kind}" if style else str(key)
        colour = colours[key]
        ax.plot(
            grid, full["estimate"], marker=marks[kind], ls=dashes[kind], color=colour, label=label
        )
        ax.fill_between(grid, full["ci_low"], full["ci_high"], color=colour, alpha=0.15)
    ax.axhline(0, color="grey", linewidth=0.8)
    ax.set_ylabel("change from the unpruned model")
    ax.set_xlabel("neurons pruned (%)" if x == "pruning_pct" else x)
    return _legend_outside(ax, title=None)


def plot_intervals(
    data,
    *,
    y: str,
    hue: str | None = None,
    estimate: str = "estimate",
    ref: float | None = 0.0,
    xlabel: str | None = None,
    ax=None,
):
    """Forest plot: one estimate with its interval (ci_low, ci_high) per row of ``data``.

    Args:
        data: tidy statistics rows (any function of :mod:`widthprune.analysis`).
        y: column labelling the rows; ``hue`` colours them (points are dodged by hue).
        ref: draws a reference line (e.g. 0 for no effect).
        xlabel: the x axis' label (default: the ``estimate`` column's name).
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
    ax.set_xlabel(xlabel or estimate)
    return _legend_outside(ax)
