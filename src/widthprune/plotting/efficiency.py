"""Figures of efficiency and deployment: time per token, roofline fraction, energy, alignment,
latency, rounding, GGUF files.

Axes-level, following seaborn's contract (see :mod:`widthprune.plotting`).
"""

from __future__ import annotations

from .axes import _axes, _legend_outside, _plain_log

__all__ = [
    "plot_time_per_token",
    "plot_roofline_fraction",
    "plot_energy_per_token",
    "plot_alignment",
    "plot_latency_decomposition",
    "plot_energy_comparison",
    "plot_round_ratios",
    "plot_gguf_widths",
]


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
    _plain_log(ax)
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


def plot_round_ratios(data, *, x="width", y="ratio", hue="measure", ax=None):
    """Each width relative to the unpruned one, median and full range across rounds.

    Args:
        data: rows of :func:`widthprune.efficiency.rounds.round_ratios` (one per round), with a
            ``measure`` column naming the metric and batch of each row.
    """
    import seaborn as sns

    ax = _axes(ax)
    dodge = 0.45 if data[hue].nunique() > 1 else False  # seaborn divides by levels - 1
    sns.pointplot(
        data=data, x=x, y=y, hue=hue, estimator="median", errorbar=("pi", 100),
        dodge=dodge, linestyle="none", capsize=0.15, err_kws={"linewidth": 1.2}, ax=ax,
    )  # fmt: skip
    ax.axhline(1.0, color="black", linewidth=0.8)
    ax.set(xlabel="MLP width (intermediate_size)", ylabel="relative to the unpruned width")
    ax.tick_params(axis="x", labelrotation=45)
    return _legend_outside(ax)


_GGUF_LABELS = {
    "file_mib": "GGUF file size (MiB)",
    "bits_per_weight": "bits per weight",
    "prefill": "prefill (tokens/s)",
    "decode": "decode (tokens/s)",
}


def plot_gguf_widths(data, *, y="file_mib", x="width", hue="quant", ax=None):
    """A GGUF measure against MLP width, one line per quantization, widths marked by alignment.

    Args:
        data: rows of :func:`widthprune.deployment.widths.summarize_widths`; for the speeds,
            ``<y>_min`` and ``<y>_max`` columns are drawn as the repeats' range.
    """
    import seaborn as sns

    ax = _axes(ax)
    d = data.sort_values(x).assign(
        width_is=lambda f: f[x].map(
            lambda w: (
                "multiple of 256"
                if w % 256 == 0
                else "multiple of 32"
                if w % 32 == 0
                else "neither"
            )
        )
    )
    sns.lineplot(data=d, x=x, y=y, hue=hue, ax=ax, linewidth=1, legend=False, errorbar=None)
    sns.scatterplot(data=d, x=x, y=y, hue=hue, style="width_is", s=50, ax=ax,
                    style_order=["multiple of 256", "multiple of 32", "neither"])  # fmt: skip
    if f"{y}_min" in d and f"{y}_max" in d:
        ax.vlines(d[x], d[f"{y}_min"], d[f"{y}_max"], color="0.5", linewidth=0.8)
    ax.set(xlabel="MLP width (intermediate_size)", ylabel=_GGUF_LABELS.get(y, y), ylim=(0, None))
    return _legend_outside(ax)
