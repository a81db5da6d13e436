"""Paired per-item comparisons of two configurations evaluated on the same items.

lm-eval writes one record per item; two configurations answered the same items, so their
difference is best judged item by item, not from two summary scores. Right/wrong items get
McNemar's exact test; other per-item scores a sign-flip permutation test of the mean
difference, exact (every sign pattern) where the items that differ are few, and otherwise
sampled with enough sign patterns for a p value adjusted over the whole family of comparisons
to reach the level of the test. Frames in and out are tidy, as in :mod:`widthprune.analysis.stats`.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
from scipy import stats as st

from .stats import adjust

__all__ = ["EXACT_FLIPS", "compare_configs", "compare_items", "family_resamples", "sign_flip"]

# Enumerate every sign pattern of the differing items up to 2**16 of them; sample above that.
EXACT_FLIPS = 2**16


def family_resamples(family: int, *, alpha: float = 0.05, margin: int = 10) -> int:
    """Random sign patterns a sampled test needs so that a p adjusted over ``family`` tests can
    reach ``alpha``.

    The smallest p a sampled test can give is ``1 / (B + 1)``; Holm and Bonferroni multiply the
    smallest p of a family of m tests by m. So B must exceed ``m / alpha``; ``margin`` times that
    keeps the floor well below the level, for comparisons far from zero.
    """
    if family < 1 or not 0 < alpha < 1:
        raise ValueError(f"family must be >= 1 and alpha in (0, 1), got {family}, {alpha}")
    return math.ceil(margin * family / alpha)


def _pair(a: pd.DataFrame, b: pd.DataFrame) -> pd.DataFrame:
    keys = ["task", "doc_id", "metric"]
    for name, frame in (("a", a), ("b", b)):
        missing = {*keys, "value"} - set(frame.columns)
        if missing:
            raise ValueError(
                f"samples {name} lacks columns {sorted(missing)}; needs {keys + ['value']}"
            )
        if frame.duplicated(keys).any():
            raise ValueError(f"samples {name} has repeated (task, doc_id, metric) rows")
    both = a[keys + ["value"]].merge(
        b[keys + ["value"]], on=keys, how="outer", suffixes=("_a", "_b")
    )
    unpaired = both[["value_a", "value_b"]].isna().any(axis=1)
    if unpaired.any():
        where = both.loc[unpaired, "task"].value_counts().to_dict()
        raise ValueError(f"{int(unpaired.sum())} items are in only one of the two configs: {where}")
    return both


def _mean_diff(a, b, axis=-1):
    return np.mean(b - a, axis=axis)


def _d_z(a, b, axis=-1):
    d = b - a
    sd = np.std(d, axis=axis, ddof=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(sd > 0, np.mean(d, axis=axis) / sd, np.nan)


def sign_flip(d: np.ndarray, *, n_resamples: int, rng) -> tuple[float, float, str]:
    """Two-sided sign-flip test of a zero mean difference: (p, smallest attainable p, how).

    Items with no difference carry no sign, so only the k differing ones are flipped: all
    2**k patterns when that is at most :data:`EXACT_FLIPS` (p = share of patterns whose |sum|
    reaches the observed one), else ``n_resamples`` random ones (p = (hits + 1) /
    (n_resamples + 1), counting the observed pattern).
    """
    d = np.asarray(d, dtype=float)
    d = d[d != 0]
    if d.size == 0:
        return 1.0, 1.0, "no item differs"
    observed = abs(d.sum()) * (1 - 1e-12)  # patterns that tie with the observed one count
    if 2**d.size <= EXACT_FLIPS:
        patterns = (np.arange(2**d.size)[:, None] >> np.arange(d.size)) & 1
        hits = int((np.abs((2 * patterns - 1) @ d) >= observed).sum())
        return hits / 2**d.size, 2 / 2**d.size, f"sign-flip exact ({2**d.size} patterns)"
    hits, left = 0, n_resamples
    while left:  # in batches, to bound memory
        size = min(left, 2000)
        signs = rng.choice(np.array([-1.0, 1.0]), size=(size, d.size))
        hits += int((np.abs(signs @ d) >= observed).sum())
        left -= size
    p = (hits + 1) / (n_resamples + 1)
    return p, 1 / (n_resamples + 1), f"sign-flip, {n_resamples} random patterns"


def compare_items(
    a: pd.DataFrame,
    b: pd.DataFrame,
    *,
    seed: int = 0,
    n_resamples: int = 2000,
    confidence: float = 0.95,
    family: int = 1,
    alpha: float = 0.05,
) -> pd.DataFrame:
    """Paired per-item comparison of two configurations, one row per (task, metric).

    Args:
        a, b: per-item samples with columns task, doc_id, metric, value (one row per item and
            metric); every item must be in both (they are paired on task, doc_id, metric).
        seed: seeds the bootstrap and the sampled sign-flip tests.
        n_resamples: bootstrap resamples, and at least this many random sign patterns.
        confidence: level of the intervals.
        family: how many tests the p values will be adjusted over; a sampled sign-flip test
            draws at least :func:`family_resamples` patterns so that its adjusted p can reach
            ``alpha``.
        alpha: the level of the comparisons.

    Returns:
        task, metric, estimate (mean of b - a), ci_low/ci_high (paired percentile bootstrap),
        p (two-sided: exact McNemar for 0/1 items, else the sign-flip test), p_floor (smallest
        p the test could have given), effect (d_z = mean / sd of the differences) with
        effect_ci_low/high, b_better/a_better (discordant items where only one config is right;
        binary metrics), n, method.
    """
    from statsmodels.stats.contingency_tables import mcnemar

    flips = max(n_resamples, family_resamples(family, alpha=alpha))
    rows = []
    for (task, metric), part in _pair(a, b).groupby(["task", "metric"], sort=True):
        va, vb = part["value_a"].to_numpy(float), part["value_b"].to_numpy(float)
        rng = np.random.default_rng(seed)
        tail = (1 - confidence) / 2 * 100
        row = {"task": task, "metric": metric, "estimate": float(np.mean(vb - va)), "n": len(va)}
        if len(va) > 1 and np.ptp(vb - va) > 0:
            kw = dict(paired=True, n_resamples=n_resamples, method="percentile", batch=200, rng=rng)
            with warnings.catch_warnings():  # resamples with no spread give NaN, dropped below
                warnings.simplefilter("ignore", st.DegenerateDataWarning)
                boot = st.bootstrap((va, vb), _mean_diff, confidence_level=confidence, **kw)
                dz = st.bootstrap((va, vb), _d_z, confidence_level=confidence, **kw)
            lo, hi = np.nanpercentile(dz.bootstrap_distribution, [tail, 100 - tail])
            row |= {
                "ci_low": boot.confidence_interval.low,
                "ci_high": boot.confidence_interval.high,
            }
            row |= {"effect": float(_d_z(va, vb)), "effect_ci_low": lo, "effect_ci_high": hi}
        else:  # identical differences everywhere: no sampling variation to describe
            row |= {"ci_low": row["estimate"], "ci_high": row["estimate"], "effect": math.nan}
        if np.isin(np.concatenate([va, vb]), (0.0, 1.0)).all():
            b_better = int(((vb == 1) & (va == 0)).sum())
            a_better = int(((va == 1) & (vb == 0)).sum())
            table = [[0, a_better], [b_better, 0]]
            p = mcnemar(table, exact=True).pvalue if a_better + b_better else 1.0
            floor = min(1.0, 2 * 0.5 ** (a_better + b_better))
            row |= {"p": float(p), "p_floor": floor, "b_better": b_better, "a_better": a_better}
            row["method"] = "McNemar exact; paired bootstrap CI"
        else:
            p, floor, how = sign_flip(vb - va, n_resamples=flips, rng=rng)
            row |= {"p": p, "p_floor": floor, "method": f"{how}; paired bootstrap CI"}
        rows.append(row)
    return pd.DataFrame(rows)


def compare_configs(
    samples: pd.DataFrame,
    *,
    baseline: str,
    config_col: str = "config",
    seed: int = 0,
    n_resamples: int = 2000,
    method: str = "holm",
    alpha: float = 0.05,
    family: int | None = None,
) -> pd.DataFrame:
    """Compare every configuration of a samples frame with ``baseline``, item by item.

    Args:
        samples: per-item samples of several configurations (``config_col`` names them).
        baseline: the configuration every other one is compared with.
        method: multiple-comparison correction over all (config, task, metric) tests.
        alpha: level of the comparisons (``reject``).
        family: size of the family the p values will be adjusted over, when larger than this
            frame's own tests (several sweeps adjusted together); default: this frame's.

    Returns:
        :func:`compare_items` rows with ``config_col`` and ``baseline``, plus p_adj and reject.
    """
    configs = list(dict.fromkeys(samples[config_col]))
    if baseline not in configs:
        raise ValueError(f"baseline {baseline!r} not among the configs {configs}")
    base = samples[samples[config_col] == baseline]
    own = (len(configs) - 1) * len(base[["task", "metric"]].drop_duplicates())
    parts = [
        compare_items(
            base,
            samples[samples[config_col] == c],
            seed=seed,
            n_resamples=n_resamples,
            family=max(own, family or 1),
            alpha=alpha,
        ).assign(**{config_col: c, "baseline": baseline})
        for c in configs
        if c != baseline
    ]
    return adjust(pd.concat(parts, ignore_index=True), method=method, alpha=alpha)
