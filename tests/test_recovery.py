"""Recovery after pruning: the distillation loss, full-parameter KD and merged LoRA adapters."""

from __future__ import annotations

import copy
import json

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import make_tiny_llama

import widthprune as wp
from widthprune.pruning.recovery import kd_loss, token_blocks


def _pair(seed: int = 0):
    teacher = make_tiny_llama(seed)
    student = copy.deepcopy(teacher)
    wp.prune(student, criterion="ppm", width=19)
    return student, teacher


def _ids(rows: int = 16, tokens: int = 12, seed: int = 5) -> torch.Tensor:
    return torch.randint(3, 61, (rows, tokens), generator=torch.Generator().manual_seed(seed))


def test_the_loss_is_zero_for_a_student_equal_to_its_teacher_and_positive_otherwise():
    teacher = make_tiny_llama(0)
    ids = _ids(4)
    with torch.no_grad():
        logits = teacher(input_ids=ids).logits
        other = make_tiny_llama(1)(input_ids=ids).logits
    for t in (0.5, 1.0, 4.0):
        assert kd_loss(logits, logits.clone(), temperature=t).item() == 0.0
        assert kd_loss(other, logits, temperature=t).item() > 0
    # the mask leaves padded tokens out: a loss over the first half alone
    mask = torch.zeros(ids.shape)
    mask[:, :6] = 1
    half = kd_loss(other[:, :6], logits[:, :6])
    assert kd_loss(other, logits, mask=mask).item() == pytest.approx(half.item(), rel=1e-6)
    with pytest.raises(ValueError, match="share a vocabulary"):
        kd_loss(other[..., :60], logits)
    with pytest.raises(ValueError, match="temperature must be positive"):
        kd_loss(other, logits, temperature=0)


def test_distillation_lowers_the_loss_and_leaves_the_teacher_alone():
    student, teacher = _pair()
    before = {k: v.clone() for k, v in teacher.state_dict().items()}
    ids = _ids(32)
    with torch.no_grad():
        start = kd_loss(student(input_ids=ids).logits, teacher(input_ids=ids).logits).item()
    recovered, report = wp.recover(
        student, teacher, ids, steps=30, lr=3e-3, batch_size=8, progress=False
    )
    with torch.no_grad():
        end = kd_loss(recovered(input_ids=ids).logits, teacher(input_ids=ids).logits).item()
    assert end < 0.5 * start, (start, end)
    assert report.tokens == 30 * 8 * 12 and len(report.losses) == 30
    assert report.trainable == wp.count_parameters(recovered)
    assert all(torch.equal(v, before[k]) for k, v in teacher.state_dict().items())
    assert wp.layer_widths(recovered) == {0: 19, 1: 19}  # recovery changes no width
    assert not any(p.requires_grad for p in recovered.parameters())


def test_recovery_is_deterministic_for_a_seed():
    runs = []
    for seed in (0, 0, 1):
        student, teacher = _pair()
        recovered, report = wp.recover(
            student, teacher, _ids(32), steps=5, lr=1e-3, seed=seed, progress=False
        )
        runs.append((recovered.state_dict(), report.losses))
    (a, la), (b, lb), (c, lc) = runs
    assert la == lb and all(torch.equal(a[k], b[k]) for k in a)
    assert la != lc


def test_lora_merges_into_a_plain_model_with_the_adapted_logits(tmp_path):
    student, teacher = _pair()
    ids = _ids(32)
    with torch.no_grad():
        pruned = student(input_ids=ids[:4]).logits.clone()
    adapted, report = wp.recover(
        student,
        teacher,
        ids,
        steps=10,
        lr=1e-2,
        method="lora",
        lora_rank=4,
        merge=False,
        progress=False,
    )
    with torch.no_grad():
        expected = adapted(input_ids=ids[:4]).logits.clone()
    recovered = adapted.merge_and_unload()
    assert type(recovered).__name__ == "LlamaForCausalLM"
    assert not any("lora" in name for name, _ in recovered.named_parameters())
    assert 0 < report.trainable < wp.count_parameters(recovered) / 2
    with torch.no_grad():
        merged = recovered(input_ids=ids[:4]).logits
    assert torch.allclose(merged, expected, atol=1e-5)
    assert (merged - pruned).abs().max() > 1e-3  # the adapters changed the model
    assert report.losses[-1] < report.losses[0]
    # a plain checkpoint: saved and reloaded equal
    recovered.save_pretrained(tmp_path / "r")
    from transformers import AutoModelForCausalLM

    again = AutoModelForCausalLM.from_pretrained(tmp_path / "r").eval()
    with torch.no_grad():
        assert torch.equal(again(input_ids=ids[:4]).logits, merged)


def test_texts_are_cut_into_rows_and_bad_settings_are_refused(tiny_tokenizer):
    student, teacher = _pair()
    texts = ["The capital of France is Paris."] * 20
    blocks = token_blocks(texts, tiny_tokenizer, 8)
    assert blocks.shape[1] == 8 and blocks.shape[0] >= 2
    with pytest.raises(ValueError, match="fewer than one row"):
        token_blocks(["a"], tiny_tokenizer, 10_000)
    with pytest.raises(ValueError, match="pass the tokenizer"):
        wp.recover(student, teacher, texts, steps=1, progress=False)
    with pytest.raises(ValueError, match="method must be one of"):
        wp.recover(student, teacher, _ids(), method="sft", progress=False)
    with pytest.raises(ValueError, match="lr must be positive"):
        wp.recover(student, teacher, _ids(), lr=0, progress=False)
    with pytest.raises(ValueError, match="vocabularies differ"):
        wp.recover(make_tiny_llama(vocab_size=70), teacher, _ids(), progress=False)
    _, report = wp.recover(
        student, teacher, texts, tokenizer=tiny_tokenizer, steps=2, seq_len=8, progress=False
    )
    assert report.seq_len == 8 and report.tokens == 2 * 8 * 8


def test_the_toy_s_recovery_text_shares_no_sentence_with_any_task_item():
    from widthprune.overlap import overlapping_sentences, sentence_digests
    from widthprune.toy import calibration_texts, item_texts, recovery_texts

    texts, items = recovery_texts(512), item_texts()
    assert len(sentence_digests(texts)) > 1000 and len(sentence_digests(items)) > 1000
    assert overlapping_sentences(texts, items) == []
    assert not set(texts) & set(calibration_texts())  # its own stream, not the calibration's
    # a planted item is caught, whatever its case, spacing and punctuation
    planted = next(t for t in items[len(items) // 2 :] if len(t.split()) >= 6)
    noisy = "  " + planted.upper().replace(" ", "   ") + " !"
    assert overlapping_sentences([*texts[:50], f"Some text. {noisy}"], items) != []


def test_the_recover_command_saves_a_plain_checkpoint_and_its_record(tmp_path, capsys):
    import json

    from transformers import AutoModelForCausalLM

    from widthprune.cli import main

    pruned, out = tmp_path / "p50", tmp_path / "r50"
    assert main(["prune", "toy", "--pct", "50", "--out", str(pruned)]) == 0
    args = ["recover", str(pruned), "--teacher", "toy", "--steps", "3", "--seq-len", "32"]
    assert main([*args, "--out", str(out)]) == 0
    assert "kd: 3 steps, 768 tokens" in capsys.readouterr().out
    record = json.loads((out / "recovery.json").read_text())
    assert record["method"] == "kd" and len(record["losses"]) == 3 and record["tokens"] == 768
    assert len(record["text_digest"]) == 64 and record["text_documents"] == 2048
    model = AutoModelForCausalLM.from_pretrained(out)
    assert model.config.intermediate_size == wp.load(str(pruned))[0].config.intermediate_size
    # a user's mistakes are one line each, before any model loads
    for bad, message in (
        ([*args, "--out", str(pruned / "inside")], "lies inside the source checkpoint"),
        ([*args, "--out", str(out)], "exists and is not empty"),
        (
            [*args, "--text", str(tmp_path / "none.txt"), "--out", str(tmp_path / "x")],
            "No recovery text file",
        ),
        (
            [
                "recover",
                str(tmp_path / "nothing"),
                "--teacher",
                "toy",
                "--out",
                str(tmp_path / "y"),
            ],
            "is not a folder",
        ),
    ):
        assert main(bad) == 2
        err = capsys.readouterr().err
        assert message in err and "Traceback" not in err, err


def test_a_recovery_setting_is_part_of_the_configuration_and_its_id(tmp_path):
    from widthprune.pruning.recovery import RecoverySpec
    from widthprune.runs.config import EvalConfig
    from widthprune.runs.experiment import evaluate_config
    from widthprune.runs.store import load_results
    from widthprune.runs.sweep import SweepConfig

    pruned = EvalConfig(criterion="ppm", pruning_pct=50, tasks="toy_knowledge", limit=4)
    assert "recovery" not in pruned.identity()["config"]  # ids without recovery are unchanged
    spec = "kd:steps=3,batch_size=2,seq_len=16"
    recovered = EvalConfig(criterion="ppm", pruning_pct=50, tasks="toy_knowledge", limit=4,
                           recovery=spec)  # fmt: skip
    assert recovered.recovery == RecoverySpec.parse(spec).text_form()
    assert recovered.label == "ppm-pct50+kd"
    ids = {pruned.config_id, recovered.config_id}
    # every setting, the method and the text move the id
    small = "batch_size=2,seq_len=16"
    for other in (f"kd:steps=4,{small}", f"kd:steps=3,{small},lr=2e-4", f"lora:steps=3,{small}",
                  f"kd:steps=3,{small},seed=1", f"kd:steps=3,{small},temperature=2",
                  f"kd:steps=3,{small},text=lambada"):  # fmt: skip
        config = EvalConfig(criterion="ppm", pruning_pct=50, tasks="toy_knowledge", limit=4,
                            recovery=other)  # fmt: skip
        ids.add(config.config_id)
    assert len(ids) == 8
    # the same setting written otherwise is the same configuration
    same = EvalConfig(criterion="ppm", pruning_pct=50, tasks="toy_knowledge", limit=4,
                      recovery="kd:seq_len=16,steps=3,batch_size=2,lr=0.0001")  # fmt: skip
    assert same.config_id == recovered.config_id
    with pytest.raises(ValueError, match="a baseline has nothing to recover"):
        EvalConfig(recovery="kd")
    with pytest.raises(ValueError, match="recovery method"):
        EvalConfig(criterion="ppm", pruning_pct=50, recovery="sft")
    # evaluated and stored: recovery changes the model, its report is in the provenance, and
    # the results table has the setting as a column
    plain = evaluate_config(pruned, "r", tmp_path)
    done = evaluate_config(recovered, "r", tmp_path)
    assert not plain.samples.equals(done.samples) or not plain.summary.equals(done.summary)
    prov = json.loads((tmp_path / "r" / recovered.config_id / "provenance.json").read_text())
    assert prov["recovery"]["steps"] == 3 and len(prov["recovery"]["losses"]) == 3
    results = load_results("r", tmp_path)
    assert set(results.recovery.fillna("none")) == {"none", recovered.recovery}
    # a sweep with recovery evaluates each pruned point as it is and recovered
    sweep = SweepConfig(criteria=("ppm",), pcts=(0, 50), recovery="kd:steps=3")
    assert [p.label for p in sweep.points()] == ["baseline", "ppm-pct50", "ppm-pct50+kd"]


def _items(task, right, n=200):
    """n items of a 0/1 task, the first ``right`` of them answered right."""
    return pd.DataFrame({"task": task, "doc_id": range(n), "metric": "acc",
                         "value": [1.0] * right + [0.0] * (n - right)})  # fmt: skip


def test_the_share_of_the_loss_recovered_and_the_reading_of_each_capability():
    from widthprune.analysis.recovery import READINGS, loss_share, recovery_table

    # knowledge: 150 -> 60 -> 105 right (half the loss back, still short); instructions:
    # 120 -> 60 -> 120 (all back); arithmetic: 100 -> 98 -> 100 (no loss to speak of);
    # perplexity-like: 150 -> 100 -> 60 (recovery made it worse)
    u = pd.concat([_items("know", 150), _items("inst", 120), _items("arith", 100),
                   _items("lm", 150)])  # fmt: skip
    p = pd.concat([_items("know", 60), _items("inst", 60), _items("arith", 98), _items("lm", 100)])
    r = pd.concat([_items("know", 105), _items("inst", 120), _items("arith", 100),
                   _items("lm", 60)])  # fmt: skip
    table = recovery_table(u, p, r, n_resamples=500).set_index("task")
    assert table.loc["know", "share"] == pytest.approx(0.5)
    assert table.loc["know", "share_low"] < 0.5 < table.loc["know", "share_high"]
    assert table.loc["inst", "share"] == pytest.approx(1.0)
    assert table.loc["know", "reading"] == "partly restores"
    assert table.loc["inst", "reading"] == "restores"
    assert table.loc["arith", "reading"] == "no loss to recover"
    assert table.loc["lm", "reading"] == "worsens"
    assert set(table.reading) <= set(READINGS)
    assert table.loc["know", "gain"] == pytest.approx(45 / 200)
    assert (table.lossy[["know", "inst"]] == 1.0).all()
    # nothing lost: no share; unequal item counts refused
    share, low, high, _ = loss_share(np.ones(5), np.ones(5), np.zeros(5))
    assert np.isnan(share) and np.isnan(low) and np.isnan(high)
    with pytest.raises(ValueError, match="the same items"):
        loss_share(np.ones(5), np.ones(4), np.ones(5))


def _run(configs):
    """A run's (results, samples) as pair_run gives them, from (config, criterion, width,
    template, recovery, {task: right of 200})."""
    results, samples = [], []
    for config, criterion, width, template, recovery, right in configs:
        for task, n in right.items():
            results.append({"config": config, "label": f"{criterion or 'baseline'}-{width}",
                            "criterion": criterion, "final_width": width, "seed": 0,
                            "chat_template": template, "recovery": recovery, "task": task,
                            "pruning_pct": 100 * (1 - width / 100)})  # fmt: skip
            metric = "acc" if task != "real_instructions" else "prompt_level_strict_acc"
            samples.append(_items(task, n).assign(config=config, metric=metric))
    return pd.DataFrame(results), pd.concat(samples, ignore_index=True)


def test_recovered_points_find_their_pruned_and_unpruned_models_and_the_pattern_s_shift():
    from widthprune.analysis.recovery import (
        SHIFTS,
        pattern_shift,
        recovery_points,
        recovery_tables,
        without_recovery,
    )
    from widthprune.analysis.study_pattern import PATTERNS

    kd = "kd:steps=3"
    know, inst = "real_sciq", "real_instructions"
    results, samples = _run([
        ("U0", None, 100, False, None, {know: 180, inst: 60}),
        ("U1", None, 100, True, None, {know: 180, inst: 150}),
        ("P0", "ppm", 60, False, None, {know: 100, inst: 60}),
        ("R0", "ppm", 60, False, kd, {know: 150, inst: 60}),
        ("P1", "ppm", 60, True, None, {know: 100, inst: 150}),
        ("R1", "ppm", 60, True, kd, {know: 180, inst: 150}),
        ("W1", "wanda", 60, True, None, {know: 100, inst: 150}),
    ])  # fmt: skip
    points = recovery_points(results)
    assert points[["recovered", "pruned", "unpruned"]].values.tolist() == [
        ["R0", "P0", "U0"], ["R1", "P1", "U1"]
    ]  # fmt: skip
    kept, _ = without_recovery(results, samples)
    assert set(kept.config) == {"U0", "U1", "P0", "P1", "W1"}
    tables = recovery_tables(results, samples, n_resamples=300).set_index(["point", "task"])
    assert tables.loc[("ppm-60", know), "share"].tolist() == pytest.approx([0.625, 1.0])
    assert tables.loc[("ppm-60", inst), "reading"].tolist() == ["no loss to recover"] * 2
    # the pattern (knowledge falls, instructions hold) before recovery; after it, knowledge is
    # back in the template, and still down without it
    verdicts = pd.DataFrame({
        "config": ["P0", "R0", "P1", "R1"], "knowledge_tasks": 1,
        "knowledge_fall": [1, 1, 1, 0], "instruction": "holds",
        "verdict": [PATTERNS[0], PATTERNS[0], PATTERNS[0], PATTERNS[2]],
    })  # fmt: skip
    shift = pattern_shift(verdicts, points)
    assert shift["shift"].tolist() == ["persists", "vanishes"]
    assert set(shift["shift"]) <= set(SHIFTS)
    # a recovered model without its pruned one is refused, naming it
    with pytest.raises(ValueError, match="needs one pruned configuration"):
        recovery_points(results[results.config != "P1"])


def test_a_run_that_mixes_recovered_and_pruned_only_models_is_compared_only_when_asked():
    from widthprune.analysis.runs import check_comparable

    results = pd.DataFrame({"config_id": ["a", "b"], "model": "toy", "criterion": [None, "ppm"],
                            "recovery": [None, "kd:steps=3"]})  # fmt: skip
    with pytest.raises(ValueError, match=r"recovery: \['None', 'kd:steps=3'\]"):
        check_comparable(results)
    assert check_comparable(results, vary=("recovery",)) is results
