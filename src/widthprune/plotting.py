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


# --- efficiency (chapter 7) ---------------------------------------------------------------------


def _legend_outside(ax):
    """Move the legend to the right of the axes, where it hides no data."""
    if ax.get_legend() is not None:
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize="small", frameon=False)
    return ax


def plot_time_per_token(
    data, *, x="width", y="tpot_ms", hue="path", style=None, roofline="roofline_ms", ax=None
):
    """Decode time per token against MLP width, with the memory roofline as a dashed line.

    Args:
        data: rows of :func:`widthprune.roofline.roofline_table` (one shape and batch, or one
            line per ``style`` level).
        roofline: column of the floor time; drawn in black, once per ``style`` level.
    """
    import seaborn as sns

    ax = _axes(ax)
    sns.lineplot(
        data=data,
        x=x,
        y=y,
        hue=hue,
        style=style or hue,
        markers=True,
        dashes=style is not None,
        ax=ax,
    )
    levels = [None] if style is None else sorted(data[style].unique())
    for level in levels:
        g = data if level is None else data[data[style] == level]
        g = g.drop_duplicates(x).sort_values(x)
        ax.plot(g[x], g[roofline], color="black", linestyle="--", linewidth=1)
    ax.plot([], [], color="black", linestyle="--", linewidth=1, label="memory roofline")
    ax.legend()
    ax.set(
        xlabel="MLP width (intermediate_size)", ylabel="decode time per token (ms)", ylim=(0, None)
    )
    return _legend_outside(ax)


def plot_roofline_fraction(data, *, x="width", y="pct_of_roofline", hue="path", ax=None):
    """Percentage of the memory roofline reached, per width (100 = at the floor)."""
    import seaborn as sns

    ax = _axes(ax)
    sns.barplot(data=data, x=x, y=y, hue=hue, ax=ax, palette="crest")
    ax.axhline(50, color="black", linestyle=":", linewidth=1)
    ax.set(xlabel="MLP width", ylabel="% of memory roofline")
    ax.tick_params(axis="x", rotation=45)
    return _legend_outside(ax)


def plot_energy_per_token(data, *, x="width", y="value", hue="batch", style="path", ax=None):
    """Energy per generated token against width (rows of metric ``energy_per_token*``)."""
    import seaborn as sns

    ax = _axes(ax)
    sns.lineplot(data=data, x=x, y=y, hue=hue, style=style, markers=True, ax=ax, palette="crest")
    ax.set(xlabel="MLP width (intermediate_size)", ylabel="energy per token (J)", yscale="log")
    return _legend_outside(ax)


def plot_alignment(data, *, x="width", y="value", multiple=128, ax=None):
    """Prefill time against width; widths that are multiples of ``multiple`` drawn apart.

    Args:
        data: rows of one shape, batch, path and metric (e.g. ``ttft``).
    """
    import seaborn as sns

    ax = _axes(ax)
    label = f"multiple of {multiple}"
    d = data.sort_values(x).assign(
        alignment=lambda f: f[x].map(lambda w: label if w % multiple == 0 else "unaligned")
    )
    aligned = d[d["alignment"] == label]
    ax.plot(aligned[x], aligned[y], color="0.6", linewidth=1, zorder=0)
    sns.scatterplot(data=d, x=x, y=y, hue="alignment", style="alignment", s=60, ax=ax)
    ax.set(xlabel="MLP width (intermediate_size)", ylabel="prefill time (ms)", ylim=(0, None))
    return _legend_outside(ax)


def plot_latency_decomposition(
    data, *, x="pruning_pct", y="ratio", hue="component", style="workload", ax=None
):
    """The published per-request latency, output length and time per token, relative to 0 %.

    Args:
        data: rows of :func:`widthprune.roofline.decompose_published_latency`.
    """
    import seaborn as sns

    ax = _axes(ax)
    sns.lineplot(data=data, x=x, y=y, hue=hue, style=style, markers=True, ax=ax, errorbar=None)
    ax.axhline(1.0, color="black", linewidth=0.8)
    ax.set(xlabel="neurons pruned (%)", ylabel="relative to the unpruned model")
    return _legend_outside(ax)


def plot_energy_comparison(data, *, x="pruning_pct", y="relative", hue="source", ax=None):
    """Energy per token relative to the unpruned model: published against measured.

    Args:
        data: rows of :func:`widthprune.energy.relative_energy`.
    """
    import seaborn as sns

    ax = _axes(ax)
    sns.lineplot(data=data, x=x, y=y, hue=hue, style=hue, markers=True, ax=ax, errorbar=None)
    ax.axhline(1.0, color="black", linewidth=0.8)
    ax.set(xlabel="neurons pruned (%)", ylabel="energy per token / unpruned")
    return _legend_outside(ax)
