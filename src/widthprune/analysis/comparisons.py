"""Paired per-item comparisons of two configurations evaluated on the same items.

lm-eval writes one record per item; two configurations answered the same items, so their
difference is best judged item by item (McNemar, paired bootstrap), not from two summary
scores. Frames in and out are tidy, as in :mod:`widthprune.stats`.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
from scipy import stats as st

from .stats import adjust

__all__ = ["compare_configs", "compare_items"]


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


def compare_items(
    a: pd.DataFrame,
    b: pd.DataFrame,
    *,
    seed: int = 0,
    n_resamples: int = 2000,
    confidence: float = 0.95,
) -> pd.DataFrame:
    """Paired per-item comparison of two configurations, one row per (task, metric).

    Args:
        a, b: per-item samples with columns task, doc_id, metric, value (one row per item and
            metric); every item must be in both (they are paired on task, doc_id, metric).
        seed: seeds the bootstrap and the permutation test.
        n_resamples: bootstrap resamples and sign-flip permutations.
        confidence: level of the intervals.

    Returns:
        task, metric, estimate (mean of b - a), ci_low/ci_high (paired percentile bootstrap),
        p (exact McNemar for 0/1 items, else a paired sign-flip permutation test), effect
        (d_z = mean / sd of the differences) with effect_ci_low/high, b_better/a_better
        (discordant items where only one config is right; binary metrics), n, method.
    """
    from statsmodels.stats.contingency_tables import mcnemar

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
            row |= {"p": float(p), "b_better": b_better, "a_better": a_better}
            row["method"] = "McNemar exact; paired bootstrap CI"
        else:
            perm = st.permutation_test(
                (va, vb),
                _mean_diff,
                permutation_type="samples",
                n_resamples=n_resamples,
                vectorized=True,
                rng=rng,
            )
            row |= {"p": float(perm.pvalue), "method": "paired permutation; paired bootstrap CI"}
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
) -> pd.DataFrame:
    """Compare every configuration of a samples frame with ``baseline``, item by item.

    Args:
        samples: per-item samples of several configurations (``config_col`` names them).
        baseline: the configuration every other one is compared with.
        method: multiple-comparison correction over all (config, task, metric) tests.

    Returns:
        :func:`compare_items` rows with ``config_col`` and ``baseline``, plus p_adj and reject.
    """
    configs = list(dict.fromkeys(samples[config_col]))
    if baseline not in configs:
        raise ValueError(f"baseline {baseline!r} not among the configs {configs}")
    base = samples[samples[config_col] == baseline]
    parts = [
        compare_items(
            base, samples[samples[config_col] == c], seed=seed, n_resamples=n_resamples
        ).assign(**{config_col: c, "baseline": baseline})
        for c in configs
        if c != baseline
    ]
    return adjust(pd.concat(parts, ignore_index=True), method=method)
