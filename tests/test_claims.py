"""The study's claims table, the toy's pattern verdict and the deployment claims, on numbers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from widthprune.analysis.abstract import pruned_changes, study_claims
from widthprune.analysis.deployment import batch_claim, energy_claim, latency_claim
from widthprune.analysis.pattern import capability_gap, describe_pattern, pattern_verdict
from widthprune.analysis.published import published


@pytest.fixture(scope="module")
def claims_table():
    return study_claims(published("benchmarks"), published("efficiency"), n_resamples=999)


def test_every_claim_of_the_abstract_has_a_row(claims_table):
    assert list(claims_table.columns) == ["claim", "evidence", "criterion", "verdict"]
    verdicts = dict(zip(claims_table.claim.str[:30], claims_table.verdict, strict=True))
    assert len(claims_table) == 8
    assert list(verdicts.values()) == [
        "supported",
        "partly supported (4 of 12)",
        "not testable: no unpruned model is above chance",
        "reproduced; not robust (ranks); above chance undetermined (n = 5: r = -0.862, "
        "bootstrap interval -1.000 to -0.574, permutation p = 0.067, at least 0.008 with any "
        "pairing)",
        "robust",
        "partly supported: single workloads only",
        "partly supported: longer requests, not slower tokens",
        "partly supported (22 of 36)",
    ]
    ifeval = claims_table.evidence.iloc[1]
    assert "+2.4 to +7.8 points (+23 to +75 %)" in ifeval and "4 of 12 significant" in ifeval
    corr = claims_table.evidence.iloc[3]
    assert "r = -0.864 (t test p = 0.012; permutation p = 0.032" in corr
    assert "Spearman rho = -0.607 (p = 0.167)" in corr
    assert "19.6 % at 60 %" in claims_table.evidence.iloc[5]


def test_ifeval_changes_by_hand():
    ch = pruned_changes(published(), "ifeval", "prompt_level_strict_acc")
    row = ch[(ch.model == "Llama-3.2-1B") & (ch.pruning_pct == 30)].iloc[0]
    # 0.1811 - 0.1035 over the root of the summed squared standard errors
    assert row.estimate == pytest.approx(0.1811 - 0.1035, abs=1e-4)
    assert row.relative == pytest.approx(75.0, abs=0.1)
    assert row.z == pytest.approx(row.estimate / np.hypot(0.0131, 0.0166), rel=0.01)
    assert len(ch) == 12 and ch.reject.sum() == 4


def _benchmarks(rise: float) -> pd.DataFrame:
    """Two base models, IFEval prompt-level at 0..60 %, rising by ``rise`` when pruned."""
    rows = []
    for model in ("Llama-3.2-1B", "Llama-3.2-3B"):
        for pct in range(0, 70, 10):
            value = 0.10 + (rise if pct else 0.0)
            rows.append(
                {
                    "model": model,
                    "pruning_pct": pct,
                    "task": "ifeval",
                    "metric": "prompt_level_strict_acc",
                    "filter": "none",
                    "value": value,
                    "stderr": np.sqrt(value * (1 - value) / 541),
                }
            )
    return pd.DataFrame(rows)


def test_the_ifeval_criterion_can_pass_and_fail():
    from widthprune.analysis.abstract import _ifeval

    strong = _benchmarks(0.15)
    flat = _benchmarks(0.0)
    instruct = _benchmarks(-0.1).query("model == 'Llama-3.2-1B'")
    instruct = instruct.assign(model="Llama-3.2-1B-Instruct")
    assert _ifeval(pd.concat([strong, instruct]), 0.05)["verdict"] == "supported"
    assert _ifeval(pd.concat([flat, instruct]), 0.05)["verdict"] == "not supported"


def _toy(know_drop: float, inst_drop: float, criterion: str, n: int = 400) -> tuple:
    """A two-config sweep whose pruned model loses the given shares of right answers."""
    rows, samples = [], []
    for cfg, pct, drops in (
        ("base", 0.0, (0, 0)),
        (f"{criterion}-60", 60.0, (know_drop, inst_drop)),
    ):
        for (task, metric), drop in zip(
            [("toy_knowledge", "acc"), ("toy_instructions", "prompt_level_strict_acc")],
            drops,
            strict=True,
        ):
            vals = np.ones(n)
            vals[: int(round(drop * n))] = 0.0
            samples.append(
                pd.DataFrame(
                    {
                        "config": cfg,
                        "task": task,
                        "doc_id": range(n),
                        "metric": metric,
                        "value": vals,
                    }
                )
            )
            rows.append(
                {
                    "config": cfg,
                    "model": "toy",
                    "criterion": criterion,
                    "pruning_pct": pct,
                    "final_ratio": 4.0 * (1 - pct / 100),
                    "task": task,
                    "metric": metric,
                    "value": vals.mean(),
                }
            )
    return pd.DataFrame(rows), pd.concat(samples, ignore_index=True)


def test_capability_gap_by_hand_and_each_verdict():
    parts = [_toy(0.30, 0.02, "a"), _toy(0.10, 0.25, "b"), _toy(0.05, 0.05, "c")]
    results = pd.concat([p[0] for p in parts], ignore_index=True)
    samples = pd.concat([p[1] for p in parts], ignore_index=True)
    gap = capability_gap(results, samples)
    a = gap.set_index("criterion").loc["a"]
    assert (a.knowledge_change, a.instruction_change) == (
        pytest.approx(-0.30),
        pytest.approx(-0.02),
    )
    # standard error of a mean of 0/-1 differences: sd(ddof=1) / sqrt(n)
    se_k = np.std(np.r_[-np.ones(120), np.zeros(280)], ddof=1) / 20
    assert a.knowledge_se == pytest.approx(se_k) and a.gap == pytest.approx(0.28)
    verdict = pattern_verdict(gap).set_index("criterion").verdict
    assert verdict.to_dict() == {
        "a": "the study's pattern",
        "b": "the reverse of the study's pattern",
        "c": "neither pattern",
    }
    text = describe_pattern(pattern_verdict(gap))
    assert (
        "Under `b`, at an expansion ratio of 1.60, knowledge accuracy goes from 1.000 to 0.900"
        in text
    )
    assert "instruction accuracy from 1.000 to 0.750" in text


def _efficiency(rel_speed: float, rel_energy: float, rel_tokens: float) -> pd.DataFrame:
    rows = []
    for pct in (0, 50):
        for workload, batch in (("t_latency_b1", 1), ("t_throughput_b8", 8)):
            k = pct > 0
            for run in (1, 2, 3):
                jitter = 1 + 0.001 * run
                values = {
                    "throughput": 100 * (rel_speed if k else 1) * jitter,
                    "energy_per_token": (rel_energy if k else 1) * jitter,
                    "new_tokens": 1000 * (rel_tokens if k else 1),
                    "generate_wall_time": 10 * (rel_tokens / rel_speed if k else 1) * jitter,
                }
                for quantity, value in values.items():
                    rows.append(
                        {
                            "model": "m",
                            "pruning_pct": pct,
                            "workload": workload,
                            "batch_size": batch,
                            "run": run,
                            "excluded_by_study": False,
                            "quantity": quantity,
                            "value": value,
                        }
                    )
        rows.append(
            {
                "model": "m",
                "pruning_pct": pct,
                "workload": "summary",
                "batch_size": pd.NA,
                "run": pd.NA,
                "excluded_by_study": False,
                "quantity": "energy_per_token",
                "value": rel_energy if pct else 1.0,
            }
        )
    return pd.DataFrame(rows)


def test_deployment_criteria_can_pass_and_fail():
    good = _efficiency(rel_speed=1.2, rel_energy=0.75, rel_tokens=1.0)
    assert energy_claim(good)["verdict"] == "supported"
    assert batch_claim(good)["verdict"] == "supported"
    assert latency_claim(good)["verdict"] == "not supported"  # faster tokens, same length
    slow = _efficiency(rel_speed=0.8, rel_energy=1.1, rel_tokens=1.0)
    assert energy_claim(slow)["verdict"] == "not supported"
    assert batch_claim(slow)["verdict"] == "not supported"
    assert latency_claim(slow)["verdict"] == "supported"
    longer = _efficiency(rel_speed=1.0, rel_energy=0.9, rel_tokens=3.0)
    assert (
        latency_claim(longer)["verdict"] == "partly supported: longer requests, not slower tokens"
    )


def test_tables_format_as_the_prose_does():
    from widthprune.analysis.tables import readable

    frame = pd.DataFrame({"pruning_pct": [19.921875], "value": [0.1035], "p_adj": [0.000123]})
    html = readable(frame).to_html()
    assert "pruned (%)" in html and ">19.9<" in html
    # the same format spec as the glued prose: 0.1035 reads 0.103 (a .round(3) would say 0.104)
    assert f"{0.1035:.3f}" == "0.103" and ">0.103<" in html and ">0.000<" in html
    assert "overflow-x:auto" in html and "white-space: nowrap" in html
    wide = frame.set_index("pruning_pct")
    assert ">19.9<" in readable(wide, index=True).to_html()


def test_sweep_table_names_and_formats():
    from widthprune.analysis.tables import readable, sweep_table

    caps = pd.DataFrame(
        {
            "criterion": ["ppm"] * 4,
            "expansion_ratio": [4.0, 4.0, 1.6015625, 1.6015625],
            "pruning_pct": [0.0, 0.0, 59.9609375, 59.9609375],
            "task": ["toy_knowledge", "toy_instructions"] * 2,
            "metric": ["acc", "prompt_level_strict_acc"] * 2,
            "value": [1.0, 1.0, 0.865, 0.78],
        }
    )
    html = sweep_table(caps).to_html()
    assert "prompt-level strict" in html and "accuracy" in html and "pruned (%)" in html
    assert ">60.0<" in html and ">1.60<" in html and ">0.865<" in html
    assert html.index(">4.00<") < html.index(">1.60<")  # widest first
    budget = pd.DataFrame({"pruning_pct": [10], "parameters": [1235814400], "mlp_share": [0.652]})
    html = readable(budget).to_html()
    assert ">1,235,814,400<" in html and ">65.2 %<" in html and ">10<" in html


def test_criteria_compared_at_one_width():
    from widthprune.analysis.pattern import describe_criteria_at

    caps = pd.DataFrame(
        {
            "criterion": ["ppm", "wanda", "ppm", "wanda"],
            "expansion_ratio": [2.401, 2.401, 4.0, 4.0],
            "pruning_pct": [40.0, 40.0, 0.0, 0.0],
            "task": "toy_arithmetic",
            "metric": "exact_match",
            "value": [0.565, 0.905, 0.95, 0.95],
        }
    )
    text = describe_criteria_at(caps, "toy_arithmetic", "exact_match", 2.4)
    assert text == (
        "At an expansion ratio of 2.40, toy_arithmetic (exact_match) is 0.565 under `ppm` and "
        "0.905 under `wanda`."
    )
    assert (
        describe_criteria_at(caps[caps.criterion == "ppm"], "toy_arithmetic", "exact_match", 2.4)
        == ""
    )
    lone = pd.concat([caps, caps.iloc[[0]].assign(expansion_ratio=2.3, value=0.1)])
    assert describe_criteria_at(lone, "toy_arithmetic", "exact_match", 2.3).startswith(
        "At an expansion ratio of 2.40"
    )


def test_the_verdict_keeps_the_correction_family_of_the_table_it_is_read_from():
    """Holm over the two narrowest widths rejected where the printed table's Holm did not."""
    from widthprune.analysis.stats import adjust

    ratios = [3.6, 3.2, 2.8, 2.4, 2.0, 1.6]
    rows = []
    for criterion, narrow_p, narrow_gap in (("a", 0.5, 0.01), ("b", 0.006, -0.05)):
        for ratio in ratios:
            narrow = ratio == 1.6
            gap = narrow_gap if narrow else (0.028 if ratio == 2.0 and criterion == "a" else 0.0)
            p = narrow_p if narrow else (0.004 if gap else 0.9)
            half = 0.02
            rows.append(
                dict(criterion=criterion, expansion_ratio=ratio, gap=gap, p=p)
                | dict(ci_low=gap - half, ci_high=gap + half, pattern="no difference")
                | dict(knowledge_base=0.9, knowledge=0.5, instruction_base=0.5, instruction=0.4)
            )
    gap = adjust(pd.DataFrame(rows), method="holm")
    verdicts = pattern_verdict(gap).set_index("criterion")
    b = verdicts.loc["b"]
    # 12 tests: 0.004 * 12 = 0.048 for a's 2.00; b's narrowest 0.006 * 11 = 0.066, not rejected
    assert b.p_adj == pytest.approx(0.066) and b.verdict == "neither pattern"
    assert b.family == "Holm over the 12 gap tests of the table"
    text = describe_pattern(verdicts.reset_index(), gap=gap)
    assert "p = 0.066 after Holm over the 12 gap tests of the table), neither pattern" in text
    assert "excludes zero at a ratio of 2.00 (+0.028 [+0.008, +0.048], the study's way" in text
    assert "No criterion shows the study's pattern at its narrowest width." in text


def test_the_energy_verdict_carries_the_books_own_measurements_and_their_cards():
    from widthprune.analysis.deployment import efficiency_checkpoints, measured_energy
    from widthprune.efficiency.timing import load_measurements

    root = "benchmarks/results/"
    h100 = load_measurements(root + "efficiency_h100.csv")
    rounds = load_measurements(root + "efficiency_h200_rounds.csv")
    ours = pd.concat(
        [
            measured_energy(h100, 7373, {8: "static_cudagraph"}, metric="energy_per_token_net"),
            measured_energy(rounds, 7373, {8: "static_cudagraph"}),
        ]
    )
    assert ours.device.tolist() == ["NVIDIA H100 80GB HBM3", "NVIDIA H200"]
    assert ours.rounds.tolist() == [1, 3] and (ours.relative > 1.5).all()
    claim = energy_claim(published("efficiency"), measured=ours)
    more = "the study's unaligned width 7373 uses more energy than unpruned"
    assert claim["verdict"].endswith(more)
    assert "at batch 8 (NVIDIA H200, static_cudagraph, 3 rounds)" in claim["evidence"]
    # the aligned neighbour below saves: no such clause
    aligned = measured_energy(rounds, 7296, {8: "static_cudagraph"})
    assert "more energy" not in energy_claim(published("efficiency"), measured=aligned)["verdict"]
    points = efficiency_checkpoints(published("efficiency")).set_index(["model", "pruning_pct"])
    assert points.checkpoint[("Llama-3.2-1B", 0)] == "meta-llama/Llama-3.2-1B-Instruct"
    assert points.checkpoint[("Llama-3.2-3B", 0)] == "meta-llama/Llama-3.2-3B"
