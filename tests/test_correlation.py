"""Permutation tests of a correlation: exact enumeration, conventions, the study's 3B numbers."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from scipy import stats as st

from widthprune.analysis.claims import pair_scores
from widthprune.analysis.correlation import (
    EXACT_LIMIT,
    correlation_tests,
    permutation_p,
)
from widthprune.analysis.published import published


def brute_force(x, y, fn):
    """The statistic over every pairing, one permutation at a time."""
    return np.array(
        [fn(x, np.asarray(y)[list(p)]).statistic for p in itertools.permutations(range(len(x)))]
    )


@pytest.mark.parametrize(
    "method, ref",
    [("pearson", st.pearsonr), ("spearman", st.spearmanr), ("kendall", st.kendalltau)],
)
def test_exact_p_equals_a_brute_force_enumeration(method, ref):
    rng = np.random.default_rng(7)
    x, y = rng.normal(size=6), rng.normal(size=6)
    y[2] = y[4]  # a tie, for the rank methods
    null, obs = brute_force(x, y, ref), ref(x, y).statistic
    eps = 1e-12
    want = {
        "two-sided": np.mean(np.abs(null) >= abs(obs) - eps),
        "less": np.mean(null <= obs + eps),
        "greater": np.mean(null >= obs - eps),
    }
    want["doubled"] = min(1.0, 2 * min(want["less"], want["greater"]))
    for alternative, p in want.items():
        got, how = permutation_p(x, y, method, alternative=alternative)
        assert got == pytest.approx(p, abs=1e-12), alternative
        assert how == "exact, 720 pairings"


def test_two_sided_and_doubled_differ_on_a_skewed_null():
    # a null distribution that is not symmetric: |r| counts both tails, doubling one does not
    x = np.array([0.0, 0.0, 0.0, 0.0, 1.0])
    y = np.array([0.0, 1.0, 2.0, 3.0, 10.0])
    two, _ = permutation_p(x, y, alternative="two-sided")
    doubled, _ = permutation_p(x, y, alternative="doubled")
    # r is largest when the lone 1 meets the 10: 24 of 120 pairings; no pairing reaches -r
    assert two == pytest.approx(24 / 120) and doubled == pytest.approx(2 * 24 / 120)


def test_sampled_test_above_the_exact_limit():
    n = 9
    assert np.prod(np.arange(1, n + 1)) > EXACT_LIMIT
    x = np.arange(float(n))
    p, how = permutation_p(x, x, n_resamples=999, seed=1)
    # no random pairing of 9 points reaches r = 1 in 999 draws (chance 2/9! each): p = 1/1000
    assert (p, how) == (pytest.approx(1 / 1000), "999 random pairings")


def test_bad_arguments_name_the_valid_ones():
    with pytest.raises(ValueError, match="pearson"):
        permutation_p([1, 2, 3], [1, 2, 3], "cosine")
    with pytest.raises(ValueError, match="two-sided"):
        permutation_p([1, 2, 3], [1, 2, 3], alternative="sideways")


def test_the_3b_correlation_under_each_convention():
    pairs = pair_scores(published(), ("mmlu", "acc"), ("truthfulqa_mc2", "acc"))
    pairs = pairs[pairs.model == "Llama-3.2-3B"]
    out = correlation_tests(pairs["mmlu"], pairs["truthfulqa_mc2"])
    p = out.set_index(["method", "convention"])["p"]
    assert round(out.estimate.iloc[0], 3) == -0.864
    assert round(p[("pearson", "library")], 3) == 0.012  # the study's t test
    # exact, 5040 pairings: 160 reach |r| >= 0.864, all of them with r <= -0.864
    assert p[("pearson", "two-sided")] == pytest.approx(160 / 5040)
    assert p[("pearson", "less")] == pytest.approx(160 / 5040)
    assert p[("pearson", "doubled")] == pytest.approx(320 / 5040)
    # ranks: Spearman rho = -0.607 (840 of 5040), Kendall tau = -0.333 (scipy's exact null)
    assert p[("spearman", "two-sided")] == pytest.approx(840 / 5040)
    assert p[("kendall", "two-sided")] == pytest.approx(p[("kendall", "library")])
    assert round(p[("kendall", "two-sided")], 3) == 0.381
