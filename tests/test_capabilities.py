"""Capabilities across a sweep: headline rows, the shared baseline, above-chance scale, buckets."""

import numpy as np
import pandas as pd
import pytest

from widthprune.analysis.capabilities import (
    knowledge_by_frequency,
    published_capabilities,
    sweep_capabilities,
)
from widthprune.toy import TASK_DATA


def results_frame():
    """The store's long results for an unpruned model and two pruned ones (two criteria)."""
    rows = []
    for config, criterion, width in (("b", None, 768), ("p", "ppm", 384), ("w", "wanda", 384)):
        for task, metric, flt, value, chance in (
            ("toy_knowledge", "acc", "none", 0.9 if config == "b" else 0.55, 0.25),
            ("toy_instructions", "prompt_level_strict_acc", "none", 0.8, 0.0),
            ("toy_knowledge", "acc_norm", "none", 0.1, 0.25),  # not a headline metric
        ):
            rows.append(
                dict(
                    config_id=config,
                    model="toy",
                    criterion=criterion,
                    final_width=width,
                    final_ratio=width / 192,
                    task=task,
                    metric=metric,
                    filter=flt,
                    value=value,
                    stderr=0.01,
                    n=400,
                    chance=chance,
                )
            )
    return pd.DataFrame(rows)


def test_sweep_capabilities_shares_the_baseline_and_rescales():
    caps = sweep_capabilities(results_frame())
    assert set(caps.metric) == {"acc", "prompt_level_strict_acc"}
    assert len(caps) == 2 * 2 * 2  # criteria x configurations (baseline + pruned) x metrics
    know = caps[(caps.task == "toy_knowledge") & (caps.criterion == "ppm")].set_index("pruning_pct")
    assert know.loc[0.0, "above_chance"] == pytest.approx((0.9 - 0.25) / 0.75)
    assert know.loc[50.0, "above_chance"] == pytest.approx(0.4)
    assert know.loc[50.0, "ci_high"] - know.loc[50.0, "value"] == pytest.approx(1.96 * 0.01)
    assert set(caps.expansion_ratio) == {4.0, 2.0}


def test_knowledge_by_frequency_splits_by_bucket():
    items = pd.read_json(TASK_DATA / "knowledge.jsonl", lines=True)
    samples = []
    for config in ("b", "p"):
        # the pruned model answers only the frequent facts; the unpruned one all
        value = np.where(items.frequency == "frequent", 1.0, 0.0) if config == "p" else 1.0
        samples.append(
            pd.DataFrame(
                dict(
                    config_id=config,
                    task="toy_knowledge",
                    doc_id=items.index,
                    filter="none",
                    metric="acc",
                    value=value,
                    weight=1.0,
                )
            )
        )
    results = results_frame()
    results = results[results.config_id != "w"]
    table = knowledge_by_frequency(results, pd.concat(samples, ignore_index=True))
    pruned = table[table.pruning_pct > 0].set_index("frequency")
    assert pruned.loc["frequent", "value"] == 1.0
    assert (pruned.drop(index="frequent")["value"] == 0.0).all()
    assert pruned["n"].sum() == len(items)
    assert (table[table.pruning_pct == 0]["value"] == 1.0).all()


def test_published_capabilities_fill_binomial_errors():
    caps = published_capabilities()
    mmlu = caps[(caps.model == "Llama-3.2-1B") & (caps.task == "mmlu")].set_index("pruning_pct")
    p = mmlu.loc[0, "value"]
    assert mmlu.loc[0, "stderr"] == pytest.approx(np.sqrt(p * (1 - p) / 14042))
    assert mmlu.loc[0, "chance"] == 0.25 and mmlu.loc[0, "expansion_ratio"] == 4.0
