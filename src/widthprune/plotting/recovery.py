"""Figures of recovery after pruning: each capability unpruned, pruned and recovered, and the
share of the loss recovered.

Axes-level, following seaborn's contract (see :mod:`widthprune.plotting`), except
:func:`plot_recovery`, which draws two panels side by side on one figure.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .axes import _axes

__all__ = ["plot_recovery", "plot_recovery_losses"]


def plot_recovery(data: pd.DataFrame, *, axes=None):
    """Left: per point and capability, the unpruned, pruned and recovered means. Right: the
    share of the loss recovered with its interval, where pruning cost something.

    Args:
        data: :func:`widthprune.analysis.recovery.recovery_tables` rows.
        axes: two Axes sharing y (a new figure if omitted).

    Returns:
        The two Axes.
    """
    import matplotlib.pyplot as plt

    from ..analysis.recovery import READINGS
    from ..evaluation.catalogue import task_info

    rows = data.reset_index(drop=True)
    both = rows["chat_template"].nunique() > 1
    names = [
        f"{r.point}{' (template)' if both and r.chat_template else ''}\n"
        f"{task_info(r.task).label or r.task}"
        for r in rows.itertuples()
    ]
    if axes is None:
        _, axes = plt.subplots(1, 2, figsize=(10, 0.55 * len(rows) + 1.5), sharey=True)
    left, right = axes
    y = np.arange(len(rows))[::-1]
    three = rows[["unpruned", "pruned", "recovered"]]
    left.hlines(y, three.min(axis=1), three.max(axis=1), color="0.8", zorder=1)
    for column, marker, colour in (("unpruned", "o", "0.3"), ("pruned", "x", "C3"),
                                   ("recovered", "s", "C0")):  # fmt: skip
        left.scatter(rows[column], y, marker=marker, color=colour, label=column, zorder=3)
    left.set_yticks(y, names, fontsize=8)
    left.set_xlabel("score (higher is better)")
    left.legend(frameon=False, fontsize=8, loc="lower left")
    lossy = (rows["reading"] != READINGS[0]).to_numpy() & np.isfinite(rows["share"].to_numpy())
    shown = rows[lossy]
    right.errorbar(
        shown["share"],
        y[lossy],
        xerr=[shown["share"] - shown["share_low"], shown["share_high"] - shown["share"]],
        fmt="s",
        color="C0",
        capsize=3,
    )
    for x in (0, 1):
        right.axvline(x, color="0.6", lw=0.8, ls="--")
    right.set_xlabel("share of the loss recovered (95 % interval),\nwhere pruning cost something")
    return left, right


def plot_recovery_losses(reports: dict, *, window: int = 10, ax=None):
    """The distillation loss of each recovery against its step, with a running mean.

    Args:
        reports: ``{label: recovery report}`` (``losses`` of each step), as a configuration's
            provenance keeps it.
        window: steps of the running mean.
    """
    ax = _axes(ax)
    for label, report in reports.items():
        losses = pd.Series(report["losses"])
        step = losses.index + 1
        (line,) = ax.plot(step, losses.rolling(window, min_periods=1).mean(),
                          label=f"{label} (mean of {window} steps)")  # fmt: skip
        ax.plot(step, losses, alpha=0.25, color=line.get_color())
    ax.set_xlabel("step")
    ax.set_ylabel("KL divergence to the teacher")
    ax.legend(frameon=False)
    return ax
