"""Statistics on hand-computable inputs."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest
from scipy import stats as st

from widthprune.analysis.claims import (
    TOY_TASKS,
    correlation_robustness,
    dichotomy,
    toy_paired,
)
from widthprune.analysis.comparisons import compare_configs, compare_items
from widthprune.analysis.correlation import correlation, kendall, pearson, spearman
from widthprune.analysis.published import published
from widthprune.analysis.stats import adjust, baseline_change, chance_floor, regress


def test_batched_correlations_equal_scipy():
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=(5, 11)), rng.normal(size=(5, 11))
    y[:, 3] = y[:, 4]  # ties
    for ours, ref in ((pearson, st.pearsonr), (spearman, st.spearmanr), (kendall, st.kendalltau)):
        want = [ref(a, b).statistic for a, b in zip(x, y, strict=True)]
        np.testing.assert_allclose(ours(x, y), want, rtol=1e-12)
    assert np.isnan(pearson(np.ones(4), np.arange(4.0)))


def test_perfectly_linear_pair():
    x = np.arange(6.0)
    out = correlation(x, 2 * x + 1, n_resamples=999).set_index("method")
    np.testing.assert_allclose(out["estimate"], 1.0)
    np.testing.assert_allclose(out[["loo_min", "loo_max", "ci_low", "ci_high"]], 1.0)
    # exact over the 720 pairings of 6 points: only the identity and its reverse reach |r| = 1
    assert out.loc["pearson", "p_perm"] == pytest.approx(2 / 720)
    assert out.loc["pearson", "perm_test"] == "exact, 720 pairings"
    assert out.loc["pearson", "p"] < 1e-6 and (out["n"] == 6).all()


def test_correlation_rejects_bad_input():
    with pytest.raises(ValueError, match="equal length"):
        correlation([1, 2, 3], [1, 2])


def test_regression_recovers_slope_and_model_offset():
    frame = pd.DataFrame({"expansion_ratio": [1.0, 2.0, 3.0] * 2, "model": ["a"] * 3 + ["b"] * 3})
    frame["value"] = 0.5 * frame.expansion_ratio + np.where(frame.model == "b", 1.0, 0.0)
    frame.loc[0, "value"] += 0.01  # keep the residual variance above zero
    out = regress(frame, "value ~ expansion_ratio + C(model)").set_index("term")
    assert out.loc["expansion_ratio", "estimate"] == pytest.approx(0.5, abs=0.01)
    assert out.loc["C(model)[T.b]", "estimate"] == pytest.approx(1.0, abs=0.01)
    assert out.loc["expansion_ratio", "ci_low"] < 0.5 < out.loc["expansion_ratio", "ci_high"]
    assert (out["n"] == 6).all()


def test_holm_and_bh_on_three_p_values():
    frame = pd.DataFrame({"p": [0.01, 0.04, 0.03]})
    holm = adjust(frame, method="holm")
    # sorted 0.01, 0.03, 0.04 -> 3*0.01, max(2*0.03, .03), max(1*0.04, .06)
    np.testing.assert_allclose(holm["p_adj"], [0.03, 0.06, 0.06])
    bh = adjust(frame, method="bh")
    np.testing.assert_allclose(bh["p_adj"], [0.03, 0.04, 0.04])
    assert list(holm["reject"]) == [True, False, False]
    with pytest.raises(ValueError, match="holm"):
        adjust(frame, method="sidak-ish")


def _samples(values, task="t", metric="acc"):
    return pd.DataFrame(
        {"task": task, "doc_id": range(len(values)), "metric": metric, "value": values}
    )


def test_mcnemar_by_hand():
    # 10 items: both right on 3, only b right on 5, only a right on 1, both wrong on 1
    a = [1, 1, 1, 0, 0, 0, 0, 0, 1, 0]
    b = [1, 1, 1, 1, 1, 1, 1, 1, 0, 0]
    out = compare_items(_samples(a), _samples(b), n_resamples=500).iloc[0]
    assert (out.b_better, out.a_better, out.n) == (5, 1, 10)
    assert out.estimate == pytest.approx(0.4)
    # exact McNemar: two-sided binomial on 6 discordant items, 1 of them for a
    assert out.p == pytest.approx(2 * (1 + 6) / 64)
    assert out.ci_low <= 0.4 <= out.ci_high
    assert out.method.startswith("McNemar")


def test_paired_continuous_difference():
    rng = np.random.default_rng(0)
    a = rng.normal(size=200)
    out = compare_items(_samples(a, metric="loss"), _samples(a + 0.5, metric="loss")).iloc[0]
    assert out.estimate == pytest.approx(0.5)
    assert out.ci_low == pytest.approx(0.5) and out.ci_high == pytest.approx(0.5)
    noisy = compare_items(
        _samples(a, metric="loss"), _samples(a + 0.5 + rng.normal(0, 1, 200), metric="loss")
    )
    row = noisy.iloc[0]
    assert row.p < 1e-3 and row.ci_low < row.estimate < row.ci_high and row.effect > 0.2


def test_unpaired_items_are_an_error():
    with pytest.raises(ValueError, match="only one of the two"):
        compare_items(_samples([1, 0, 1]), _samples([1, 0]))


def test_compare_configs_adjusts_over_the_family():
    frames = [_samples([1, 0] * 20).assign(config="base")]
    frames.append(_samples([1, 1] * 20).assign(config="x"))
    frames.append(_samples([1, 0] * 20).assign(config="y"))
    out = compare_configs(pd.concat(frames), baseline="base", n_resamples=200).set_index("config")
    assert out.loc["y", "p"] == 1.0 and out.loc["x", "b_better"] == 20
    assert out.loc["x", "p_adj"] == pytest.approx(min(1, 2 * out.loc["x", "p"]))


def test_chance_floor():
    frame = pd.DataFrame(
        {
            "task": ["mmlu", "mmlu", "ifeval"],
            "metric": ["acc", "acc", "x"],
            "value": [0.25, 0.6, 0.3],
            "n": [1000, 1000, 500],
        }
    )
    out = chance_floor(frame)
    assert list(out["chance"][:2]) == [0.25, 0.25] and np.isnan(out["chance"].iloc[2])
    assert out["p"].iloc[0] == pytest.approx(
        st.binomtest(250, 1000, 0.25, alternative="greater").pvalue
    )
    assert list(out["at_chance"][:2]) == [True, False]
    # a chance column (as the toy sweep's results carry) takes precedence
    toy = chance_floor(frame.assign(chance=[0.5, 0.5, 0.1], stderr=[0.01, 0.01, 0.02], n=None))
    assert toy["estimate"].tolist() == pytest.approx([-0.25, 0.1, 0.2])
    assert toy["p"].iloc[2] == pytest.approx(st.norm.sf(10))


def test_baseline_change_z():
    frame = pd.DataFrame(
        {
            "model": "m",
            "task": "t",
            "metric": "acc",
            "pruning_pct": [0, 10],
            "value": [0.5, 0.4],
            "stderr": [0.03, 0.04],
        }
    )
    row = baseline_change(frame).iloc[0]
    assert row.estimate == pytest.approx(-0.1)
    assert row.p == pytest.approx(2 * st.norm.sf(0.1 / 0.05))


def test_published_claims():
    bench = published()
    rob = correlation_robustness(bench)
    head = rob[(rob.scope == "Llama-3.2-3B") & (rob.method == "pearson")].iloc[0]
    assert round(head.estimate, 3) == -0.864 and round(head.p, 3) == 0.012
    # exact permutation test, two-sided on |r|: 160 of the 5040 pairings reach |r| >= 0.864
    assert head.p_perm == pytest.approx(160 / 5040)
    dich = dichotomy(bench).set_index(["model", "task", "metric"])
    assert dich.loc[("Llama-3.2-3B", "mmlu", "acc"), "direction"] == "falls"
    ifeval = dich.loc[("Llama-3.2-3B", "ifeval", "prompt_level_strict_acc")]
    # IFEval rises in 3B, but after Holm over the table only 3 of 6 pruned configs: "holds"
    assert (ifeval.better, ifeval.worse, ifeval.direction) == (3, 0, "holds")
    assert dich.loc[("Llama-3.2-1B", "ifeval", "prompt_level_strict_acc"), "better"] == 1
    assert (
        dich.loc[("Llama-3.2-1B-Instruct", "ifeval", "prompt_level_strict_acc"), "direction"]
        == "falls"
    )


def _toy(rng):
    rows, samples = [], []
    for pct, p_know, p_inst in ((0, 0.9, 0.5), (20, 0.6, 0.5), (40, 0.3, 0.55)):
        cfg = f"c{pct}"
        for task, metric, p in (
            ("toy_knowledge", "acc", p_know),
            ("toy_instructions", "prompt_level_strict_acc", p_inst),
        ):
            vals = (rng.random(300) < p).astype(float)
            samples.append(_samples(vals, task, metric).assign(config=cfg))
            rows.append(
                {
                    "config": cfg,
                    "model": "toy",
                    "criterion": "ppm",
                    "pruning_pct": pct,
                    "task": task,
                    "metric": metric,
                    "filter": "none",
                    "value": vals.mean(),
                    "stderr": vals.std(ddof=1) / np.sqrt(300),
                    "n": 300,
                    "chance": 0.25,
                }
            )
    return pd.DataFrame(rows), pd.concat(samples)


def test_toy_sections_on_synthetic_frames():
    results, samples = _toy(np.random.default_rng(0))
    out = toy_paired(results, samples, n_resamples=200)
    assert len(out) == 4 and set(out.pruning_pct) == {20, 40}
    know = out[(out.task == "toy_knowledge") & (out.pruning_pct == 40)].iloc[0]
    assert know.estimate < -0.4 and know.p_adj < 1e-6
    dich = dichotomy(
        results,
        by=("model", "criterion"),
        tasks=TOY_TASKS,
    )
    assert dich.set_index("task").loc["toy_knowledge", "direction"] == "falls"


def test_chance_interval_is_two_sided():
    out = chance_floor(
        pd.DataFrame({"task": ["mmlu"], "metric": ["acc"], "value": [0.3], "n": [1000]})
    )
    ci = st.binomtest(300, 1000).proportion_ci(0.95, method="wilson")
    assert out.ci_low.iloc[0] == pytest.approx(ci.low - 0.25)
    assert out.ci_high.iloc[0] == pytest.approx(ci.high - 0.25)


def test_plots_draw_one_mark_per_row():
    import matplotlib

    matplotlib.use("Agg")
    from widthprune import plotting

    pairs = pd.DataFrame(
        {
            "model": ["a"] * 3,
            "pruning_pct": [0, 10, 20],
            "x": [0.5, 0.3, 0.25],
            "y": [0.4, 0.42, 0.45],
        }
    )
    ax = plotting.plot_pair(pairs, x="x", y="y", x_chance=0.25)
    assert len(ax.texts) == 3 and len(ax.collections[0].get_offsets()) == 3
    rows = pd.DataFrame(
        {
            "scope": ["s1", "s2"],
            "estimate": [0.1, -0.2],
            "ci_low": [0.0, -0.4],
            "ci_high": [0.2, 0.1],
        }
    )
    ax = plotting.plot_intervals(rows, y="scope")
    assert [t.get_text() for t in ax.get_yticklabels()] == ["s1", "s2"]
    change = baseline_change(
        pd.DataFrame(
            {
                "model": "m",
                "task": ["t"] * 3,
                "metric": "acc",
                "pruning_pct": [0, 10, 20],
                "value": [0.5, 0.4, 0.3],
                "n": 100,
            }
        )
    )
    ax = plotting.plot_change(change, hue="task", style="model")
    np.testing.assert_allclose(ax.lines[0].get_ydata(), [-0.1, -0.2])


def test_sign_flip_exact_equals_brute_force():
    from widthprune.analysis.comparisons import sign_flip

    d = np.array([0.5, -0.2, 0.3, 0.0, 0.7, 0.1, -0.4, 0.6, 0.0, 0.25])
    nz = d[d != 0]
    sums = [np.sum(nz * s) for s in itertools.product((-1, 1), repeat=nz.size)]
    want = np.mean(np.abs(sums) >= abs(nz.sum()) - 1e-12)
    p, floor, how = sign_flip(d, n_resamples=10, rng=np.random.default_rng(0))
    assert p == pytest.approx(want) and floor == 2 / 2**8
    assert how == "sign-flip exact (256 patterns)"


def test_family_resamples_let_holm_reach_the_level():
    from widthprune.analysis.comparisons import family_resamples

    assert family_resamples(120, alpha=0.05) == 24000
    with pytest.raises(ValueError, match="family"):
        family_resamples(0)


def test_far_from_zero_comparisons_survive_holm_over_a_large_family():
    # 20 pruned configs x 6 per-item scores that are not 0/1 (perplexities, shares of
    # instructions): 120 tests, as in the toy sweep. Every config is 0.5 above the baseline,
    # its interval far from zero. With 2000 random sign patterns the smallest p is 1/2001 and
    # Holm multiplies it by 120 (0.06): nothing would be significant.
    rng = np.random.default_rng(0)
    base = rng.normal(size=(6, 40))
    frames = []
    for c in range(21):
        shift = 0.0 if c == 0 else 0.5
        for m in range(6):
            vals = base[m] + shift + (rng.normal(0, 0.1, 40) if c else 0)
            frames.append(_samples(vals, metric=f"m{m}").assign(config=f"c{c}"))
    out = compare_configs(pd.concat(frames), baseline="c0", n_resamples=2000)
    assert len(out) == 120 and (out.ci_low > 0.4).all()
    assert (out.p_floor <= 0.05 / 120 / 10).all()
    assert out.reject.all() and out.p_adj.max() < 0.01


def test_scores_without_a_standard_error_are_not_counted_by_sign():
    """Perplexity "worse in 6 of 6" came from signs alone, a count that could not fail."""
    dich = dichotomy(published()).set_index(["model", "task", "metric"])
    ppl = dich.loc[("Llama-3.2-3B", "wikitext", "word_perplexity")]
    assert ppl.tested == 0 and ppl.direction == "not tested"
    assert pd.isna(ppl.worse) and pd.isna(ppl.better)
    mmlu = dich.loc[("Llama-3.2-3B", "mmlu", "acc")]
    assert mmlu.tested == 6 and mmlu.worse == 6
    # the same scores with a standard error are tested, and a flat score then holds
    flat = pd.DataFrame(
        {
            "model": "m",
            "task": "wikitext",
            "metric": "word_perplexity",
            "filter": "none",
            "pruning_pct": [0, 10, 20, 30],
            "value": [10.0, 10.1, 10.2, 10.3],
        }
    )
    assert dichotomy(flat).direction.iloc[0] == "not tested"
    tested = dichotomy(flat.assign(stderr=1.0)).iloc[0]
    assert (tested.tested, tested.worse, tested.direction) == (3, 0, "holds")


def test_few_points_bound_the_permutation_p_and_the_family_is_corrected():
    from widthprune.analysis.correlation import smallest_p

    # five skewed points: one pairing of the 120 reaches the largest |r| (both sorted)
    x, y = np.array([0.0, 1.0, 2.0, 3.0, 7.0]), np.array([0.0, 1.0, 3.0, 2.0, 10.0])
    assert smallest_p(x, y) == pytest.approx(1 / 120)
    # Spearman: the perfect order and its reverse tie in size
    assert smallest_p(x, y, "spearman") == pytest.approx(2 / 120)
    rob = correlation_robustness(published(), n_resamples=999)
    assert (rob.p_perm >= rob.p_min - 1e-12).all()
    assert (rob.p_perm_adj >= rob.p_perm).all() and rob.p_perm_adj.max() <= 1
    family = f"Holm over the {len(rob)} permutation tests of the table"
    assert rob.family.unique().tolist() == [family]
    head = rob[(rob.scope == "Llama-3.2-3B") & (rob.method == "pearson")].iloc[0]
    assert head.p_perm < 0.05 < head.p_perm_adj  # the headline alone, not in its family


def test_the_chance_check_is_undetermined_where_the_interval_and_the_test_disagree():
    from widthprune.analysis.abstract import correlation_checks

    rob = correlation_robustness(published(), n_resamples=999)
    checks = correlation_checks(rob, "Llama-3.2-3B")
    assert checks == {
        "permutation": True,
        "ranks": False,
        "leave one out": True,
        "above chance": None,
    }
    # the same rows with the interval reaching zero: the check fails
    above = rob.scope == "Llama-3.2-3B, mmlu above chance"
    wide = rob.assign(ci_high=rob.ci_high.where(~above, 0.1))
    assert correlation_checks(wide, "Llama-3.2-3B")["above chance"] is False


def test_mc2_floor_is_the_mean_share_of_true_answers_and_needs_items_we_do_not_ship():
    from pathlib import Path

    from widthprune.analysis.stats import mc2_floor

    assert mc2_floor([1, 3], [3, 1]) == pytest.approx((0.25 + 0.75) / 2)
    assert mc2_floor([2], [2]) == 0.5
    with pytest.raises(ValueError, match="at least one answer"):
        mc2_floor([0], [4])
    # the book says the floor cannot be computed here: no TruthfulQA items are installed
    import widthprune.evaluation as evaluation

    tasks = Path(evaluation.__file__).parent / "tasks"
    assert not [p for p in tasks.rglob("*") if "truthful" in p.name.lower()]
    from widthprune.analysis.stats import CHANCE

    assert ("truthfulqa_mc2", "acc") not in CHANCE
