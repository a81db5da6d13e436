"""Statistics for few-configuration sweeps: robust correlations, paired per-item tests, floors.

Every function returns a tidy frame, one row per comparison, with ``estimate``, ``ci_low``,
``ci_high``, ``p``, ``n`` and ``method`` (and ``p_adj`` after :func:`adjust`). The computing is
scipy's and statsmodels'; seeds are arguments.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
from scipy import stats as st

from ..evaluation.catalogue import CATALOGUE

__all__ = [
    "CHANCE",
    "adjust",
    "baseline_change",
    "chance_floor",
    "correlation",
    "kendall",
    "pearson",
    "regress",
    "spearman",
]

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


def pearson(x: np.ndarray, y: np.ndarray, axis: int = -1) -> np.ndarray:
    """Pearson r along ``axis`` (batched: shapes (..., n)); NaN where a side is constant."""
    xc = x - x.mean(axis=axis, keepdims=True)
    yc = y - y.mean(axis=axis, keepdims=True)
    den = np.sqrt((xc**2).sum(axis=axis) * (yc**2).sum(axis=axis))
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(den > 0, (xc * yc).sum(axis=axis) / den, np.nan)


def spearman(x: np.ndarray, y: np.ndarray, axis: int = -1) -> np.ndarray:
    """Spearman rho along ``axis``: Pearson r of the (average-tie) ranks."""
    return pearson(st.rankdata(x, axis=axis), st.rankdata(y, axis=axis), axis=axis)


def kendall(x: np.ndarray, y: np.ndarray, axis: int = -1) -> np.ndarray:
    """Kendall tau-b along ``axis``, from the signs of all pairwise differences."""
    x, y = np.moveaxis(x, axis, -1), np.moveaxis(y, axis, -1)
    i, j = np.triu_indices(x.shape[-1], k=1)
    sx, sy = np.sign(x[..., j] - x[..., i]), np.sign(y[..., j] - y[..., i])
    den = np.sqrt(np.abs(sx).sum(-1) * np.abs(sy).sum(-1))
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(den > 0, (sx * sy).sum(-1) / den, np.nan)


# method -> (scipy's function for the estimate and its p, the batched statistic for resampling)
_CORRELATIONS = {
    "pearson": (st.pearsonr, pearson),
    "spearman": (st.spearmanr, spearman),
    "kendall": (st.kendalltau, kendall),
}


def correlation(
    x, y, *, seed: int = 0, n_resamples: int = 9999, confidence: float = 0.95
) -> pd.DataFrame:
    """Pearson, Spearman and Kendall correlation of paired observations, with robustness checks.

    Args:
        x, y: paired observations, shape (n,), n >= 3.
        seed: seeds the bootstrap and the permutation test.
        n_resamples: bootstrap resamples and permutation draws (the permutation test is
            exact when every pairing fits in that number).
        confidence: level of the bootstrap interval.

    Returns:
        One row per method: estimate, p (the library's test), p_perm (permutation test of no
        association, two-sided), ci_low/ci_high (paired percentile bootstrap, resamples with a
        constant side dropped), loo_min/loo_max (range of the estimate leaving one pair out),
        n, method.
    """
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if x.shape != y.shape or x.ndim != 1 or len(x) < 3:
        raise ValueError(f"x and y must be 1-D of equal length >= 3, got {x.shape} and {y.shape}")
    rows = []
    tail = (1 - confidence) / 2 * 100
    for i, (name, (scipy_fn, fn)) in enumerate(_CORRELATIONS.items()):
        res = scipy_fn(x, y)
        with warnings.catch_warnings():  # constant resamples give NaN, dropped below
            warnings.simplefilter("ignore", st.DegenerateDataWarning)
            boot = st.bootstrap(
                (x, y),
                fn,
                paired=True,
                vectorized=True,
                n_resamples=n_resamples,
                method="percentile",
                rng=np.random.default_rng(seed + i),
            )
        lo, hi = np.nanpercentile(boot.bootstrap_distribution, [tail, 100 - tail])
        perm = st.permutation_test(
            (x, y),
            fn,
            permutation_type="pairings",
            vectorized=True,
            n_resamples=n_resamples,
            rng=np.random.default_rng(seed + i),
        )
        keep = ~np.eye(len(x), dtype=bool)  # row k leaves out pair k
        loo = fn(
            np.broadcast_to(x, keep.shape)[keep].reshape(len(x), -1),
            np.broadcast_to(y, keep.shape)[keep].reshape(len(x), -1),
        )
        rows.append(
            {
                "method": name,
                "estimate": float(res.statistic),
                "ci_low": float(lo),
                "ci_high": float(hi),
                "p": float(res.pvalue),
                "p_perm": float(perm.pvalue),
                "loo_min": float(np.nanmin(loo)),
                "loo_max": float(np.nanmax(loo)),
                "n": len(x),
            }
        )
    return pd.DataFrame(rows)


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
        ``by`` + ``x``, baseline_value, value, estimate (value - baseline_value), ci_low,
        ci_high, p (two-sided; NaN where no standard error is known), n, method.
    """
    by = [c for c in by if c in frame]
    out = frame.copy()
    out["se"] = _se(out["value"], out.get("stderr"), out.get("n"))
    base = out[out[x] == baseline][[*by, "value", "se"]]
    if base.duplicated(by).any():
        raise ValueError(f"several baseline rows share the same {by}")
    merged = out[out[x] != baseline].merge(base, on=by, suffixes=("", "_base"))
    se = np.sqrt(merged["se"] ** 2 + merged["se_base"] ** 2)
    z = st.norm.ppf(1 - (1 - confidence) / 2)
    merged["baseline_value"] = merged["value_base"]
    merged["estimate"] = merged["value"] - merged["value_base"]
    merged["ci_low"], merged["ci_high"] = merged["estimate"] - z * se, merged["estimate"] + z * se
    merged["p"] = 2 * st.norm.sf(np.abs(merged["estimate"]) / se)
    merged["method"] = "z, independent scores (conservative)"
    cols = [*by, x, "baseline_value", "value", "estimate", "ci_low", "ci_high", "p"]
    return merged[cols + [c for c in ("n", "method") if c in merged]]
