"""Figures of capabilities against width: one line per criterion, panels per model, and the
knowledge-instruction gap.

Axes-level, following seaborn's contract (see :mod:`widthprune.plotting`).
"""

from __future__ import annotations

import matplotlib.pyplot as plt

from .axes import _axes, _legend_outside, _plain_log

__all__ = ["plot_capabilities", "plot_capability_panels", "plot_capability_gap"]


def plot_capabilities(
    data,
    *,
    x: str = "expansion_ratio",
    y: str = "above_chance",
    hue: str = "task",
    style: str | None = "criterion",
    logy: bool = False,
    ylabel: str | None = None,
    hue_order: list | None = None,
    ax=None,
):
    """Capability curves against expansion ratio with 95 % intervals.

    Args:
        data: :func:`widthprune.capabilities.sweep_capabilities` (or ``published_capabilities``)
            rows; with ``y="above_chance"`` the interval columns ``above_chance_low/high`` are
            drawn, with ``y="value"`` the columns ``ci_low/ci_high``.
        hue: column coloured; ``style``: column drawn with different line styles. Each
            (hue, style) pair is one line, so it must hold one row per ``x``: pick one metric
            per task first.
        logy: logarithmic y axis (perplexities), labelled with plain numbers.
        ylabel: the y axis' label (default: what ``y`` measures).
        hue_order: the ``hue`` levels in colour order (default: as they appear).
    """
    import seaborn as sns

    line = [hue, style] if style else [hue]
    if data.duplicated([*line, x]).any():
        raise ValueError(
            f"several rows per {x} on one line of {line}: choose one metric per task "
            "(e.g. one IFEval metric), or draw the metrics as hue or style"
        )
    ax = _axes(ax)
    low, high = (
        ("above_chance_low", "above_chance_high") if y == "above_chance" else ("ci_low", "ci_high")
    )
    groups = list(hue_order or dict.fromkeys(data[hue]))
    styles = list(dict.fromkeys(data[style])) if style else [None]
    colors = dict(zip(groups, sns.color_palette(n_colors=len(groups)), strict=True))
    dashes = dict(zip(styles, ["-", "--", ":", "-."] * 4, strict=False))
    markers = dict(zip(styles, "osD^v<>" * 3, strict=False))
    for key, part in data.groupby([hue, style] if style else [hue], sort=False, dropna=False):
        g, s = key if style else (key[0], None)
        part = part.sort_values(x)
        err = [part[y] - part[low], part[high] - part[y]]
        err = None if part[low].isna().all() else [e.fillna(0).clip(lower=0) for e in err]
        label = f"{g} · {s}" if style else g
        ax.errorbar(
            part[x],
            part[y],
            yerr=err,
            color=colors[g],
            linestyle=dashes[s],
            marker=markers[s],
            markersize=4,
            capsize=2,
            label=label,
        )
    if y == "above_chance":
        ax.axhline(0, color="0.4", linewidth=0.8, linestyle=":")
        ax.set_ylabel("score above chance (0 = chance, 1 = perfect)")
    else:
        ax.set_ylabel(y)
    if ylabel is not None:
        ax.set_ylabel(ylabel)
    if logy:
        ax.set_yscale("log")
        _plain_log(ax)
    ax.set_xlabel("expansion ratio (intermediate / hidden)")
    ax.invert_xaxis()  # pruning goes from left (wide) to right (narrow)
    ax.legend()
    return _legend_outside(ax)


def plot_capability_panels(data, *, col: str = "model", sharey: bool = True, **kwargs):
    """:func:`plot_capabilities` once per value of ``col``, side by side, one legend outside.

    Args:
        data: as for :func:`plot_capabilities`.
        col: one panel per value (titled with it).
        kwargs: passed to :func:`plot_capabilities` (``style=None`` for one line per hue).

    Returns:
        The array of Axes.
    """
    panels = list(dict.fromkeys(data[col]))
    fig, axes = plt.subplots(
        1, len(panels), figsize=(3.6 * len(panels), 3.8), sharey=sharey, squeeze=False
    )
    hue = kwargs.setdefault("hue", "task")
    kwargs.setdefault("hue_order", list(dict.fromkeys(data[hue])))  # one colour per level
    for ax, panel in zip(axes[0], panels, strict=True):
        plot_capabilities(data[data[col] == panel], ax=ax, **kwargs)
        ax.set_title(str(panel), fontsize="medium")
        ax.get_legend().remove()
        if ax is not axes[0][0]:
            ax.set_ylabel("")
    handles, labels = {}, []
    for ax in axes[0]:
        for h, lab in zip(*ax.get_legend_handles_labels(), strict=True):
            handles.setdefault(lab, h)
    labels = list(handles)
    axes[0][-1].legend(
        [handles[lab] for lab in labels],
        labels,
        loc="upper left",
        bbox_to_anchor=(1.02, 1.0),
        fontsize="small",
        frameon=False,
    )
    fig.tight_layout()
    return axes[0]


def plot_capability_gap(data, *, style: str = "criterion", ax=None):
    """Change of knowledge and of instruction following from the unpruned model, per sweep.

    Args:
        data: :func:`widthprune.analysis.pattern.capability_gap` rows (knowledge_change,
            knowledge_se, instruction_change, instruction_se, expansion_ratio).
        style: column drawn with different line styles (one line per sweep and side).
    """
    import pandas as pd

    sides = {"knowledge": "C0", "instruction": "C3"}
    long = pd.concat(
        [
            data.assign(
                capability=side,
                change=data[f"{side}_change"],
                half=1.96 * data[f"{side}_se"].fillna(0),
            )
            for side in sides
        ],
        ignore_index=True,
    )
    ax = _axes(ax)
    styles = list(dict.fromkeys(long[style]))
    dashes = dict(zip(styles, ["-", "--", ":", "-."] * 4, strict=False))
    markers = dict(zip(styles, "osD^v<>" * 3, strict=False))
    for (side, level), part in long.groupby(["capability", style], sort=False):
        part = part.sort_values("expansion_ratio")
        ax.errorbar(
            part["expansion_ratio"],
            part["change"],
            yerr=part["half"],
            color=sides[side],
            linestyle=dashes[level],
            marker=markers[level],
            markersize=4,
            capsize=2,
            label=f"{side} · {level}",
        )
    ax.axhline(0, color="grey", linewidth=0.8)
    ax.set_xlabel("expansion ratio (intermediate / hidden)")
    ax.set_ylabel("change from the unpruned model")
    ax.invert_xaxis()
    ax.legend()
    return _legend_outside(ax)


# --- efficiency (chapter 7) ---------------------------------------------------------------------
