"""A study run: its configurations, curves with the random band, the pattern along the widths,
and the short-answer responses sorted by cause."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from widthprune.analysis import real_model as rm
from widthprune.analysis import study_curves as sc
from widthprune.analysis import study_pattern as sp
from widthprune.analysis.collapse import (
    CAUSES,
    cause_counts,
    classify_response,
    recorded_responses,
    response_table,
)
from widthprune.analysis.study_tables import describe_change, describe_events
from widthprune.runs.config import EvalConfig
from widthprune.runs.study import study_configs


def test_study_configs_match_the_design():
    configs = study_configs("toy", tasks="toy", limit=4, pcts=(20, 40, 60))
    base = [c for c in configs if c.criterion is None]
    assert [(c.chat_template, c.seed) for c in base] == [(False, 0), (True, 0)]
    for criterion in ("ppm", "wanda"):
        mine = [c for c in configs if c.criterion == criterion]
        assert sorted((c.chat_template, c.pruning_pct) for c in mine) == sorted(
            (t, p) for t in (False, True) for p in (20.0, 40.0, 60.0)
        )
    rand = [c for c in configs if c.criterion == "random"]
    assert {c.chat_template for c in rand} == {True} and len(rand) == 9
    assert sorted({c.seed for c in rand}) == [0, 1, 2]
    assert len({c.config_id for c in configs}) == len(configs) == 2 + 12 + 9


def test_a_study_stops_at_its_deadline_and_resumes_shard_by_shard(tmp_path, capsys):
    from widthprune.cli.main import main
    from widthprune.cli.study import _shard
    from widthprune.runs.store import complete_folders
    from widthprune.runs.study import evaluate_study

    configs = study_configs("toy", tasks="toy_knowledge", limit=3, criteria=("ppm",),
                            pcts=(20,), templates=(False,), random_pcts=(40,), seeds=(0,),
                            random_templates=(False,))  # fmt: skip
    assert len(configs) == 3
    # a deadline already past: nothing starts, everything is left for the next call
    assert evaluate_study(configs, "r", tmp_path, deadline=-1) == configs
    assert not (tmp_path / "r").exists()
    # two shards share the run: each stores its own configurations, together all of them
    args = ["study", "toy", "--tasks", "toy_knowledge", "--limit", "3", "--criteria", "ppm",
            "--pcts", "20", "--random-pcts", "40", "--seeds", "0", "--run", "r",
            "--results-dir", str(tmp_path)]  # fmt: skip
    # (the command's design has chat-template configurations, which the toy cannot run: the
    # shards of the design above go through evaluate_study as the command hands them over)
    for index in (0, 1):
        first, count = _shard(f"{index}/2")
        assert evaluate_study(configs[first::count], "r", tmp_path) == []
    assert len(complete_folders("r", tmp_path)) == 3
    for bad in ("2/2", "1", "a/b", "-1/3"):
        with pytest.raises(ValueError, match="--shard must be I/N"):
            _shard(bad)
    assert main(args + ["--shard", "3/2"]) == 2
    assert "--shard must be I/N" in capsys.readouterr().err


def test_the_gpu_budget_of_a_shared_card(monkeypatch):
    from widthprune.evaluation.fastlm import GPU_BUDGET, gpu_budget

    monkeypatch.delenv("WIDTHPRUNE_GPU_BUDGET_GB", raising=False)
    assert gpu_budget() == GPU_BUDGET == 20 << 30
    monkeypatch.setenv("WIDTHPRUNE_GPU_BUDGET_GB", "12.5")
    assert gpu_budget() == int(12.5 * (1 << 30))
    for bad in ("0", "-3", "lots"):
        monkeypatch.setenv("WIDTHPRUNE_GPU_BUDGET_GB", bad)
        with pytest.raises(ValueError, match="WIDTHPRUNE_GPU_BUDGET_GB"):
            gpu_budget()


def _study(n=60):
    """A run of two tasks (a knowledge and an instruction one), one template, ppm at 20 and
    40 % and random at 40 % with three seeds. ppm: knowledge 45 -> 44 -> 10 right, instructions
    30 -> 30 -> 12; random loses more at 40 %."""
    right = {  # (criterion, pct, seed): (knowledge right, instruction right)
        (None, 0, 0): (45, 30),
        ("ppm", 20, 0): (44, 30),
        ("ppm", 40, 0): (10, 31),
        ("random", 40, 0): (5, 12),
        ("random", 40, 1): (8, 14),
        ("random", 40, 2): (3, 10),
    }
    results, samples = [], []
    for (criterion, pct, seed), scores in right.items():
        config = f"{criterion}-{pct}-{seed}"
        for task, metric, k in (
            ("real_sciq", "acc", scores[0]),
            ("real_instructions", "prompt_level_strict_acc", scores[1]),
        ):
            values = [1.0] * k + [0.0] * (n - k)
            results.append({"config": config, "task": task, "metric": metric, "filter": "none",
                            "value": k / n, "stderr": np.sqrt(k / n * (1 - k / n) / n), "n": n,
                            "chance": None, "criterion": criterion or "ppm",
                            "pruning_pct": float(pct), "seed": seed, "chat_template": "False",
                            "final_width": 100 - pct})  # fmt: skip
            samples += [{"config": config, "task": task, "doc_id": str(i), "metric": metric,
                         "value": v} for i, v in enumerate(values)]  # fmt: skip
    results = pd.DataFrame(results)
    base = results[results.criterion.eq("ppm") & results.pruning_pct.eq(0)]
    results = pd.concat([results, base.assign(criterion="random")], ignore_index=True)
    return results, pd.DataFrame(samples)


def test_curves_and_the_random_band():
    results, _ = _study()
    curves = sc.capability_curves(results)
    assert set(curves.kind) == {"knowledge", "instruction"}
    assert (curves.ci_low >= 0).all() and (curves.ci_high <= 1).all()
    band = sc.random_band(curves).set_index(["task", "pruning_pct"])
    sciq = band.loc[("real_sciq", 40.0)]
    assert (sciq.low, sciq.high, sciq.seeds) == (pytest.approx(3 / 60), pytest.approx(8 / 60), 3)
    assert band.loc[("real_sciq", 0.0)].low == pytest.approx(45 / 60)  # starts at the baseline
    place = sc.against_band(curves, sc.random_band(curves)).set_index("task").position
    assert place["real_sciq"] == "above the band" and place["real_instructions"] == "above the band"


def test_the_pattern_appears_along_the_widths():
    results, samples = _study()
    changes = rm.paired_changes(results, samples, n_resamples=200)
    assert len(changes) == 2 * 5 and changes.family.nunique() == 1
    scores = rm.unpruned_scores(results)
    verdicts = sp.patterns(changes, scores).set_index(["criterion", "pruning_pct", "seed"])
    assert verdicts.loc[("ppm", 20.0, 0)].verdict == "neither pattern"  # knowledge holds
    assert verdicts.loc[("ppm", 40.0, 0)].verdict == "the study's pattern"
    assert verdicts.loc[("random", 40.0, 1)].verdict == "neither pattern"  # both fall
    events = sp.pattern_events(verdicts.reset_index())
    row = events[events.criterion == "ppm"].iloc[0]
    assert (row.pruning_pct, row.event) == (40.0, "appears") and len(events) == 1
    text = describe_events(events, verdicts.reset_index())
    assert "`ppm` (as they are): the pattern appears at 40 %." in text
    assert "Neither pattern at any width: `random` (as they are, seed 0)" in text
    inst = changes[(changes.config == "ppm-40-0") & (changes.task == "real_instructions")].iloc[0]
    assert describe_change(inst).startswith("a rise of +0.017 [")
    assert "not significant after correction" in describe_change(inst)


def test_classify_response():
    assert classify_response(" Paris", "Paris", "Paris", 1.0) == "right"
    assert classify_response(" the capital is Paris", "the", "Paris", 0.0) == (
        "answer lost by the extraction"
    )
    assert classify_response(" Helium", "Helium", "He", 0.0) == "wrong answer"  # not a word of it
    assert classify_response(" He.", "He.", "He", 0.0) == "answer lost by the extraction"
    assert classify_response("", "", "Paris", 0.0) == "empty answer"
    assert classify_response(" EonSSSS", "EonSSSS", "Paris", 0.0) == "wrong answer"


def test_response_table_and_counts():
    records = [
        {"task": "real_capitals", "doc_id": 0, "target": "Kabul", "resps": [[" Kabul"]],
         "filtered_resps": ["Kabul"], "exact_match": 1.0},
        {"task": "real_capitals", "doc_id": 1, "target": "Tirana", "resps": [[""]],
         "filtered_resps": [""], "exact_match": 0.0},
        {"task": "real_sciq", "doc_id": 0, "target": 1, "resps": [[(-1.0, False)]], "acc": 1.0},
    ]  # fmt: skip
    table = response_table(records, config="c")
    assert table.cause.tolist() == ["right", "empty answer"]  # the log-likelihood item is left out
    counts = cause_counts(table)
    assert len(counts) == len(CAUSES) and counts["items"].sum() == 2
    assert counts.set_index("cause").loc["empty answer", "share"] == 0.5


def test_the_recorded_collapse_is_the_models():
    table, provenance = recorded_responses("smollm2-ppm40")
    assert "record_responses(" in provenance["call"] and provenance["dtype"] == "float32"
    for _, part in table.groupby(["config", "task"]):
        assert (part.score == (part.cause == "right")).all()  # a right answer is scored 1
    pruned = table[table.config != "unpruned"]
    assert pruned.score.sum() == 0  # as in the recorded GPU run: no item right
    assert (pruned.cause != "answer lost by the extraction").all()
    unpruned = table[table.config == "unpruned"]
    assert unpruned.score.mean() > 0.3


def test_a_study_recovers_its_points_once_for_both_ways_of_evaluating_them(tmp_path):
    """With a recovery setting the points come right after the baselines, each pruned then
    recovered; two configurations that differ only in how they are evaluated distil once in a
    process, and the reused model scores as a fresh distillation does."""
    from widthprune.runs.experiment import forget_models, run_config

    spec = "kd:batch_size=2,lr=0.001,seq_len=16,steps=3,text=toy"
    configs = study_configs("toy", tasks="toy", limit=4, pcts=(20, 40, 60), recovery=spec)
    labels = [(c.label, c.chat_template) for c in configs[:14]]
    assert labels[:2] == [("baseline", False), ("baseline", True)]
    assert labels[2:8] == [
        ("ppm-pct40", False), ("ppm-pct40", True), ("ppm-pct40+kd", False),
        ("ppm-pct40+kd", True), ("ppm-pct60", False), ("ppm-pct60", True),
    ]  # fmt: skip
    assert [c.label for c in configs].count("wanda-pct40+kd") == 2
    assert len({c.config_id for c in configs}) == len(configs) == 2 + 12 + 9 + 6
    assert study_configs("toy", tasks="toy", limit=4) == study_configs(
        "toy", tasks="toy", limit=4, recovery_points=()
    )
    # the same recovered point evaluated twice (here at two item counts, as the two templates)
    first, second = (
        EvalConfig(
            model="toy",
            tasks="toy_knowledge",
            limit=n,
            criterion="ppm",
            pruning_pct=50,
            recovery=spec,
        )  # fmt: skip
        for n in (3, 4)
    )
    forget_models()
    try:
        _, p1 = run_config(first, keep_model=True)
        kept, p2 = run_config(second, keep_model=True)
    finally:
        forget_models()
    assert "reused" not in p1["recovery"] and p2["recovery"]["reused"] is True
    assert p2["recovery"]["losses"] == p1["recovery"]["losses"]
    assert p2["prune_report"] == p1["prune_report"]
    fresh, _ = run_config(second, keep_model=False)
    assert kept.samples.equals(fresh.samples)
    assert kept.summary.equals(fresh.summary)


def test_a_base_model_s_study_takes_plain_prompts_alone(tmp_path, capsys):
    from widthprune.cli.main import main

    args = ["study", "toy", "--tasks", "toy_knowledge", "--limit", "3", "--criteria", "ppm",
            "--pcts", "20", "--random-pcts", "40", "--seeds", "0", "--run", "r",
            "--results-dir", str(tmp_path), "--deadline", "-1"]  # fmt: skip
    assert main(args + ["--templates", "plain"]) == 3  # nothing started: all left
    assert "0 of 3 configurations stored" in capsys.readouterr().out
    assert main(args) == 3  # both templates: baselines and ppm twice, the floor in the template
    assert "0 of 5 configurations stored" in capsys.readouterr().out
    assert main(args + ["--recovery", "kd", "--recovery-points", "ppm:20"]) == 3
    assert "0 of 7 configurations stored" in capsys.readouterr().out
    assert main(args + ["--recovery", "kd", "--recovery-points", "ppm"]) == 2
    assert "--recovery-points takes CRITERION:PCT" in capsys.readouterr().err
