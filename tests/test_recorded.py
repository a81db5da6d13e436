"""Recorded runs keep every per-item metric and the responses that recompute each of them."""

from __future__ import annotations

import dataclasses
import json
import math

import numpy as np
import pandas as pd
import pytest
from lm_eval.api.metrics import exact_match_hf_evaluate

import widthprune.runs.experiment as experiment
from widthprune.analysis.recorded import (
    RECORDED_DIR,
    export_run,
    recorded_responses,
    recorded_run,
    recorded_runs,
)
from widthprune.evaluation.tasks.toy.toy_suite import score_instructions
from widthprune.runs.config import EvalConfig
from widthprune.runs.store import complete_folders, read

EXACT = {"keep_default_na": False, "na_values": [""]}  # floats read back bit for bit


def _export(configs, tmp_path, name: str):
    root = tmp_path / "results"
    for config in configs:
        experiment.evaluate_config(config, run=name, root=root)
    out = export_run(name, root, tmp_path / name, provenance={"command": "test"})
    docs = {  # the items' documents, for checkers that read them (not kept in the recording)
        (folder.name, r["task"], r["doc_id"]): r["doc"]
        for folder in complete_folders(name, root)
        for r in read(folder).records
    }
    return out, docs


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    """The bundled toy suite, unpruned and ppm 40 % (which gets some items wrong), 4 items."""
    base = EvalConfig(model="toy", tasks="toy", limit=4)
    pruned = dataclasses.replace(base, criterion="ppm", pruning_pct=40)
    return _export((base, pruned), tmp_path_factory.mktemp("toy"), "toy")


@pytest.fixture(scope="module")
def byte(model_dir, tasks_dir, tmp_path_factory):
    """lm-eval's own scoring: choices from a template (3 to 5 of them), two filters of a
    generation scored with options, and perplexities counted by lm-eval's word rule."""
    config = EvalConfig(
        model=str(model_dir),
        tasks=("tiny", "arc_local", "gsm8k_local"),
        include_path=(str(tasks_dir),),
        num_fewshot=0,
        limit=4,
    )
    return _export((config,), tmp_path_factory.mktemp("byte"), "byte")


@pytest.fixture(scope="module")
def smollm2(tmp_path_factory):
    """The real small model on 2 items of a real multiple-choice and a real generation task."""
    config = EvalConfig(model="smollm2-135m-instruct", tasks=("local_arc_easy", "real_capitals"))
    config = dataclasses.replace(config, limit=2)
    return _export((config,), tmp_path_factory.mktemp("smollm2"), "smollm2")


def _choice_scores(row) -> dict:
    n = len(row.choice_chars)
    lls = np.array(row.loglikelihoods[:n])
    gold = row.gold
    return {
        "acc": float(np.argmax(lls) == gold),
        "acc_norm": float(np.argmax(lls / np.array(row.choice_chars)) == gold),
        "acc_bytes": float(np.argmax(lls / np.array(row.choice_bytes)) == gold),
        "exact_match": float(row.greedy[gold]),
    }


def _generation_scores(row, docs, configs) -> dict:
    """{(metric, filter): (value, weight)} of a generation, by the task's own scoring."""
    config = configs[row.task]
    if config.get("process_results") is not None:  # the toy instruction checker
        raw = score_instructions(docs[(row.config_id, row.task, row.doc_id)], [row.response])
        return {(m, "none"): _item(v) for m, v in raw.items()}
    (metric,) = config["metric_list"]
    options = {k: v for k, v in metric.items() if k not in ("metric", "aggregation")}
    options.pop("higher_is_better", None)
    scored = {
        f: exact_match_hf_evaluate([a], [row.target], **options) for f, a in row.answers.items()
    }
    return {("exact_match", f): (float(s["exact_match"]), 1.0) for f, s in scored.items()}


def _item(raw) -> tuple[float, float]:
    if isinstance(raw, list):  # instruction level: the share followed, weighted by their number
        return float(np.mean(raw)), float(len(raw))
    return float(raw), 1.0


def _recomputed(responses: pd.DataFrame, docs: dict, configs: dict) -> pd.DataFrame:
    """Every per-item (value, weight) from the responses alone (and, for the instruction
    checker, the item's document)."""
    rows = []
    for row in responses.itertuples():
        key = (row.config_id, row.task, row.doc_id)
        if row.output_type == "multiple_choice":
            scores = {(m, "none"): (v, 1.0) for m, v in _choice_scores(row).items()}
        elif row.output_type == "loglikelihood_rolling":
            ll, words, size = row.loglikelihood, row.words, row.bytes
            scores = {
                ("word_perplexity", "none"): (math.exp(-ll / words), float(words)),
                ("byte_perplexity", "none"): (math.exp(-ll / size), float(size)),
                ("bits_per_byte", "none"): (-ll / size / math.log(2), float(size)),
            }
        else:
            scores = _generation_scores(row, docs, configs)
        named = {m["metric"] for m in configs[row.task]["metric_list"]}  # what the task asks
        rows += [(*key, f, m, v, w) for (m, f), (v, w) in scores.items() if m in named]
    columns = ["config_id", "task", "doc_id", "filter", "metric", "value", "weight"]
    return pd.DataFrame(rows, columns=columns)


def _aggregated(responses: pd.DataFrame, recomputed: pd.DataFrame) -> dict:
    """Task-level values by lm-eval's aggregations, items in document order."""
    out = {}
    for (config, task, filt, metric), g in recomputed.groupby(
        ["config_id", "task", "filter", "metric"]
    ):
        g = g.sort_values("doc_id")
        if metric in ("word_perplexity", "byte_perplexity", "bits_per_byte"):
            mine = responses[(responses.config_id == config) & (responses.task == task)]
            mine = mine.sort_values("doc_id")
            units = mine["words" if metric == "word_perplexity" else "bytes"].astype(int)
            mean = sum(mine["loglikelihood"]) / sum(units)
            value = -mean / math.log(2) if metric == "bits_per_byte" else math.exp(-mean)
        elif metric.startswith("inst_level"):  # pooled over every instruction of every prompt
            value = sum(g["value"] * g["weight"]) / sum(g["weight"])
        else:
            value = sum(g["value"]) / len(g)
        out[(config, task, metric, filt)] = value
    return out


@pytest.mark.parametrize("fixture", ["toy", "byte", "smollm2"])
def test_every_item_and_task_score_follows_from_the_responses(fixture, request):
    out, docs = request.getfixturevalue(fixture)
    results = pd.read_csv(out / "results.csv", **EXACT)
    samples = pd.read_csv(out / "samples.csv.gz", **EXACT)
    responses = recorded_responses(out)
    stored = complete_folders(fixture, out.parent / "results")
    configs = json.loads((stored[0] / "provenance.json").read_text())["lm_eval"]["configs"]

    # one row per configuration, task and item, and every task's item counts as lm-eval's
    assert not responses.duplicated(["config_id", "task", "doc_id"]).any()
    counts = responses.groupby(["config_id", "task"]).size()
    leaves = results[results.task.isin(responses.task)].groupby(["config_id", "task"])["n"]
    pd.testing.assert_series_equal(counts, leaves.first(), check_names=False)

    recomputed = _recomputed(responses, docs, configs)
    keys = ["config_id", "task", "doc_id", "filter", "metric"]
    merged = samples.merge(recomputed, on=keys, how="outer", suffixes=("", "_again"))
    assert len(merged) == len(samples) == len(recomputed)  # the same items and metrics
    assert (merged["value"] == merged["value_again"]).all(), merged[
        merged["value"] != merged["value_again"]
    ]
    assert (merged["weight"] == merged["weight_again"]).all()
    assert {"acc", "acc_norm"} <= set(samples.metric)  # every metric kept, not the headline only
    assert 0 < samples[samples.metric.isin(["acc", "exact_match"])]["value"].mean() < 1

    again = _aggregated(responses, recomputed)
    leaf = results[results.task.isin(responses.task)]
    told = {
        (c, t, m, f): v
        for c, t, m, f, v in leaf[["config_id", "task", "metric", "filter", "value"]].itertuples(
            index=False
        )
    }
    assert told == again


def test_responses_hold_what_the_scores_were_computed_from(byte, toy):
    responses = recorded_responses(byte[0])
    arc = responses[responses.task == "arc_local"].set_index("doc_id")
    assert [len(c) for c in arc["choice_chars"]] == [4, 3, 5, 4]  # the items' own choices
    assert arc.loc[0, "choice_chars"] == [5, 11, 5, 5]  # ruler, thermometer, scale, clock
    assert arc.loc[2, "gold"] == 3  # answer key "4" of labels "1".."5"
    gsm = responses[responses.task == "gsm8k_local"]
    assert set(gsm.iloc[0]["answers"]) == {"strict-match", "flexible-extract"}
    assert all(isinstance(r, str) and r for r in gsm["response"])
    text = responses[responses.task == "tiny_text"]
    assert (text["words"] < text["bytes"]).all() and (text["loglikelihood"] < 0).all()
    toy_arithmetic = recorded_responses(toy[0]).query("task == 'toy_arithmetic'")
    assert all("the answer is" in r for r in toy_arithmetic["response"])


def test_runs_recorded_before_responses_read_as_before():
    assert {"smollm2-gpu", "smollm2-chat-cpu"} <= set(recorded_runs())
    for name in ("smollm2-gpu", "smollm2-chat-cpu"):
        assert not (RECORDED_DIR / name / "responses.csv.gz").exists()
        results, samples = recorded_run(name, vary=("chat_template",))
        assert len(results) and len(samples)
        with pytest.raises(FileNotFoundError, match=f"{name}.*has no responses.csv.gz"):
            recorded_responses(name)
