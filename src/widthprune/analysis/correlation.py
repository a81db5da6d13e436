"""Correlation of a few paired scores: estimates, exact permutation tests, robustness checks.

A sweep gives few configurations (7 per model in the published study), so every permutation of
the pairing can be enumerated: the permutation tests here are exact wherever ``n!`` pairings fit
in :data:`EXACT_LIMIT`, and Monte Carlo otherwise. The default test is two-sided on the size of
the statistic (``|r_perm| >= |r|``); the one-sided and the doubled one-sided conventions are
offered only under their own names, in :func:`correlation_tests`. The computing is scipy's.
"""

from __future__ import annotations

import itertools
import math
import warnings

import numpy as np
import pandas as pd
from scipy import stats as st

__all__ = [
    "ALTERNATIVES",
    "EXACT_LIMIT",
    "correlation",
    "correlation_tests",
    "kendall",
    "pearson",
    "permutation_p",
    "smallest_p",
    "spearman",
]

# Enumerate every pairing up to this many (8! = 40,320); sample pairings above it.
EXACT_LIMIT = math.factorial(8)


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
_METHODS = {
    "pearson": (st.pearsonr, pearson),
    "spearman": (st.spearmanr, spearman),
    "kendall": (st.kendalltau, kendall),
}
# convention -> what it counts among the pairings
ALTERNATIVES = {
    "two-sided": "|stat_perm| >= |stat|",
    "less": "stat_perm <= stat",
    "greater": "stat_perm >= stat",
    "doubled": "2 * min(P(stat_perm <= stat), P(stat_perm >= stat)), at most 1",
}


def _check(x, y) -> tuple[np.ndarray, np.ndarray]:
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if x.shape != y.shape or x.ndim != 1 or len(x) < 3:
        raise ValueError(f"x and y must be 1-D of equal length >= 3, got {x.shape} and {y.shape}")
    return x, y


def _null(x, y, fn, n_resamples: int, seed: int) -> tuple[np.ndarray, bool]:
    """The statistic under every pairing of y with x (exact), or under random ones."""
    n = len(x)
    if math.factorial(n) <= EXACT_LIMIT:
        order = np.array(list(itertools.permutations(range(n))), dtype=np.intp)
        return fn(x[None, :], y[order]), True
    rng = np.random.default_rng(seed)
    order = rng.permuted(np.broadcast_to(np.arange(n), (n_resamples, n)), axis=1)
    return fn(x[None, :], y[order]), False


def permutation_p(
    x,
    y,
    method: str = "pearson",
    *,
    alternative: str = "two-sided",
    n_resamples: int = 9999,
    seed: int = 0,
) -> tuple[float, str]:
    """Permutation p of no association between paired x and y, exact where it can be.

    Args:
        x, y: paired observations, shape (n,), n >= 3.
        method: ``"pearson"``, ``"spearman"`` or ``"kendall"``.
        alternative: a key of :data:`ALTERNATIVES`. ``"two-sided"`` counts the pairings whose
            statistic is at least as large in size as the observed one; ``"doubled"`` is twice
            the smaller one-sided p (scipy's "two-sided"), which is not the same number.
        n_resamples: random pairings drawn when the n! pairings exceed :data:`EXACT_LIMIT`
            (then p = (k + 1) / (n_resamples + 1), counting the observed pairing).
        seed: seeds those draws.

    Returns:
        (p, how): how names the test, e.g. ``"exact, 5040 pairings"``.
    """
    x, y = _check(x, y)
    if method not in _METHODS:
        raise ValueError(f"unknown method {method!r}; valid: {sorted(_METHODS)}")
    if alternative not in ALTERNATIVES:
        raise ValueError(f"unknown alternative {alternative!r}; valid: {sorted(ALTERNATIVES)}")
    fn = _METHODS[method][1]
    observed = float(fn(x, y))
    null, exact = _null(x, y, fn, n_resamples, seed)
    tol = 1e-12 * max(1.0, abs(observed))  # pairings that tie with the observed one count
    with np.errstate(invalid="ignore"):  # a constant side gives NaN, never as extreme
        counts = {
            "two-sided": np.abs(null) >= abs(observed) - tol,
            "less": null <= observed + tol,
            "greater": null >= observed - tol,
        }

    def share(hits: np.ndarray) -> float:
        k = int(hits.sum())
        return k / len(hits) if exact else (k + 1) / (len(hits) + 1)

    if alternative == "doubled":
        p = min(1.0, 2 * min(share(counts["less"]), share(counts["greater"])))
    else:
        p = share(counts[alternative])
    how = f"exact, {len(null)} pairings" if exact else f"{n_resamples} random pairings"
    return float(p), how


def smallest_p(x, y, method: str = "pearson", *, n_resamples: int = 9999, seed: int = 0) -> float:
    """The smallest two-sided permutation p that these values allow, whatever their pairing.

    With n points there are n! pairings; the most extreme one (the largest ``|stat|`` any
    pairing reaches) is still reached by some of them, so p cannot fall below their share. With
    five points that is at least 1/120: a test at 0.05 then rejects only a near-perfect order,
    and a p above it says little about whether there is a correlation.

    Args:
        x, y: paired observations, shape (n,), n >= 3.
        method: as in :func:`permutation_p`.

    Returns:
        The share of pairings reaching the largest ``|stat|`` (exact), or 1 / (n_resamples + 1)
        where the pairings are sampled.
    """
    x, y = _check(x, y)
    null, exact = _null(x, y, _METHODS[method][1], n_resamples, seed)
    if not exact:
        return 1 / (n_resamples + 1)
    size = np.abs(null)
    top = np.nanmax(size)
    return float((size >= top - 1e-12 * max(1.0, top)).mean())


def correlation(
    x, y, *, seed: int = 0, n_resamples: int = 9999, confidence: float = 0.95
) -> pd.DataFrame:
    """Pearson, Spearman and Kendall correlation of paired observations, with robustness checks.

    Args:
        x, y: paired observations, shape (n,), n >= 3.
        seed: seeds the bootstrap (and the permutation test where it is not exact).
        n_resamples: bootstrap resamples, and random pairings where n! > :data:`EXACT_LIMIT`.
        confidence: level of the bootstrap interval.

    Returns:
        One row per method: estimate, p (the library's test: t for Pearson and Spearman, exact
        for Kendall at small n), p_perm (permutation test of no association, two-sided on the
        size of the statistic), p_min (the smallest p_perm these values allow, see
        :func:`smallest_p`), perm_test (exact or sampled), ci_low/ci_high (paired percentile
        bootstrap, resamples with a constant side dropped), loo_min/loo_max (range of the
        estimate leaving one pair out), n, method.
    """
    x, y = _check(x, y)
    rows = []
    tail = (1 - confidence) / 2 * 100
    for i, (name, (scipy_fn, fn)) in enumerate(_METHODS.items()):
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
        p_perm, how = permutation_p(x, y, name, n_resamples=n_resamples, seed=seed + i)
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
                "p_perm": p_perm,
                "p_min": smallest_p(x, y, name, n_resamples=n_resamples, seed=seed + i),
                "perm_test": how,
                "loo_min": float(np.nanmin(loo)),
                "loo_max": float(np.nanmax(loo)),
                "n": len(x),
            }
        )
    return pd.DataFrame(rows)


def correlation_tests(x, y, *, seed: int = 0, n_resamples: int = 9999) -> pd.DataFrame:
    """The p value of one correlation under every convention, side by side.

    Args:
        x, y: paired observations, shape (n,), n >= 3.

    Returns:
        One row per (method, convention): method, estimate, convention, test (how p was
        computed), p, n. Conventions: ``t test`` (the library's, two-sided; for Kendall the
        exact null distribution where scipy has it), and the permutation conventions of
        :data:`ALTERNATIVES`.
    """
    x, y = _check(x, y)
    rows = []
    for name, (scipy_fn, _) in _METHODS.items():
        res = scipy_fn(x, y)
        library = "exact null, two-sided" if name == "kendall" else "t test, two-sided"
        rows.append(
            {"method": name, "convention": "library", "test": library, "p": float(res.pvalue)}
        )
        for alternative, counts in ALTERNATIVES.items():
            p, how = permutation_p(
                x, y, name, alternative=alternative, n_resamples=n_resamples, seed=seed
            )
            rows.append(
                {"method": name, "convention": alternative, "test": f"{how}: {counts}", "p": p}
            )
        for row in rows[-5:]:
            row |= {"estimate": float(res.statistic), "n": len(x)}
    return pd.DataFrame(rows)[["method", "estimate", "convention", "test", "p", "n"]]
