"""Figures, following seaborn's axes-level contract.

Every function takes a long-form frame as ``data=`` and keyword arguments, draws on ``ax`` (a
new one if omitted) and returns the Axes. No titles, no ``show()``, no ``savefig``: captions
belong to the book.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np


def _axes(ax=None):
    """The Axes to draw on: ``ax`` or a new one of the book's default size."""
    if ax is None:
        _, ax = plt.subplots(figsize=(6.4, 4.0))
    return ax


def _legend_outside(ax, **kw):
    """Move the legend to the right of the axes, where it hides no data."""
    if ax.get_legend() is not None or kw:
        ax.legend(
            loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize="small", frameon=False, **kw
        )
    return ax


def _plain_log(ax, axis: str = "y"):
    """A log axis labelled with plain numbers (5, 10, 20, 50), not powers of ten."""
    from matplotlib.ticker import FuncFormatter, LogLocator

    target = ax.yaxis if axis == "y" else ax.xaxis
    low, high = sorted(ax.get_ylim() if axis == "y" else ax.get_xlim())
    narrow = high / max(low, 1e-300) < 10  # less than a decade: label every integer step
    subs = tuple(range(1, 10)) if narrow else (1.0, 2.0, 5.0)
    target.set_major_locator(LogLocator(base=10, subs=subs))
    target.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    target.set_minor_formatter(FuncFormatter(lambda v, _: ""))
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
        data: long form, e.g. :func:`widthprune.pruning.architectures.budget_table`.
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
    return _legend_outside(ax)


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

    The overlap is coloured against what two random choices share (``width / I``): that level
    is the white centre of the colour scale, so a pair that agrees no better than chance looks
    neutral, not "0.6 of the way to full agreement".

    Args:
        data: :func:`widthprune.compare_criteria` output.
        value: ``"overlap"`` (kept-set overlap) or ``"spearman"`` (centred at 0).
    """
    import seaborn as sns

    ax = _axes(ax)
    table = data.pivot_table(index="criterion_a", columns="criterion_b", values=value)
    for name in table.index.intersection(table.columns):
        table.loc[name, name] = 1.0
    centre = data["width"].iloc[0] / _full_width(data) if value == "overlap" else 0.0
    label = f"kept neurons shared (random choice: {centre:.2f})" if value == "overlap" else value
    sns.heatmap(
        table,
        annot=True,
        fmt=".2f",
        vmin=2 * centre - 1,
        vmax=1,
        center=centre,
        cmap="vlag",
        square=True,
        cbar_kws={"label": label},
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
            label="random choice",
        )
    ax.set_ylabel(f"overlap with {reference}")
    ax.legend(title=None)
    return _legend_outside(ax)


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
    ax.legend()
    return _legend_outside(ax)


def _filter_suffix(filters):
    """`` (filter)`` where lm-eval used a filter other than its default ``none``."""
    return filters.fillna("none").map(lambda f: "" if f == "none" else f" ({f})")


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
