"""The study's claims across models: parameter shares, changes on common axes, one rule."""

from __future__ import annotations

import pandas as pd
import pytest
from conftest import make_tiny_llama

from widthprune.analysis.across_models import (
    CHANGES,
    PATTERNS,
    capability_changes,
    count_packaged_parameters,
    detectable_change,
    model_parameters,
    parameter_counts,
    pattern_verdicts,
    published_mlp_shares,
    run_capabilities,
)
from widthprune.analysis.recorded import recorded_results


def test_parameter_counts_equal_a_built_model_s_for_tied_and_untied_embeddings():
    for tied in (True, False):
        model = make_tiny_llama(tie_word_embeddings=tied)
        counts = parameter_counts(model.config.to_dict())
        assert counts["total"] == sum(p.numel() for p in model.parameters())
        assert counts["mlp"] == 2 * 3 * 32 * 37  # 2 layers, gate/up/down of hidden x width
        assert counts["mlp_share"] == pytest.approx(counts["mlp"] / counts["total"])
    # Llama-3.2 1B: the study's own parameter counts give its MLP share (16 x 3 x 2048 x 8192
    # of 1,235,814,400)
    assert published_mlp_shares()["Llama-3.2-1B"] == pytest.approx(
        16 * 3 * 2048 * 8192 / 1_235_814_400, abs=2e-4
    )


def _caps(model, rows):
    """(pct, task, kind, value, stderr) rows, chance 0.25 (perplexity: None, lower better)."""
    out = []
    for pct, task, kind, value, stderr in rows:
        ppl = task == "ppl"
        out.append({"model": model, "criterion": "ppm", "pruning_pct": pct, "kind": kind,
                    "task": task, "metric": "word_perplexity" if ppl else "acc",
                    "filter": "none", "value": value, "stderr": stderr,
                    "chance": float("nan") if ppl else 0.25,
                    "higher_is_better": not ppl})  # fmt: skip
    return pd.DataFrame(out)


def test_one_rule_reads_the_pattern_its_reverse_and_neither():
    caps = pd.concat([
        # knowledge falls, instructions hold: the study's pattern; a task at chance is not read
        _caps("A", [(0, "k1", "knowledge", 0.70, 0.01), (40, "k1", "knowledge", 0.50, 0.01),
                    (0, "k2", "knowledge", 0.26, 0.01), (40, "k2", "knowledge", 0.25, 0.01),
                    (0, "i", "instruction", 0.30, 0.02), (40, "i", "instruction", 0.33, 0.02),
                    (0, "ppl", "knowledge", 20.0, None), (40, "ppl", "knowledge", 90.0, None)]),
        # instructions fall while knowledge holds: the reverse
        _caps("B", [(0, "k1", "knowledge", 0.70, 0.01), (40, "k1", "knowledge", 0.69, 0.01),
                    (0, "i", "instruction", 0.60, 0.01), (40, "i", "instruction", 0.40, 0.01)]),
        # both fall: neither
        _caps("C", [(0, "k1", "knowledge", 0.70, 0.01), (40, "k1", "knowledge", 0.50, 0.01),
                    (0, "i", "instruction", 0.60, 0.01), (40, "i", "instruction", 0.40, 0.01)]),
    ])  # fmt: skip
    changes = capability_changes(caps, mlp_share={"A": 0.5, "B": 0.25, "C": 0.6})
    a = changes[changes.model == "A"].set_index("task")
    assert a.loc["k1", "change"] == "falls" and a.loc["k1", "base_above_chance"]
    assert not a.loc["k2", "base_above_chance"]
    assert a.loc["ppl", "change"] == "not tested"  # no standard error: shown, not tested
    assert a.loc["i", "change"] == "not significant"
    assert a.loc["k1", "all_removed"] == pytest.approx(0.2) and a.loc["k1", "mlp_removed"] == 0.4
    assert set(changes.change) <= set(CHANGES)
    verdicts = pattern_verdicts(changes).set_index("model")
    assert verdicts.loc["A", "verdict"] == PATTERNS[0] and verdicts.loc["A", "knowledge_tasks"] == 1
    assert verdicts.loc["B", "verdict"] == PATTERNS[1]
    assert verdicts.loc["C", "verdict"] == PATTERNS[2]
    # a better perplexity is a rise, a worse accuracy a fall, whatever the sign of the estimate
    caps_p = _caps("P", [(0, "ppl", "knowledge", 20.0, 0.5), (40, "ppl", "knowledge", 30.0, 0.5),
                         (0, "i", "instruction", 0.3, 0.01),
                         (40, "i", "instruction", 0.3, 0.01)])  # fmt: skip
    assert capability_changes(caps_p, mlp_share=0.5).set_index("task").loc["ppl", "change"] == (
        "falls"
    )
    with pytest.raises(ValueError, match="no instruction task for A"):
        pattern_verdicts(changes[changes.kind != "instruction"])
    # an instruction task with every answer alike before and after has no test: not read
    flat = _caps("F", [(0, "k1", "knowledge", 0.70, 0.01), (40, "k1", "knowledge", 0.50, 0.01),
                       (0, "i", "instruction", 0.0, 0.0),
                       (40, "i", "instruction", 0.0, 0.0)])  # fmt: skip
    flat_verdict = pattern_verdicts(capability_changes(flat, mlp_share=0.5))
    assert flat_verdict["verdict"].tolist() == [PATTERNS[3]]


def test_the_stored_parameter_table_is_the_count_from_the_installed_gguf_headers():
    stored = model_parameters()
    counted = count_packaged_parameters()
    pd.testing.assert_frame_equal(stored, counted, check_dtype=False)
    row = model_parameters("gemma-3-270m")
    # 18 layers of gate, up and down projections of 640 x 2048
    assert row["mlp"] == 18 * 3 * 640 * 2048 and row["vocab"] == 262_144


def test_an_unlisted_model_is_counted_from_its_configuration_and_a_bad_name_is_refused(tmp_path):
    model = make_tiny_llama()
    model.save_pretrained(tmp_path / "tiny")
    counts = model_parameters(str(tmp_path / "tiny"))
    assert counts["total"] == sum(p.numel() for p in model.parameters())
    toy = model_parameters("toy")
    assert 0 < toy["mlp_share"] < 1
    with pytest.raises(ValueError, match="cannot read the configuration"):
        model_parameters(str(tmp_path / "missing"))


def test_a_change_just_above_the_detectable_one_is_significant_and_just_below_is_not():
    se = 0.02
    edge = detectable_change(se, tests=1)
    for delta, expected in ((edge * 1.01, "falls"), (edge * 0.99, "not significant")):
        caps = _caps("M", [(0, "k", "knowledge", 0.6, se), (40, "k", "knowledge", 0.6 - delta, se)])
        assert capability_changes(caps, mlp_share=0.5)["change"].iloc[0] == expected
    # Holm's strictest test over three needs a larger change
    assert detectable_change(se, tests=3) > edge


def test_run_capabilities_keeps_one_prompt_form_of_the_pruned_only_models():
    # the recorded recovery run holds ppm 40 % pruned with both prompt forms and recovered
    # with plain prompts
    results = recorded_results("smollm2-recovery")
    arc = results[(results.task == "local_arc_easy") & (results.metric == "acc")]
    for chat in (False, True):
        caps = run_capabilities(results, model="S", chat_template=chat)
        assert set(caps["model"]) == {"S"} and caps["pruning_pct"].nunique() == 2
        got = caps[(caps.task == "local_arc_easy") & (caps.metric == "acc")]
        got = got.set_index(got["pruning_pct"].round())["value"]
        pruned = arc[(arc.label == "ppm-pct40") & (arc.chat_template == chat)]["value"].item()
        base = arc[(arc.label == "baseline") & (arc.chat_template == chat)]["value"].item()
        assert got.loc[40] == pruned and got.loc[0] == base
    recovered = arc[arc.label == "ppm-pct40+kd"]["value"].item()
    plain = arc[(arc.label == "ppm-pct40") & ~arc.chat_template.astype(bool)]["value"].item()
    assert recovered != plain  # so the recovered model would have shown, had it been kept
    with pytest.raises(ValueError, match="no unpruned model with chat-template prompts"):
        run_capabilities(results[results.label != "baseline"], model="S", chat_template=True)
