"""The study's claims across models: parameter shares, changes on common axes, one rule."""

from __future__ import annotations

import pandas as pd
import pytest
from conftest import make_tiny_llama

from widthprune.analysis.across_models import (
    CHANGES,
    PATTERNS,
    capability_changes,
    parameter_counts,
    pattern_verdicts,
    published_mlp_shares,
)


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
    with pytest.raises(ValueError, match="no tested instruction task"):
        pattern_verdicts(changes[changes.kind != "instruction"])
