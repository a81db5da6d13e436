"""lm-eval on in-memory models: tidy frames, per-item values, chance levels, real-task schemas."""

from __future__ import annotations

import copy
import json
import math

import numpy as np
import pandas as pd
import pytest
import torch
from evalkit import DATA, make_byte_llama, make_byte_tokenizer, write_tasks

import widthprune as wp
from widthprune.evaluation.harness import TASKS_DIR, check_task_names, resolve_tasks
from widthprune.evaluation.metrics import (
    SAMPLE_COLUMNS,
    SENTENCE_SPLITTER_INSTRUCTIONS,
    SUMMARY_COLUMNS,
    aggregate_samples,
)
from widthprune.models.loading import TOY_CHECKPOINT

SHOTS = {"mmlu_local": 2, "gsm8k_local": 2}


@pytest.fixture(scope="module")
def tasks_dir(tmp_path_factory):
    return write_tasks(tmp_path_factory.mktemp("tasks"))


@pytest.fixture(scope="module")
def byte_model():
    return make_byte_llama(), make_byte_tokenizer()


@pytest.fixture(scope="module")
def result(byte_model, tasks_dir):
    model, tok = byte_model
    names = ["tiny", "mmlu_local", "arc_local", "gsm8k_local", "ifeval_local"]
    return wp.evaluate(model, tok, names, num_fewshot=SHOTS, include_path=[tasks_dir])


def _jsonl(name):
    return [json.loads(line) for line in (DATA / name).read_text().splitlines()]


@torch.no_grad()
def _loglik(model, tok, context: str, continuation: str) -> float:
    """Slow reference: log p(continuation | context), summed over its tokens."""
    ctx = tok(context, add_special_tokens=False)["input_ids"]
    cont = tok(continuation, add_special_tokens=False)["input_ids"]
    ids = torch.tensor([ctx + cont])
    logp = torch.log_softmax(model(ids).logits[0].float(), dim=-1)
    return sum(logp[len(ctx) + i - 1, t].item() for i, t in enumerate(cont))


def test_tidy_schemas(result):
    assert list(result.summary.columns) == SUMMARY_COLUMNS
    assert list(result.samples.columns) == SAMPLE_COLUMNS
    assert result.summary[["value", "stderr", "chance"]].dtypes.eq(float).all()
    assert result.summary["n"].dtype.kind == "i"
    assert result.samples["doc_id"].dtype.kind == "i"


def test_every_metric_and_filter_is_kept(result):
    got = set(map(tuple, result.summary[["task", "metric", "filter"]].to_numpy()))
    ifeval = ["prompt_level_strict_acc", "inst_level_strict_acc"]
    ifeval += ["prompt_level_loose_acc", "inst_level_loose_acc"]
    expected = {("gsm8k_local", "exact_match", f) for f in ("strict-match", "flexible-extract")}
    expected |= {("ifeval_local", m, "none") for m in ifeval}
    expected |= {("tiny_knowledge", m, "none") for m in ("acc", "acc_norm")}
    expected |= {("tiny_text", m, "none") for m in ("word_perplexity", "bits_per_byte")}
    expected |= {("tiny", "acc", "none"), ("mmlu_local", "acc", "none")}
    assert expected <= got
    n = result.summary.groupby("task")["n"].max().to_dict()
    assert n == {
        "arc_local": 4,
        "gsm8k_local": 3,
        "ifeval_local": 4,
        "mmlu_local": 6,
        "tiny": 12,
        "tiny_knowledge": 12,
        "tiny_text": 5,
    }
    per_item = result.samples.groupby(["task", "filter", "metric"])["doc_id"].nunique()
    assert per_item["gsm8k_local", "strict-match", "exact_match"] == 3
    assert per_item["ifeval_local", "none", "inst_level_loose_acc"] == 4


def test_summary_equals_aggregate_of_items(result):
    leaves = result.summary[result.summary["task"] != "tiny"]
    again = aggregate_samples(result.samples)
    both = leaves.merge(again, on=["task", "metric", "filter"], suffixes=("", "_items"))
    assert len(both) == len(leaves)
    np.testing.assert_allclose(both["value_items"], both["value"], rtol=1e-9)
    # plain means for the accuracies; instruction-level weights = instructions per prompt
    acc = result.samples[result.samples["metric"].isin(["acc", "acc_norm", "exact_match"])]
    means = acc.groupby(["task", "filter", "metric"])["value"].mean().rename("mean")
    checked = leaves.merge(means.reset_index(), on=["task", "filter", "metric"])
    assert len(checked) == len(means) >= 7
    np.testing.assert_allclose(checked["value"], checked["mean"], rtol=1e-12)
    inst = result.samples.query("task == 'ifeval_local' and metric == 'inst_level_strict_acc'")
    assert inst["weight"].tolist() == [1.0, 2.0, 2.0, 1.0]


def test_group_score_is_the_size_weighted_mean(result):
    s = result.summary.set_index(["task", "metric"])["value"]
    assert s["tiny", "acc"] == pytest.approx(s["tiny_knowledge", "acc"], rel=1e-12)


def test_chance_levels(result):
    chance = result.summary.set_index(["task", "metric", "filter"])["chance"]
    arc = _jsonl("arc.jsonl")
    assert chance["arc_local", "acc", "none"] == pytest.approx(
        np.mean([1 / len(d["choices"]["text"]) for d in arc])
    )
    assert chance["mmlu_local", "acc", "none"] == 0.25
    assert chance["tiny_knowledge", "acc_norm", "none"] == 0.25
    assert chance["tiny", "acc", "none"] == 0.25
    assert chance["gsm8k_local", "exact_match", "flexible-extract"] == 0.0
    assert chance["ifeval_local", "prompt_level_strict_acc", "none"] == 0.0
    assert math.isnan(chance["tiny_text", "word_perplexity", "none"])
    assert wp.CHANCE["mmlu"] == 0.25 and wp.CHANCE["boolq"] == 0.5


def test_multiple_choice_logliks_come_from_the_given_model(result, byte_model, tasks_dir):
    model, tok = byte_model
    records = [r for r in result.records if r["task"] == "arc_local"]
    docs = _jsonl("arc.jsonl")
    for r in records:
        doc = docs[r["doc_id"]]
        context = f"Question: {doc['question']}\nAnswer:"
        want = [_loglik(model, tok, context, " " + c) for c in doc["choices"]["text"]]
        np.testing.assert_allclose([ll for ll, _ in r["filtered_resps"]], want, atol=1e-4)
        gold = doc["choices"]["label"].index(doc["answerKey"])
        assert r["acc"] == float(int(np.argmax(want)) == gold)
    # a model pruned in memory is what lm-eval then scores
    pruned = copy.deepcopy(model)
    wp.prune(pruned, criterion="ppm", pruning_pct=50)
    again = wp.evaluate(pruned, tok, "arc_local", include_path=[tasks_dir])
    first = again.records[0]
    doc = docs[first["doc_id"]]
    want = [
        _loglik(pruned, tok, f"Question: {doc['question']}\nAnswer:", " " + c)
        for c in doc["choices"]["text"]
    ]
    np.testing.assert_allclose([ll for ll, _ in first["filtered_resps"]], want, atol=1e-4)
    before = [r for r in records if r["doc_id"] == first["doc_id"]][0]["filtered_resps"]
    assert not np.allclose([ll for ll, _ in before], want)


def test_ifeval_items_scored_offline_with_their_instruction_lists(result):
    records = [r for r in result.records if r["task"] == "ifeval_local"]
    for r in records:
        n = len(r["doc"]["instruction_id_list"])
        assert len(r["inst_level_strict_acc"]) == n
        assert r["prompt_level_strict_acc"] == all(r["inst_level_strict_acc"])
        assert isinstance(r["resps"][0][0], str)


def test_missing_sentence_splitter_fails_before_generating(
    byte_model, tasks_dir, tmp_path, monkeypatch
):
    import nltk

    model, tok = byte_model
    monkeypatch.setattr(nltk.data, "path", [str(tmp_path)])

    def no_generation(*args, **kwargs):
        raise AssertionError("generation started before the sentence-splitter check")

    monkeypatch.setattr(model, "generate", no_generation)
    with pytest.raises(FileNotFoundError, match="punkt_tab") as err:
        wp.evaluate(model, tok, "ifeval_sentences_local", include_path=[tasks_dir])
    assert "length_constraints:number_sentences" in str(err.value)
    assert "1 of 2 items" in str(err.value)


def test_sentence_splitter_instructions_are_exactly_those_needing_punkt(tmp_path, monkeypatch):
    import nltk
    from lm_eval.tasks.ifeval import instructions_registry, instructions_util

    monkeypatch.setattr(nltk.data, "path", [str(tmp_path)])
    instructions_util._get_sentence_tokenizer.cache_clear()
    nltk.tokenize._get_punkt_tokenizer.cache_clear()
    text = "Hello World. THIS is A test, with words!\n\n* one\n* two\nP.S. end"
    needing = set()
    for iid, cls in instructions_registry.INSTRUCTION_DICT.items():
        instruction = cls(iid)
        instruction.build_description(**({"prompt_to_repeat": "x"} if "repeat" in iid else {}))
        try:
            instruction.check_following(text)
        except LookupError:
            needing.add(iid)
    assert needing == SENTENCE_SPLITTER_INSTRUCTIONS


def test_offline_dataset_error_names_it(byte_model, tmp_path):
    (tmp_path / "hub_task.yaml").write_text(
        "task: hub_only\ndataset_path: widthprune-tests/absent-dataset\ntest_split: test\n"
        "output_type: multiple_choice\ndoc_to_text: q\ndoc_to_choice: ['a', 'b']\n"
        "doc_to_target: 0\nmetric_list:\n  - metric: acc\n"
    )
    with pytest.raises(FileNotFoundError, match="widthprune-tests/absent-dataset") as err:
        wp.evaluate(*byte_model, "hub_only", include_path=[tmp_path])
    assert "include_path" in str(err.value) and "data_files" in str(err.value)


def test_unknown_task_lists_close_names():
    # lm-eval's full index takes seconds to build, so the message is checked on a known list
    known = ["tiny_knowledge", "tiny_text", "mmlu", "arc_challenge"]
    check_task_names(["tiny_text", "mmlu"], known)
    with pytest.raises(ValueError, match=r"'tiny_knowlege': \['tiny_knowledge'") as err:
        check_task_names(["tiny_knowlege", "mmlu"], known, ["/some/tasks"])
    assert "/some/tasks" in str(err.value) and "paper" in str(err.value)


def test_presets_and_shots():
    paper = resolve_tasks("paper")
    assert len(paper) == 13
    assert {t for t, s in paper.items() if s == 5} == {"mmlu", "gsm8k"}
    assert {s for t, s in paper.items() if t not in ("mmlu", "gsm8k")} == {0}
    assert resolve_tasks(["a", "b"], 3) == {"a": 3, "b": 3}
    assert resolve_tasks("toy") == {"toy": None}
    with pytest.raises(ValueError, match="not requested"):
        resolve_tasks(["a"], {"b": 1})


def _slow_perplexity(model, ids: list[int], max_length: int, stride: int) -> tuple[float, int]:
    """Token t is predicted from the first window (starts 0, stride, ...) that reaches it."""
    nll = 0.0
    for t in range(1, len(ids)):
        start = max(0, math.ceil((t - max_length + 1) / stride)) * stride
        with torch.no_grad():
            logits = model(torch.tensor([ids[start : t + 1]])).logits[0, -2]
        nll -= torch.log_softmax(logits.float(), -1)[ids[t]].item()
    return nll, len(ids) - 1


@pytest.mark.parametrize("max_length,stride", [(16, 5), (16, 15), (9, 1), (64, 32)])
def test_perplexity_equals_slow_reference(byte_model, max_length, stride):
    model, tok = byte_model
    texts = ["The capital of Avel is Vess, far away.", "Short one here"]
    got = wp.perplexity(model, tok, texts, max_length=max_length, stride=stride)
    parts = [_slow_perplexity(model, tok(t)["input_ids"], max_length, stride) for t in texts]
    want = math.exp(sum(n for n, _ in parts) / sum(c for _, c in parts))
    assert got == pytest.approx(want, rel=1e-5)


def test_perplexity_of_one_window_is_the_model_loss(byte_model):
    model, tok = byte_model
    ids = tok("a text that fits one window", return_tensors="pt")["input_ids"]
    with torch.no_grad():
        loss = model(ids, labels=ids).loss.item()
    got = wp.perplexity(model, tok, "a text that fits one window", max_length=128)
    assert got == pytest.approx(math.exp(loss), rel=1e-5)
    with pytest.raises(ValueError, match="stride"):
        wp.perplexity(model, tok, "abc", max_length=8, stride=8)


@pytest.mark.skipif(
    not (TOY_CHECKPOINT / "config.json").exists() or not (TASKS_DIR / "toy").is_dir(),
    reason="the toy checkpoint and toy tasks are built by `widthprune toy train`",
)
def test_toy_suite_on_the_toy_model():
    model, tok = wp.load("toy")
    res = wp.evaluate(model, tok, "toy", limit=4)
    tasks = set(res.summary["task"])
    assert {"toy_knowledge", "toy_instructions", "toy_arithmetic", "toy_perplexity"} <= tasks
    leaves = res.summary[res.summary["task"] != "toy"]
    again = aggregate_samples(res.samples)
    both = leaves.merge(again, on=["task", "metric", "filter"], suffixes=("", "_items"))
    np.testing.assert_allclose(both["value_items"], both["value"], rtol=1e-9)
    assert pd.notna(both["value"]).all()
