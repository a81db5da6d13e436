"""Figures of a study run: each capability against the share of neurons pruned.

Axes-level functions follow seaborn's contract (long-form ``data=``, keyword arguments,
optional ``ax=``, the Axes returned; no titles, no saving); :func:`plot_curve_panels` lays one
panel per task and returns the axes.
"""

from __future__ import annotations

import matplotlib.pyplot as plt

__all__ = ["plot_curve_panels", "plot_study_curve"]


def plot_study_curve(
    data,
    *,
    band=None,
    x: str = "pruning_pct",
    y: str = "value",
    hue: str = "criterion",
    hue_order: list | None = None,
    ax=None,
):
    """One task's score against ``x``, one line per ``hue`` with 95 % error bars, and the
    random criterion's band (min..max over seeds, its mean dotted) behind them.

    Args:
        data: :func:`~widthprune.analysis.study_curves.capability_curves` rows of one task and
            template (rows of the band's criterion are left out: the band shows them).
        band: :func:`~widthprune.analysis.study_curves.random_band` rows of the same task and
            template, or None.
    """
    import seaborn as sns

    ax = ax or plt.gca()
    if band is not None and len(band):
        band = band.sort_values(x)
        ax.fill_between(band[x], band["low"], band["high"], color="0.85", label="random (seeds)")
        ax.plot(band[x], band["mean"], color="0.5", linestyle=":", linewidth=1)
    data = data[data["criterion"] != "random"] if band is not None else data
    levels = hue_order or list(dict.fromkeys(data[hue]))
    for level, color in zip(levels, sns.color_palette(n_colors=len(levels)), strict=True):
        part = data[data[hue] == level].sort_values(x)
        if part.empty:
            continue
        err = [part[y] - part["ci_low"], part["ci_high"] - part[y]]
        has_err = part["ci_low"].notna().all()
        ax.errorbar(part[x], part[y], yerr=err if has_err else None, marker="o", markersize=4,
                    capsize=2, color=color, label=str(level))  # fmt: skip
    chance = data["chance"].dropna().unique() if "chance" in data else []
    if len(chance) == 1 and chance[0] > 0:
        ax.axhline(chance[0], color="grey", linewidth=0.8, linestyle="--", label="chance")
    if "higher" in data and not data["higher"].all():
        ax.set_yscale("log")
    ax.set_xlabel("neurons pruned (%)" if x == "pruning_pct" else x)
    ax.set_ylabel(str(data["metric"].iloc[0]) if len(data) else y)
    return ax


def plot_curve_panels(data, *, band=None, col: str = "label", col_wrap: int = 4, **kwargs):
    """:func:`plot_study_curve` once per value of ``col`` (knowledge tasks first), one legend.

    Returns:
        The array of Axes (unused panels removed).
    """
    order = data.sort_values(["kind", col], key=lambda s: s.map({"knowledge": 0}).fillna(s))
    panels = list(dict.fromkeys(order[col]))
    cols = min(col_wrap, len(panels))
    rows = -(-len(panels) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.3 * cols, 2.9 * rows), squeeze=False)
    kwargs.setdefault("hue_order", sorted(set(data["criterion"]) - {"random"}))
    for ax, panel in zip(axes.flat, panels, strict=False):
        part = data[data[col] == panel]
        mine = band[band[col] == panel] if band is not None else None
        plot_study_curve(part, band=mine, ax=ax, **kwargs)
        ax.set_title(f"{panel} ({part['kind'].iloc[0]})", fontsize="medium")
    for ax in axes.flat[len(panels) :]:
        ax.remove()
    handles = {}
    for ax in axes.flat[: len(panels)]:
        for h, lab in zip(*ax.get_legend_handles_labels(), strict=True):
            handles.setdefault(lab, h)
    fig.legend(list(handles.values()), list(handles), loc="upper left",
               bbox_to_anchor=(1.0, 1.0), frameon=False, fontsize="small")  # fmt: skip
    fig.tight_layout()
    return axes.flat[: len(panels)]
