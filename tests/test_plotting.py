"""Figures a reader can read: legends beside the data, plain log labels, honest colour scales."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from widthprune import plotting  # noqa: E402


def _caps(metrics=("acc",), models=("a", "b")):
    rows = []
    for model in models:
        for metric in metrics:
            for ratio, value in ((4.0, 0.9), (3.0, 0.6), (2.0, 0.3)):
                rows.append(
                    {
                        "model": model,
                        "criterion": "ppm",
                        "task": "t",
                        "metric": metric,
                        "expansion_ratio": ratio,
                        "value": value * 40,
                        "above_chance": value,
                        "above_chance_low": value - 0.05,
                        "above_chance_high": value + 0.05,
                        "ci_low": value * 40 - 1,
                        "ci_high": value * 40 + 1,
                    }
                )
    return pd.DataFrame(rows)


def _outside(ax) -> bool:
    """The legend's anchor lies right of the axes (x > 1 in axes coordinates)."""
    legend = ax.get_legend()
    box = legend.get_bbox_to_anchor().transformed(ax.transAxes.inverted())
    return box.x0 > 1.0


def test_capability_curves_keep_their_legend_outside_and_refuse_two_metrics_per_line():
    ax = plotting.plot_capabilities(_caps(models=("a",)), hue="task")
    assert _outside(ax)
    line = ax.containers[0].lines[0]  # the errorbar container: data line, caps, bars
    np.testing.assert_allclose(np.asarray(line.get_xdata(), float), [2.0, 3.0, 4.0])  # sorted
    np.testing.assert_allclose(np.asarray(line.get_ydata(), float), [0.3, 0.6, 0.9])
    with pytest.raises(ValueError, match="one metric per task"):
        plotting.plot_capabilities(_caps(metrics=("acc", "acc_norm"), models=("a",)), hue="task")


def test_log_axis_reads_plain_numbers():
    ax = plotting.plot_capabilities(
        _caps(models=("a",)), y="value", hue="task", logy=True, ylabel="word perplexity"
    )
    ax.figure.canvas.draw()
    labels = [t.get_text() for t in ax.get_yticklabels() if t.get_text()]
    assert labels and all("10^" not in s and "$" not in s for s in labels)
    assert {"20", "50"} & set(labels)


def test_one_panel_per_model_with_one_legend():
    axes = plotting.plot_capability_panels(_caps(), col="model", hue="task", style=None)
    assert [a.get_title() for a in axes] == ["a", "b"]
    assert axes[0].get_legend() is None and _outside(axes[-1])


def test_overlap_heatmap_is_centred_on_random_choice():
    rows = [
        {
            "layer": 0,
            "criterion_a": a,
            "criterion_b": b,
            "overlap": 0.85,
            "spearman": 0.9,
            "width": 6,
        }
        for a in ("ppm", "wanda")
        for b in ("ppm", "wanda")
        if a != b
    ]
    frame = pd.DataFrame(rows)
    frame.attrs["intermediate_size"] = 10
    ax = plotting.plot_criterion_agreement(frame, value="overlap")
    mesh = ax.collections[0]
    # random choice shares 6 / 10 = 0.6: the scale runs from 0.2 to 1 with 0.6 in the middle
    assert mesh.norm.vmin == pytest.approx(0.2) and mesh.norm.vmax == pytest.approx(1.0)
    assert "random choice: 0.60" in ax.figure.axes[-1].get_ylabel()


def test_gap_figure_draws_both_capabilities_per_criterion():
    gap = pd.DataFrame(
        {
            "criterion": ["ppm", "ppm", "wanda", "wanda"],
            "expansion_ratio": [2.4, 1.6, 2.4, 1.6],
            "knowledge_change": [-0.01, -0.135, -0.05, -0.3],
            "knowledge_se": [0.005, 0.02, 0.01, 0.02],
            "instruction_change": [0.0, -0.22, 0.0, -0.01],
            "instruction_se": [0.0, 0.03, 0.0, 0.005],
        }
    )
    ax = plotting.plot_capability_gap(gap)
    assert len(ax.containers) == 4 and _outside(ax)
    labels = ax.get_legend_handles_labels()[1]
    assert labels == [
        "knowledge · ppm",
        "knowledge · wanda",
        "instruction · ppm",
        "instruction · wanda",
    ]


def test_change_lines_break_where_a_model_has_no_data():
    """1B-Instruct was evaluated at 0/10/40/60 %: no line may run through 20 and 30 %."""
    from widthprune.plotting import plot_change

    rows = [
        {"model": m, "task": "ifeval", "pruning_pct": p, "estimate": e, "ci_low": e - 0.02,
         "ci_high": e + 0.02}
        for m, pcts in (("base", (10, 20, 30, 40)), ("instruct", (10, 40)))
        for p, e in zip(pcts, (0.01, 0.02, 0.03, 0.04), strict=False)
    ]  # fmt: skip
    ax = plot_change(pd.DataFrame(rows))
    lines = {line.get_label(): line for line in ax.lines if not line.get_label().startswith("_")}
    y = lines["ifeval, instruct"].get_ydata()
    assert list(lines["ifeval, instruct"].get_xdata()) == [10, 20, 30, 40]
    assert y[0] == 0.01 and np.isnan(y[1]) and np.isnan(y[2]) and y[3] == 0.02
    assert not np.isnan(lines["ifeval, base"].get_ydata()).any()
