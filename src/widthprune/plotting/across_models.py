"""The study's claims across models: knowledge and instruction following against the share of
parameters removed, on the MLP's scale and on the whole model's.

Two panels side by side on one figure (like :func:`widthprune.plotting.plot_recovery`); each
panel follows seaborn's axes-level contract otherwise.
"""

from __future__ import annotations

import pandas as pd

__all__ = ["plot_across_models"]

_AXES = (("mlp_removed", "share of MLP parameters removed"),
         ("all_removed", "share of all parameters removed"))  # fmt: skip
_STYLE = {"knowledge": ("-", "o"), "instruction": ("--", "^")}


def plot_across_models(data: pd.DataFrame, *, axes=None):
    """Each model's relative change in knowledge (solid) and instruction following (dashed)
    against the share of MLP parameters (left) and of all parameters (right) removed.

    Args:
        data: :func:`widthprune.analysis.across_models.kind_changes` rows (model, criterion,
            kind, mlp_removed, all_removed, relative). A model with several criteria is drawn
            once per criterion.
        axes: two Axes sharing y (a new figure if omitted).

    Returns:
        The two Axes.
    """
    import matplotlib.pyplot as plt

    if axes is None:
        _, axes = plt.subplots(1, 2, figsize=(11, 4.2), sharey=True)
    lines = data.assign(line=data["model"] + " (" + data["criterion"] + ")")
    names = list(dict.fromkeys(lines["line"]))
    colours = {name: f"C{i % 10}" for i, name in enumerate(names)}
    for ax, (x, label) in zip(axes, _AXES, strict=True):
        for (name, kind), part in lines.groupby(["line", "kind"], sort=False):
            style, marker = _STYLE.get(kind, (":", "s"))
            part = part.sort_values(x)
            ax.plot([0, *part[x]], [0, *part["relative"]], linestyle=style, marker=marker,
                    color=colours[name], markersize=4, linewidth=1.3,
                    label=f"{name}, {kind}")  # fmt: skip
        ax.axhline(0, color="0.6", linewidth=0.8)
        ax.set_xlabel(label)
        ax.xaxis.set_major_formatter(plt.matplotlib.ticker.PercentFormatter(1.0))
    axes[0].yaxis.set_major_formatter(plt.matplotlib.ticker.PercentFormatter(1.0))
    axes[0].set_ylabel("change relative to the unpruned score")
    axes[1].legend(frameon=False, fontsize=7, loc="center left", bbox_to_anchor=(1.02, 0.5))
    return axes
