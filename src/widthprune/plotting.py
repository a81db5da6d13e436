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


def plot_time_per_token(
    data, *, x="width", y="tpot_ms", hue="path", style="batch", roofline="roofline_ms", ax=None
):
    """Decode time per token against MLP width, with the memory roofline as a dashed line.

    Args:
        data: rows of :func:`widthprune.roofline.roofline_table` (one shape).
        roofline: column of the floor time; drawn once per ``style`` level, in black.
    """
    import seaborn as sns

    ax = _axes(ax)
    sns.lineplot(data=data, x=x, y=y, hue=hue, style=style, markers=True, ax=ax)
    floor = data.drop_duplicates([x, style]).sort_values(x)
    for _, g in floor.groupby(style):
        ax.plot(g[x], g[roofline], color="black", linestyle="--", linewidth=1)
    ax.plot([], [], color="black", linestyle="--", linewidth=1, label="memory roofline")
    ax.legend(fontsize="small")
    ax.set(xlabel="MLP width (intermediate_size)", ylabel="decode time per token (ms)")
    return ax


def plot_roofline_fraction(data, *, x="width", y="pct_of_roofline", hue="batch", ax=None):
    """Percentage of the memory roofline reached, per width (100 = at the floor)."""
    import seaborn as sns

    ax = _axes(ax)
    sns.barplot(data=data, x=x, y=y, hue=hue, ax=ax, palette="crest")
    ax.axhline(50, color="black", linestyle=":", linewidth=1)
    ax.set(xlabel="MLP width", ylabel="% of memory roofline")
    ax.tick_params(axis="x", rotation=45)
    return ax


def plot_energy_per_token(data, *, x="width", y="value", hue="batch", style="path", ax=None):
    """Energy per generated token against width (rows of metric ``energy_per_token*``)."""
    import seaborn as sns

    ax = _axes(ax)
    sns.lineplot(data=data, x=x, y=y, hue=hue, style=style, markers=True, ax=ax, palette="crest")
    ax.set(xlabel="MLP width (intermediate_size)", ylabel="energy per token (J)", yscale="log")
    return ax


def plot_alignment(data, *, x="width", y="value", multiple=128, ax=None):
    """Prefill time against width; widths that are multiples of ``multiple`` drawn apart.

    Args:
        data: rows of one shape, batch, path and metric (e.g. ``ttft``).
    """
    import seaborn as sns

    ax = _axes(ax)
    d = data.sort_values(x).assign(
        alignment=lambda f: f[x].map(
            lambda w: f"multiple of {multiple}" if w % multiple == 0 else "unaligned"
        )
    )
    aligned = d[d["alignment"] != "unaligned"]
    ax.plot(aligned[x], aligned[y], color="0.6", linewidth=1, zorder=0)
    sns.scatterplot(data=d, x=x, y=y, hue="alignment", style="alignment", s=60, ax=ax)
    ax.set(xlabel="MLP width (intermediate_size)", ylabel="prefill time (ms)")
    return ax


def plot_latency_decomposition(
    data, *, x="pruning_pct", y="ratio", hue="component", style="model", ax=None
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
    return ax


def plot_energy_comparison(
    data, *, x="pruning_pct", y="relative", hue="source", style="shape", ax=None
):
    """Energy per token relative to the unpruned model: published against measured.

    Args:
        data: rows of :func:`widthprune.energy.relative_energy`.
    """
    import seaborn as sns

    ax = _axes(ax)
    sns.lineplot(data=data, x=x, y=y, hue=hue, style=style, markers=True, ax=ax, errorbar=None)
    ax.axhline(1.0, color="black", linewidth=0.8)
    ax.set(xlabel="neurons pruned (%)", ylabel="energy per token / unpruned")
    return ax
