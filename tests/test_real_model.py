"""The real-model analysis on the recorded SmolLM2 run: scores, paired changes, the verdict."""

from __future__ import annotations

import pandas as pd
import pytest

from widthprune.analysis import real_model as rm
from widthprune.analysis.chat_template import prompt_mix, template_effect
from widthprune.analysis.recorded import recorded_provenance, recorded_run, recorded_runs
from widthprune.analysis.study_pattern import patterns


@pytest.fixture(scope="module")
def run():
    results, samples = recorded_run("smollm2-gpu")
    return results, samples, rm.unpruned_scores(results)


@pytest.fixture(scope="module")
def changes(run):
    results, samples, _ = run
    return rm.paired_changes(results, samples, n_resamples=200)


def test_the_recorded_run_and_its_provenance():
    assert "smollm2-gpu" in recorded_runs()
    record = recorded_provenance("smollm2-gpu")
    assert "--limit 1000" in record["command"] and record["commit"]
    assert all("H200" in d for d in record["device"])


def test_unpruned_scores_are_the_baselines_with_normal_intervals(run):
    results, _, scores = run
    base = results[(results.pruning_pct == 0) & (results["filter"] == "none")]
    arc = base[(base.task == "local_arc_easy") & (base.metric == "acc")].iloc[0]
    row = scores.set_index("task").loc["local_arc_easy"]
    assert row.value == arc.value and row.n == arc.n == 1000
    assert row.ci_high - row.value == pytest.approx(1.96 * arc.stderr)
    standing = scores.set_index("task")["standing"]
    assert standing["local_mmlu"] == "at chance" and standing["real_sciq"] == "above chance"
    assert standing["real_perplexity"] == "no chance level"


def test_mmlu_subjects_are_pooled_into_one_task(run):
    results, samples, _ = run
    items = rm.headline_samples(samples, results.task.unique())
    mmlu = items[items.task == "local_mmlu"]
    assert mmlu.groupby("config").size().tolist() == [1026, 1026]
    assert not items.task.str.startswith("local_mmlu_").any()
    assert mmlu.doc_id.str.contains("/").all()


def test_a_paired_change_is_the_mean_of_the_item_differences(run, changes):
    _, samples, _ = run
    arc = samples[(samples.task == "local_arc_easy") & (samples.metric == "acc")]
    wide = arc.pivot_table(index="doc_id", columns="config", values="value")
    row = changes[changes.task == "local_arc_easy"].iloc[0]
    assert row.estimate == pytest.approx((wide[row.config] - wide[row.baseline]).mean())
    assert row.n == 1000 and row.change == "falls"
    assert "real_perplexity" not in set(changes.task)


def test_the_verdict_at_40_percent(run, changes):
    verdict = patterns(changes, run[2]).iloc[0]
    assert verdict.knowledge_tasks == 6 and verdict.knowledge_fall == 6
    assert verdict.instruction_base == pytest.approx(49 / 528)
    # the absolute rule read this interval "holds"; a fifth of 0.093 is narrower than it
    assert -0.05 < verdict.instruction_ci_low and verdict.instruction_ci_high < 0.05
    room = rm.RELATIVE_MARGIN * verdict.instruction_base
    assert verdict.instruction_ci_low < -room
    assert verdict.instruction == "undetermined" and verdict.verdict == "neither pattern"
    assert changes.family.unique().tolist() == [f"Holm over the run's {len(changes)} comparisons"]


def _row(estimate, low, high, reject, base=0.5, floor=0.0, informative=100):
    return pd.Series({"estimate": estimate, "ci_low": low, "ci_high": high, "reject": reject,
                      "base": base, "floor": floor, "informative": informative})  # fmt: skip


def test_classify_change():
    assert rm.classify_change(_row(-0.2, -0.25, -0.15, True)) == "falls"
    assert rm.classify_change(_row(0.1, 0.05, 0.15, True)) == "rises"
    # the margin is a fifth of the distance from the floor: 0.1 at 0.5, 0.05 above chance 0.25
    assert rm.classify_change(_row(0.0, -0.09, 0.09, False)) == "holds"
    assert rm.classify_change(_row(0.0, -0.09, 0.09, False, floor=0.25)) == "undetermined"
    assert rm.classify_change(_row(0.0, -0.04, 0.04, False, floor=0.25)) == "holds"
    assert rm.classify_change(_row(0.0, -0.09, 0.09, False, floor=0.25), margin=0.4) == "holds"
    # a task at its floor cannot hold, however narrow its interval
    assert rm.classify_change(_row(0.0, -0.01, 0.01, False, base=0.24, floor=0.25)) == (
        "undetermined"
    )
    # the loose case the absolute ±0.05 rule let through: 0.05 is half of a 0.093 score
    assert rm.classify_change(_row(0.0, -0.04, 0.04, False, base=0.093)) == "undetermined"
    # below the minimum of informative items a non-significant change cannot be read
    assert rm.classify_change(_row(0.0, -0.09, 0.09, False, informative=19)) == "too few items"
    assert rm.classify_change(_row(-0.4, -0.5, -0.3, True, informative=10)) == "falls"


def test_six_all_zero_prompts_are_too_few_items():
    """Six prompts the model fails before and after pruning: the interval is [0, 0], inside
    any absolute margin, yet no item could have shown a loss."""
    results, samples = _template_run(n=6, right=(0, 0, 0, 0))
    table = template_effect(results, samples, n_resamples=200)
    pruning = table[table.comparison == "pruning"].set_index("chat_template").loc[False]
    assert pruning.ci_low == pruning.ci_high == 0 and pruning.informative == 0
    assert pruning.change == "too few items"


def test_informative_items_count_differences_and_items_above_the_floor():
    a, b = [0, 0, 1, 1, 0.5, 0], [0, 1, 1, 0, 0.5, 0]
    assert rm.informative_items(a, b) == 4  # the two all-zero items carry nothing
    assert rm.informative_items([0] * 6, [0] * 6) == 0
    assert rm.informative_items(a, b, floor=0.5) == 3


def test_the_rule_can_fail(run, changes):
    scores = run[2]
    holds = changes.copy()
    holds.loc[holds.task == "real_instructions", "change"] = "holds"
    assert patterns(holds, scores).verdict.iloc[0] == "the study's pattern"
    falls = changes.copy()
    inst = falls.task == "real_instructions"
    falls.loc[inst, "change"] = "falls"
    falls.loc[falls.task == "real_sciq", "change"] = "undetermined"
    assert patterns(falls, scores).verdict.iloc[0] == "the reverse of the study's pattern"
    unsure = changes.copy()
    unsure.loc[unsure.task == "real_instructions", "change"] = "too few items"
    assert patterns(unsure, scores).verdict.iloc[0] == "neither pattern"
    with pytest.raises(ValueError, match="no paired comparison"):
        patterns(changes, scores, instruction="absent")


def _template_run(n=200, right=(20, 80, 20, 30)):
    """Four configurations of one instruction task: unpruned and ppm 40 %, without and with
    the chat template, with ``right`` items passing in each. By default the template makes 60
    more items pass unpruned (none fail by it); pruning changes nothing without the template
    and fails 50 items with it."""
    keys = [("u", False), ("u", True), ("p", False), ("p", True)]
    values = {k: [1.0] * r + [0.0] * (n - r) for k, r in zip(keys, right, strict=True)}
    results, samples = [], []
    for (point, template), scores in values.items():
        config = f"{point}{int(template)}"
        results.append({"config": config, "task": "real_instructions",
                        "metric": "prompt_level_strict_acc", "filter": "none",
                        "pruning_pct": 0.0 if point == "u" else 40.0,
                        "criterion": None if point == "u" else "ppm",
                        "chat_template": str(template)})  # fmt: skip
        samples += [{"config": config, "task": "real_instructions", "doc_id": i, "filter": "none",
                     "metric": "prompt_level_strict_acc", "value": v}
                    for i, v in enumerate(scores)]  # fmt: skip
    return pd.DataFrame(results), pd.DataFrame(samples)


def test_template_effect_pairs_each_template_and_each_pruning():
    from statsmodels.stats.multitest import multipletests

    from widthprune.analysis.comparisons import compare_items

    results, samples = _template_run()
    table = template_effect(results, samples, n_resamples=200).set_index(
        ["comparison", "chat_template", "pruning_pct"]
    )
    assert len(table) == 4
    unpruned = table.loc[("template", True, 0.0)]
    assert unpruned.estimate == pytest.approx(0.3) and unpruned.base == pytest.approx(0.1)
    assert (unpruned.b_better, unpruned.a_better) == (60, 0) and unpruned.change == "rises"
    same = table.loc[("pruning", False, 40.0)]
    assert same.estimate == same.ci_low == same.ci_high == 0 and same.change == "holds"
    falls = table.loc[("pruning", True, 40.0)]
    assert falls.estimate == pytest.approx(-0.25) and falls.change == "falls"
    assert falls.base == pytest.approx(0.4) and falls.criterion == "ppm"
    # each row is compare_items on the two configurations; Holm over the four
    items = samples.assign(doc_id=samples.doc_id.astype(str))  # as headline_samples keys them
    a, b = items[items.config == "u1"], items[items.config == "p1"]
    direct = compare_items(a, b, n_resamples=200, family=4).iloc[0]
    assert falls.p == direct.p and falls.ci_low == direct.ci_low
    assert list(table.p_adj) == pytest.approx(list(multipletests(table.p, method="holm")[1]))
    with pytest.raises(ValueError, match="not both"):
        template_effect(results[results.chat_template == "False"], samples)
    with pytest.raises(ValueError, match="no results of real_ifbench"):
        template_effect(results, samples, task="real_ifbench")


def test_a_run_varied_on_purpose_is_read_only_when_named():
    from widthprune.analysis.recorded import RECORDED_DIR
    from widthprune.analysis.runs import check_comparable

    results = pd.read_csv(RECORDED_DIR / "smollm2-chat-cpu" / "results.csv")
    with pytest.raises(ValueError, match=r"chat_template: \['False', 'True'\]"):
        check_comparable(results)
    assert check_comparable(results, vary=("chat_template",)) is results
    with pytest.raises(ValueError, match="not compared: \\['width'\\]"):
        check_comparable(results, vary=("width",))
    # varying one field does not let another one slip through
    first = results.config_id.iloc[0]
    other = results.assign(limit=[100 if c == first else 280 for c in results.config_id])
    with pytest.raises(ValueError, match="limit"):
        check_comparable(other, vary=("chat_template",))


def test_the_first_280_instruction_prompts():
    mix = prompt_mix(280)
    assert mix["total"] == 528  # 23 types x 16 single-instruction prompts + 160 with several
    assert (
        mix["single_min"] * mix["types"] <= 280 - mix["multi"] <= mix["single_max"] * mix["types"]
    )
    assert mix["single_max"] - mix["single_min"] <= 1  # rounds over the types keep it balanced
    assert prompt_mix(528)["single_min"] == 16
