"""Statistics for few-configuration sweeps: regressions, multiple testing, floors, changes.

Every function returns a tidy frame, one row per comparison, with ``estimate``, ``ci_low``,
``ci_high``, ``p``, ``n`` and ``method`` (and ``p_adj`` after :func:`adjust`). The computing is
scipy's and statsmodels'. Correlations are in :mod:`widthprune.analysis.correlation`, paired
per-item tests in :mod:`widthprune.analysis.comparisons`.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy import stats as st

from ..evaluation.catalogue import CATALOGUE

__all__ = ["CHANCE", "adjust", "baseline_change", "chance_floor", "mc2_floor", "regress"]

# Score of a uniform guess, per (task, metric), for the tasks whose answer sets are fixed.
# (task, metric) -> chance level: the evaluation's per-task table for both accuracies, and 0 for
# exact-match generation
CHANCE: dict[tuple[str, str], float] = {
    (task, metric): info.chance
    for task, info in CATALOGUE.items()
    if info.chance is not None
    for metric in {info.headline[0], "acc", "acc_norm"}
    if metric in ("acc", "acc_norm") or metric == info.headline[0]
}
# MuSR's three parts, items x chance: murder mysteries 250 x 1/2, object placements 256 x 1/5,
# team allocation 250 x 1/3 (the choices the Open LLM Leaderboard normalises by)
CHANCE.setdefault(("leaderboard_musr", "acc_norm"), (250 / 2 + 256 / 5 + 250 / 3) / 756)


def mc2_floor(n_true, n_false) -> float:
    """TruthfulQA-MC2's score of a model that gives every answer the same probability.

    MC2 is the probability mass a model puts on a question's true answers, normalised over its
    true and false ones; a uniform guess scores n_true / (n_true + n_false) on each question,
    so the floor is the mean of that share. It needs each question's counts, which the study's
    result files do not hold: without the items, the floor cannot be computed.

    Args:
        n_true, n_false: per question, the numbers of true and false reference answers,
            shape (questions,).
    """
    t, f = np.asarray(n_true, dtype=float), np.asarray(n_false, dtype=float)
    if t.shape != f.shape or t.ndim != 1 or len(t) == 0 or (t < 1).any() or (f < 1).any():
        raise ValueError("n_true and n_false: equal 1-D shapes, at least one answer of each")
    return float((t / (t + f)).mean())


def regress(
    data: pd.DataFrame, formula: str, *, by: list[str] | None = None, confidence: float = 0.95
) -> pd.DataFrame:
    """Ordinary least squares (statsmodels formula), one row per term and group.

    Args:
        data: long frame holding the formula's columns (and ``by``).
        formula: patsy formula, e.g. ``"value ~ expansion_ratio + C(model)"``.
        by: fit one model per group of these columns.
        confidence: level of the coefficient intervals.

    Returns:
        Columns ``by`` + term, estimate, ci_low, ci_high, p, n, r2, method.
    """
    import statsmodels.formula.api as smf

    groups = data.groupby(by, sort=True) if by else [((), data)]
    rows = []
    for key, part in groups:
        fit = smf.ols(formula, data=part).fit()
        ci = fit.conf_int(alpha=1 - confidence)
        labels = dict(zip(by or [], key if isinstance(key, tuple) else (key,), strict=True))
        for term in fit.params.index:
            rows.append(
                {
                    **labels,
                    "term": term,
                    "estimate": fit.params[term],
                    "ci_low": ci.loc[term, 0],
                    "ci_high": ci.loc[term, 1],
                    "p": fit.pvalues[term],
                    "n": int(fit.nobs),
                    "r2": fit.rsquared,
                    "method": "OLS",
                }
            )
    return pd.DataFrame(rows)


_ADJUST = {"holm": "holm", "bh": "fdr_bh", "fdr_bh": "fdr_bh", "bonferroni": "bonferroni"}


def adjust(
    frame: pd.DataFrame, *, method: str = "holm", p_col: str = "p", alpha: float = 0.05
) -> pd.DataFrame:
    """Add ``p_adj`` and ``reject`` for the whole frame as one family of tests.

    Args:
        frame: one row per test, p-values in ``p_col`` (NaN rows are left out of the family).
        method: ``"holm"`` (family-wise error), ``"bh"`` (Benjamini-Hochberg false discovery
            rate) or ``"bonferroni"``.
        alpha: level for ``reject``.
    """
    from statsmodels.stats.multitest import multipletests

    if method not in _ADJUST:
        raise ValueError(f"unknown method {method!r}; valid: {sorted(_ADJUST)}")
    out = frame.copy()
    out["p_adj"], out["reject"] = math.nan, False
    ok = out[p_col].notna()
    if ok.any():
        reject, p_adj, _, _ = multipletests(out.loc[ok, p_col], alpha=alpha, method=_ADJUST[method])
        out.loc[ok, "p_adj"], out.loc[ok, "reject"] = p_adj, reject
    out["adjust"] = method
    return out


def _se(value: pd.Series, stderr: pd.Series | None, n: pd.Series | None) -> pd.Series:
    """Standard error: the reported one, else the binomial one from n items."""
    se = pd.Series(np.nan, index=value.index) if stderr is None else stderr.astype(float)
    if n is not None:
        binom = np.sqrt(value * (1 - value) / n.astype(float))
        se = se.fillna(binom.where((value >= 0) & (value <= 1)))
    return se


def chance_floor(
    frame: pd.DataFrame, *, alpha: float = 0.05, confidence: float = 0.95
) -> pd.DataFrame:
    """Test each score against the chance level of its task: is it above a uniform guess?

    Args:
        frame: long results with task, metric, value and n (items) and/or stderr; a ``chance``
            column, where present and not NaN, overrides :data:`CHANCE`.
        alpha: level for ``at_chance``.
        confidence: level of the interval.

    Returns:
        The input columns plus chance, estimate (value - chance), ci_low/ci_high (interval of
        the score minus chance: Wilson with n, normal with stderr), p (one-sided, score above
        chance: exact binomial with k = round(value * n), else a z test), method and at_chance
        (not distinguishable from chance at ``alpha``). Rows without a known chance get NaN.
    """
    out = frame.copy()
    keys = zip(out["task"], out["metric"], strict=True)
    table = pd.Series([CHANCE.get(k, math.nan) for k in keys], index=out.index, dtype=float)
    out["chance"] = out["chance"].fillna(table) if "chance" in out else table
    se = _se(out["value"], out.get("stderr"), out.get("n"))
    z = st.norm.ppf(1 - (1 - confidence) / 2)
    res = []
    ns = out["n"] if "n" in out else pd.Series(math.nan, index=out.index)
    for v, c, n, s in zip(out["value"], out["chance"], ns, se, strict=True):
        if math.isnan(c):
            res.append((math.nan, math.nan, math.nan, "no chance level"))
        elif n is not None and not pd.isna(n) and 0 < c < 1:
            k = round(v * n)
            test = st.binomtest(k, int(n), c, alternative="greater")
            ci = st.binomtest(k, int(n), c).proportion_ci(confidence, method="wilson")
            res.append((ci.low - c, ci.high - c, test.pvalue, "exact binomial (one-sided)"))
        elif not math.isnan(s) and s > 0:
            res.append((v - c - z * s, v - c + z * s, st.norm.sf((v - c) / s), "z (one-sided)"))
        else:
            res.append((math.nan, math.nan, math.nan, "no n or stderr"))
    out["estimate"] = out["value"] - out["chance"]
    out[["ci_low", "ci_high", "p", "method"]] = pd.DataFrame(res, index=out.index)
    out["at_chance"] = out["p"] >= alpha
    return out


def baseline_change(
    frame: pd.DataFrame,
    *,
    by: tuple[str, ...] = ("model", "task", "metric", "filter"),
    x: str = "pruning_pct",
    baseline: float = 0,
    confidence: float = 0.95,
) -> pd.DataFrame:
    """Change of each score from its unpruned baseline, with a z test from summary statistics.

    Without per-item samples, the two scores are treated as independent; since both configs
    answer the same items, the true standard error of the difference is smaller, so these p
    values are conservative. Use :func:`compare_items` when samples exist.

    Args:
        frame: long results with ``by`` columns, ``x``, value, and stderr and/or n.
        baseline: the value of ``x`` that is the reference.

    Returns:
        ``by`` + ``x``, baseline_value, value, estimate (value - baseline_value), se (its
        standard error), ci_low, ci_high, p (two-sided; NaN where no standard error is known),
        n, method.
    """
    by = [c for c in by if c in frame]
    out = frame.copy()
    out["se"] = _se(out["value"], out.get("stderr"), out.get("n"))
    base = out[out[x] == baseline][[*by, "value", "se"]]
    if base.duplicated(by).any():
        raise ValueError(f"several baseline rows share the same {by}")
    merged = out[out[x] != baseline].merge(base, on=by, suffixes=("", "_base"))
    se = merged["se"] = np.sqrt(merged["se"] ** 2 + merged["se_base"] ** 2)
    z = st.norm.ppf(1 - (1 - confidence) / 2)
    merged["baseline_value"] = merged["value_base"]
    merged["estimate"] = merged["value"] - merged["value_base"]
    merged["ci_low"], merged["ci_high"] = merged["estimate"] - z * se, merged["estimate"] + z * se
    merged["p"] = 2 * st.norm.sf(np.abs(merged["estimate"]) / se)
    merged["method"] = "z, independent scores (conservative)"
    cols = [*by, x, "baseline_value", "value", "estimate", "se", "ci_low", "ci_high", "p"]
    return merged[cols + [c for c in ("n", "method") if c in merged]]
