"""Rounds of efficiency measurements: order, warm-up, resume, spread and the verdict rule."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from widthprune.efficiency.energy import EnergyMeter
from widthprune.efficiency.rounds import (
    compare_rounds,
    measured_keys,
    order_rounds,
    plan_measurements,
    round_ratios,
    separation_chance,
    summarise_rounds,
)
from widthprune.efficiency.timing import COLUMNS, BenchSettings, load_measurements, measure

ROOT = Path(__file__).resolve().parents[1]


def test_each_round_is_a_fresh_reproducible_permutation():
    items = [("s", w, b, "p") for w in (8192, 7373, 4096) for b in (1, 8)]
    ordered = order_rounds(items, 3, seed=7)
    assert ordered == order_rounds(items, 3, seed=7)  # reproducible
    rounds = [[m for r, m in ordered if r == k] for k in range(3)]
    assert all(sorted(r) == sorted(items) for r in rounds)  # each round holds every item once
    assert len({tuple(r) for r in rounds}) == 3  # and in its own order
    assert rounds[0] != items  # shuffled, not the plan's order
    assert order_rounds(items, 2, seed=7) == ordered[: 2 * len(items)]  # same start, fewer rounds
    assert order_rounds(items, 3, seed=8) != ordered
    with pytest.raises(ValueError, match="rounds must be >= 1"):
        order_rounds(items, 0, seed=0)


def test_plan_times_plain_generate_at_the_study_widths_only():
    batches = {"static_cudagraph": [1, 8], "hf_generate": [1]}
    plan = plan_measurements(["1b"], [8192, 7373], [7296, 8192], batches, list(batches))
    assert plan == [
        ("1b", 8192, 1, "static_cudagraph"),
        ("1b", 8192, 8, "static_cudagraph"),
        ("1b", 8192, 1, "hf_generate"),
        ("1b", 7373, 1, "static_cudagraph"),
        ("1b", 7373, 8, "static_cudagraph"),
        ("1b", 7373, 1, "hf_generate"),
        ("1b", 7296, 1, "static_cudagraph"),  # a neighbour: graph path only
        ("1b", 7296, 8, "static_cudagraph"),
    ]


def _rows(values: dict[tuple[int, int], list[float]], metric="energy_per_token"):
    """Measurements of one shape, batch and path: {(width, batch): [value per round]}."""
    rows = [
        {"shape": "1b", "width": w, "batch": b, "path": "static_cudagraph", "round": r,
         "metric": metric, "unit": "J/token", "value": v}
        for (w, b), vs in values.items()
        for r, v in enumerate(vs)
    ]  # fmt: skip
    return pd.DataFrame(rows)


def test_spread_ratios_and_verdicts_by_hand():
    frame = _rows(
        {
            (8192, 1): [1.0, 1.2, 1.1],
            (4096, 1): [0.7, 0.9, 0.8],  # every round below every unpruned round
            (7373, 1): [1.3, 1.1, 1.2],  # overlaps the unpruned range
            (7373, 8): [0.5, 0.6, 0.7],
            (8192, 8): [0.2, 0.3, 0.25],  # 7373 above every unpruned round at batch 8
        }
    )
    spread = summarise_rounds(frame, metrics=["energy_per_token"]).set_index(["width", "batch"])
    assert spread.loc[(4096, 1), ["median", "min", "max", "rounds"]].tolist() == [0.8, 0.7, 0.9, 3]
    assert spread.loc[(4096, 1), "q1"] == pytest.approx(0.75)
    ratios = round_ratios(frame, "energy_per_token").set_index(["width", "batch", "round"])
    assert ratios.loc[(4096, 1, 1), "ratio"] == pytest.approx(0.9 / 1.2)  # paired by round
    assert set(ratios["reference_width"]) == {8192}
    cmp = compare_rounds(frame, "energy_per_token").set_index(["width", "batch"])
    assert cmp["verdict"].to_dict() == {
        (4096, 1): "lower",
        (7373, 1): "undetermined",
        (7373, 8): "higher",
    }
    # three cells, each separated either way by chance with probability 2/20
    assert cmp["family_chance"].tolist() == [pytest.approx(0.3)] * 3
    assert cmp.loc[(4096, 1), "ratio_median"] == pytest.approx(0.8 / 1.1)
    assert cmp.loc[(7373, 8), "ratio_min"] == pytest.approx(0.6 / 0.3)
    assert cmp.loc[(7373, 8), "ratio_max"] == pytest.approx(0.7 / 0.25)
    assert cmp["chance"].tolist() == [pytest.approx(1 / 20)] * 3
    assert separation_chance(3, 3) == pytest.approx(0.05) and separation_chance(1, 1) == 0.5
    # against another reference width
    vs_4096 = compare_rounds(frame.query("batch == 1"), "energy_per_token", reference_width=4096)
    assert vs_4096.set_index("width")["verdict"].to_dict() == {7373: "higher", 8192: "higher"}


def test_a_separation_within_the_margin_is_undetermined():
    """Complete separation by 2 %, which one pass's noise reaches, is not a verdict."""
    frame = _rows({(8192, 1): [1.00, 1.01, 1.005], (7296, 1): [0.98, 0.985, 0.982]})
    cmp = compare_rounds(frame, "energy_per_token").iloc[0]
    assert cmp.value_max < cmp.reference_min and cmp.verdict == "undetermined"
    assert compare_rounds(frame, "energy_per_token", margin=0.01).verdict.iloc[0] == "lower"


def test_files_without_rounds_read_as_round_zero(tmp_path):
    old = _rows({(8192, 1): [1.0], (4096, 1): [0.8]}).drop(columns="round")
    old = pd.concat([pd.DataFrame([{"device": "d", "metric": "idle_power", "value": 70.0}]), old])
    old = old.assign(metric=["idle_power", "tpot", "tpot"]).reindex(
        columns=[c for c in COLUMNS if c != "round"]
    )
    old.to_csv(tmp_path / "old.csv", index=False)
    back = load_measurements(tmp_path / "old.csv")
    assert list(back.columns) == COLUMNS
    assert back["round"].isna().tolist() == [True, False, False]  # the run-level row has none
    assert back["round"].iloc[1:].tolist() == [0, 0]
    assert measured_keys(back) == {
        ("1b", 8192, 1, "static_cudagraph", 0),
        ("1b", 4096, 1, "static_cudagraph", 0),
    }
    assert measured_keys(back, redo=[("1b", 4096, "static_cudagraph")]) == {
        ("1b", 8192, 1, "static_cudagraph", 0)
    }
    eager = back.assign(path="static_eager", value=[70.0, 1.0, float("nan")])
    assert measured_keys(eager) == {("1b", 8192, 1, "static_cudagraph", 0)}  # NaN: not measured


@pytest.mark.parametrize("path", ["static_cudagraph", "hf_generate"])
def test_warmup_requests_are_not_counted(tiny_model, path):
    prompts = []  # one prefill per request: a forward over the whole prompt
    tiny_model.register_forward_pre_hook(
        lambda m, args, kw: prompts.append(1) if kw["input_ids"].shape[1] == 7 else None,
        with_kwargs=True,
    )
    settings = BenchSettings(prompt_len=7, new_tokens=4, min_runs=2, min_window_s=0.0, warmup=3)
    frame = measure(
        tiny_model,
        shape="tiny",
        batch=1,
        path=path,
        settings=settings,
        meter=EnergyMeter(None),
        round_index=4,
    )
    timed = frame.query("metric == 'tpot' and value == value")
    assert len(timed) == 1 and timed["n"].item() == 2  # min_runs, not min_runs + warmup
    first_token = 2 if path == "hf_generate" else 0  # the plain path times TTFT apart
    assert len(prompts) == 3 + first_token + 2
    assert set(frame["round"]) == {4}


def _bench():
    spec = importlib.util.spec_from_file_location("bench", ROOT / "benchmarks/bench_efficiency.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    return bench


def test_bench_measures_each_round_in_its_own_order_and_resumes(tmp_path, capsys):
    bench, out = _bench(), tmp_path / "eff.csv"
    common = ["--quick", "--paths", "static_cudagraph", "--neighbours", "--seed", "3"]
    bench.main([*common, "--rounds", "2", "--warmup", "1", "--out", str(out)])
    frame = load_measurements(out)
    timed = frame.query("metric == 'tpot' and path == 'static_eager'")  # the CPU's graph path
    assert sorted(timed["round"].unique()) == [0, 1]
    plan = plan_measurements(
        ["tiny"], [256, 230], [], {"static_cudagraph": [1, 2]}, ["static_cudagraph"]
    )
    expected = [(r, m[1], m[2]) for r, m in order_rounds(plan, 2, seed=3)]
    assert list(zip(timed["round"], timed["width"], timed["batch"], strict=True)) == expected
    assert expected[:4] != [(1, w, b) for _, w, b in expected[4:]]  # the rounds' orders differ
    assert "spread across rounds" in capsys.readouterr().out
    provenance = json.loads(out.with_suffix(".json").read_text())
    assert provenance["finished"] and provenance["rounds"] == 2 and provenance["seed"] == 3
    assert provenance["settings"]["warmup"] == 1 and provenance["warm_up_seconds"] > 0
    # a third round, resumed, stops at once at its deadline and keeps the first two
    bench.main([*common, "--rounds", "3", "--resume", str(out), "--deadline", "0", "--out",
                str(tmp_path / "more.csv")])  # fmt: skip
    more = load_measurements(tmp_path / "more.csv")
    cols = ["round", "width", "batch", "value"]
    kept = more.query("metric == 'tpot' and path == 'static_eager'")[cols]
    pd.testing.assert_frame_equal(kept.reset_index(drop=True), timed[cols].reset_index(drop=True))
    skipped = json.loads((tmp_path / "more.json").read_text())["skipped_after_deadline"]
    assert sorted(s[4] for s in skipped) == [2] * 4


def test_round_ratio_plot_draws_median_and_range():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from widthprune import plotting

    frame = _rows(
        {(8192, 1): [1.0, 1.0, 1.0], (4096, 1): [0.7, 0.9, 0.8], (7373, 1): [1.3, 1.1, 1.2]}
    )
    ratios = round_ratios(frame, "energy_per_token").assign(measure="energy, batch 1")
    ax = plotting.plot_round_ratios(ratios)
    markers = [ln for ln in ax.lines if ln.get_marker() == "o" and len(ln.get_xdata())]
    assert len(markers) == 1 and list(markers[0].get_ydata()) == pytest.approx([0.8, 1.2])
    bars = [ln.get_ydata() for ln in ax.lines if len(ln.get_ydata()) == 8]  # bar and two caps
    spans = [v for b in bars for v in (np.nanmin(b), np.nanmax(b))]
    assert spans == pytest.approx([0.7, 0.9, 1.1, 1.3])  # from the lowest to the highest round
    assert [t.get_text() for t in ax.get_xticklabels()] == ["4096", "7373"]
    plt.close("all")
