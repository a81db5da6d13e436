"""What the evidence says: one strength rule for every claim, and the hypothesis with its n."""

import pandas as pd
import pytest

from widthprune.analysis.abstract import study_claims
from widthprune.analysis.evidence import (
    BASIS,
    describe_hypothesis,
    grade_claims,
    instruction_floor,
)
from widthprune.analysis.published import published


@pytest.fixture(scope="module")
def bench():
    return published("benchmarks")


def test_every_claim_is_graded_by_one_rule(bench):
    claims = study_claims(bench, published("efficiency"), n_resamples=999)
    graded = grade_claims(claims)
    assert list(graded.columns) == ["claim", "verdict", "basis", "strength"]
    assert len(graded) == len(BASIS) == 8
    strength = graded.strength.tolist()
    assert strength[0] == "consistent with the claim, from single runs"
    assert strength[1] == "weak: only part of the claim holds"
    assert strength[2] == "none: the data cannot show it either way"
    assert strength[3] == "weak: significant alone, not under every check"
    with pytest.raises(ValueError, match="no strength"):
        grade_claims(claims.assign(verdict="plausible"))


def _template(base_off: float, change_off: float, base_on: float, change_on: float):
    rows = []
    for on, base, change in ((False, base_off, change_off), (True, base_on, change_on)):
        rows.append(
            dict(comparison="pruning", chat_template=on, pruning_pct=39.97, base=base)
            | dict(estimate=change, ci_low=change - 0.05, ci_high=change + 0.05, n=280)
        )
    return pd.DataFrame(rows)


def test_the_hypothesis_counts_settings_by_their_start(bench):
    table = instruction_floor(bench, _template(0.07, 0.03, 0.23, -0.11)).set_index("setting")
    assert table.loc["Llama-3.2-1B (published)", "base"] == pytest.approx(0.1035)
    assert table.loc["Llama-3.2-1B (published)", "direction"] == "rises"
    assert table.loc["Llama-3.2-1B-Instruct (published)", "direction"] == "falls"
    smol = "SmolLM2-135M-Instruct, in its chat template"
    assert table.loc[smol, "direction"] == "falls" and not table.loc[smol, "near_floor"]
    assert table.loc["SmolLM2-135M-Instruct, prompts as they are", "direction"] == "undetermined"
    text = describe_hypothesis(table.reset_index())
    assert "rises in 2 of the 2 with a decided direction (3 in all)" in text
    assert "falls in 2 of the 2 with a decided direction (2 in all)" in text
    assert "n = 5 settings of 4 models" in text
    # a high start that rises counts against the hypothesis
    against = instruction_floor(bench, _template(0.07, 0.03, 0.23, 0.2))
    assert "falls in 1 of the 2" in describe_hypothesis(against)
