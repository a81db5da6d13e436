"""The study's claims, checked against a results table (the published one or a sweep of ours).

A results table is long: one row per configuration x task x metric, with model, pruning_pct,
task, metric, value and stderr and/or n (as :func:`widthprune.published.published` and the
sweep's results store give it). Frames out are tidy, as in :mod:`widthprune.analysis.stats`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ..evaluation.catalogue import PRESETS, analysed_metrics
from .comparisons import compare_configs
from .correlation import correlation, permutation_p, spearman
from .runs import check_comparable
from .stats import adjust, baseline_change, chance_floor

__all__ = [
    "PAPER_LOCAL_TASKS",
    "PUBLISHED_TASKS",
    "REAL_TASKS",
    "TOY_TASKS",
    "correlation_robustness",
    "dichotomy",
    "load_toy",
    "pair_run",
    "pair_scores",
    "toy_paired",
    "toy_status",
]

# (task, metric, filter) -> (kind, higher_is_better): the capabilities the dichotomy contrasts.
# (task, metric, filter) -> (capability, higher is better), from the task catalogue: the
# study's four core tasks, and the toy suite.
PUBLISHED_TASKS = analysed_metrics(("mmlu", "gsm8k", "wikitext", "ifeval"))
TOY_TASKS = analysed_metrics(("toy",))
# The study's tasks on locally installed items, and the real small model's suite.
PAPER_LOCAL_TASKS = analysed_metrics(PRESETS["paper-local"])
REAL_TASKS = analysed_metrics(PRESETS["real"])


def pair_scores(
    results: pd.DataFrame, x: tuple[str, str], y: tuple[str, str], *, by: str = "model"
) -> pd.DataFrame:
    """Two scores side by side per configuration: columns ``by``, pruning_pct, x, y.

    ``x`` and ``y`` are (task, metric); the output columns are named by their tasks.
    """
    parts = []
    for task, metric in (x, y):
        sel = results[(results["task"] == task) & (results["metric"] == metric)]
        if sel.empty:
            raise ValueError(f"no rows for task {task!r}, metric {metric!r}")
        parts.append(sel.set_index([by, "pruning_pct"])["value"].rename(task))
    return pd.concat(parts, axis=1, join="inner").reset_index()


def correlation_robustness(
    results: pd.DataFrame,
    *,
    x: tuple[str, str] = ("mmlu", "acc"),
    y: tuple[str, str] = ("truthfulqa_mc2", "acc"),
    seed: int = 0,
    n_resamples: int = 9999,
) -> pd.DataFrame:
    """The x-y correlation per model, pooled, without baselines, and above chance only.

    Returns:
        :func:`widthprune.analysis.correlation.correlation` rows with a ``scope`` column: each
        model; each model without its unpruned baseline, and with only the configurations whose
        x score is distinguishable from chance (where a chance level is known); the pooled
        models (the base models where ``results`` has a ``variant`` column, as the study pooled
        1B and 3B), raw and centred within model (which removes the difference between the
        models); and the pooled configurations whose x score is distinguishable from chance.
        p_perm_adj is Holm over every permutation test of the table (one family: the checks
        of one claim), and family says so.
    """
    wide = pair_scores(results, x, y)
    xs, ys = x[0], y[0]
    floor = chance_floor(results[(results["task"] == xs) & (results["metric"] == x[1])])
    keep = floor.loc[floor["at_chance"] == False, ["model", "pruning_pct"]]  # noqa: E712
    scopes = {}
    for model, part in wide.groupby("model", sort=True):
        scopes[model] = part
        scopes[f"{model}, pruned only"] = part[part["pruning_pct"] != 0]
        scopes[f"{model}, {xs} above chance"] = part.merge(keep, on=["model", "pruning_pct"])
    pooled, label = wide, "pooled"
    if "variant" in results:
        base = results.loc[results["variant"] == "base", "model"].unique()
        pooled, label = wide[wide["model"].isin(base)], "pooled base models"
    scopes[label] = pooled
    centred = pooled.copy()
    centred[[xs, ys]] = pooled[[xs, ys]] - pooled.groupby("model")[[xs, ys]].transform("mean")
    scopes[f"{label}, centred within model"] = centred
    scopes[f"{label}, {xs} above chance"] = pooled.merge(keep, on=["model", "pruning_pct"])
    rows = []
    for scope, part in scopes.items():
        if len(part) >= 3:
            rows.append(
                correlation(part[xs], part[ys], seed=seed, n_resamples=n_resamples).assign(
                    scope=scope
                )
            )
    out = pd.concat(rows, ignore_index=True)
    out["p_perm_adj"] = adjust(out, method="holm", p_col="p_perm")["p_adj"]
    out["family"] = f"Holm over the {len(out)} permutation tests of the table"
    return out


def dichotomy(
    results: pd.DataFrame,
    *,
    tasks: dict | None = None,
    by: tuple[str, ...] = ("model",),
    alpha: float = 0.05,
) -> pd.DataFrame:
    """Trend of each capability with pruning, per model: does knowledge fall, instruction hold?

    Args:
        results: long results (see the module docstring); ``filter`` defaults to "none".
        tasks: (task, metric, filter) -> (kind, higher_is_better); default
            :data:`PUBLISHED_TASKS`.
        by: columns that identify one sweep (e.g. model, criterion).

    Returns:
        One row per sweep x task: kind, higher_is_better, n (configurations), baseline value,
        worst and best pruned value, estimate (Spearman rho of value vs pruning_pct, signed so
        that negative means "gets worse"), p (exact permutation test on |rho|; NaN below three
        configurations), p_adj (Holm over the
        table), worse/better (pruned configs significantly worse/better than baseline:
        conservative z test, Holm-adjusted over every pruned configuration of the table, at
        ``alpha``), tested (pruned configs with a test: a score without a standard error, such
        as perplexity or instruction-level IFEval in the published tables, has none and is not
        counted by its sign, which could not fail), direction ("falls" or "rises" where more
        than half of the pruned configs are significantly worse or better, "not tested" where
        none has a test, else "holds").
    """
    tasks = PUBLISHED_TASKS if tasks is None else tasks
    frame = results.copy()
    if "filter" not in frame:
        frame["filter"] = "none"
    key = pd.Series(list(zip(frame["task"], frame["metric"], frame["filter"], strict=True)))
    frame = frame[key.isin(list(tasks)).to_numpy()]
    change = baseline_change(frame, by=(*by, "task", "metric", "filter"))
    change = adjust(change, method="holm", alpha=alpha)
    rows = []
    for group, part in frame.groupby([*by, "task", "metric", "filter"], sort=True):
        *labels, task, metric, filt = group
        kind, higher = tasks[(task, metric, filt)]
        sign = 1 if higher else -1
        x, y = part["pruning_pct"].to_numpy(float), part["value"].to_numpy(float)
        rho, p = float(spearman(x, y)), np.nan  # a trend needs three configurations
        if len(x) >= 3:
            p, _ = permutation_p(x, y, "spearman")
        ch = change
        for col, val in zip([*by, "task", "metric", "filter"], group, strict=True):
            ch = ch[ch[col] == val]
        good = sign * ch["estimate"] > 0
        signif = ch["reject"] & ch["p"].notna()  # no standard error: no test, not counted
        pruned = sign * part.loc[part["pruning_pct"] != 0, "value"]
        rows.append(
            {
                **dict(zip(by, labels, strict=True)),
                "task": task,
                "metric": metric,
                "kind": kind,
                "higher_is_better": higher,
                "n": len(part),
                "baseline": part.loc[part["pruning_pct"] == 0, "value"].mean(),
                "worst": sign * pruned.min(),
                "best": sign * pruned.max(),
                "estimate": sign * rho,
                "p": p,
                "worse": int((~good & signif).sum()),
                "better": int((good & signif).sum()),
                "tested": int(ch["p"].notna().sum()),
                "method": "Spearman rho vs pruning_pct (signed: < 0 is worse), exact "
                "permutation p on |rho|",
            }
        )
    out = adjust(pd.DataFrame(rows), method="holm")
    n_pruned = out["n"] - 1
    out["direction"] = np.select(
        [out["tested"] == 0, out["worse"] > n_pruned / 2, out["better"] > n_pruned / 2],
        ["not tested", "falls", "rises"],
        "holds",
    )
    counts = out[["worse", "better"]].astype("Int64")
    out[["worse", "better"]] = counts.mask(out["tested"] == 0, pd.NA)  # none could fail
    return out


def toy_paired(
    results: pd.DataFrame,
    samples: pd.DataFrame,
    *,
    config_col: str = "config",
    by: tuple[str, ...] = ("model", "criterion"),
    seed: int = 0,
    n_resamples: int = 2000,
    alpha: float = 0.05,
    tasks: dict | None = None,
) -> pd.DataFrame:
    """Paired per-item tests of every pruned configuration against its unpruned baseline.

    Args:
        results: the sweep's long results; must hold ``config_col``, ``by`` and pruning_pct.
        samples: per-item samples (config_col, task, doc_id, metric, value; a metric computed
            under a filter other than "none" is named ``metric,filter``, as :func:`load_toy`
            gives it).
        tasks: the (task, metric, filter) keys tested, default :data:`TOY_TASKS`: the family
            holds only the analysed metrics, not every variant lm-eval reports.
        n_resamples: bootstrap resamples, and the least number of random sign patterns of a
            sampled sign-flip test (raised to what the whole family needs, see
            :func:`widthprune.analysis.comparisons.family_resamples`).
        alpha: level of the comparisons.

    Returns:
        :func:`widthprune.analysis.comparisons.compare_configs` rows per sweep, joined with
        ``by`` and pruning_pct of each config; p_adj is Holm over all rows.
    """
    by = [c for c in by if c in results]
    tasks = TOY_TASKS if tasks is None else tasks
    names = {(t, m if f == "none" else f"{m},{f}") for t, m, f in tasks}
    keys = pd.Series(list(zip(samples["task"], samples["metric"], strict=True)), dtype=object)
    samples = samples[keys.isin(names).to_numpy()]
    if samples.empty:
        raise ValueError(f"no per-item scores of the analysed metrics {sorted(names)}")
    configs = results[[config_col, *by, "pruning_pct"]].drop_duplicates()
    sweeps = list(configs.groupby(by, sort=True)) if by else [((), configs)]
    tests = samples[["task", "metric"]].drop_duplicates()
    family = sum(len(s) - 1 for _, s in sweeps) * len(tests)
    parts = []
    for _, sweep in sweeps:
        base = sweep.loc[sweep["pruning_pct"] == 0, config_col]
        if len(base) != 1:
            raise ValueError(f"each sweep needs one unpruned config; found {list(base)}")
        chosen = samples[samples[config_col].isin(sweep[config_col])]
        parts.append(
            compare_configs(
                chosen,
                baseline=base.iloc[0],
                config_col=config_col,
                seed=seed,
                n_resamples=n_resamples,
                alpha=alpha,
                family=family,
            )
        )
    out = pd.concat(parts, ignore_index=True).drop(columns=["p_adj", "reject", "adjust"])
    return adjust(out.merge(configs, on=config_col), method="holm", alpha=alpha)


def load_toy(run: str, root: str | Path = "results") -> tuple[pd.DataFrame, pd.DataFrame] | None:
    """A sweep's results and per-item samples in the form the analysis takes, or None.

    Args:
        run: name of the run folder under ``root``.
        root: the results store.

    Returns:
        :func:`pair_run` of the run's stored results and samples; None where the store holds
        no complete configuration of ``run``.
    """
    from ..runs.store import load_results, load_samples

    if not (Path(root) / run).is_dir():
        return None
    results = load_results(run, root)
    if results.empty:
        return None
    return pair_run(results, load_samples(run, root), f"run {run!r}")


def pair_run(
    results: pd.DataFrame,
    samples: pd.DataFrame,
    run: str = "the run",
    *,
    vary: tuple[str, ...] = (),
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A sweep's results and samples (as the store loads them) in the form the analysis takes.

    The unpruned configuration is shared by every criterion of a sweep, so its rows are repeated
    once per criterion (with ``pruning_pct`` 0); ``pruning_pct`` is the share of MLP neurons
    removed, also for sweeps given as expansion ratios. A metric computed under an lm-eval
    filter other than "none" is named ``metric,filter`` in the samples.

    Returns:
        (results, samples): long results with a ``config`` column (the configuration id), and
        per-item samples (config, task, doc_id, metric, value).

    ``vary`` names fields the run varies on purpose (see
    :func:`~widthprune.analysis.runs.check_comparable`).

    Raises:
        ValueError: configurations that cannot be compared, or no unpruned configuration.
    """
    check_comparable(results, vary=vary)
    results = results.rename(columns={"config_id": "config"})
    base = results[results["criterion"].isna()]
    if base.empty:
        raise ValueError(f"{run} holds no unpruned configuration to compare with")
    full_width = {m: w for m, w in zip(base["model"], base["final_width"], strict=True)}
    results["pruning_pct"] = 100 * (1 - results["final_width"] / results["model"].map(full_width))
    criteria = [c for c in results["criterion"].dropna().unique()]
    results = pd.concat(
        [results[results["criterion"].notna()]]
        + [base.assign(criterion=c, pruning_pct=0.0) for c in criteria or [None]],
        ignore_index=True,
    )
    samples = samples.rename(columns={"config_id": "config"})
    if "filter" in samples:
        named = samples["filter"].fillna("none") != "none"
        samples = samples.copy()
        samples.loc[named, "metric"] = (
            samples.loc[named, "metric"] + "," + samples.loc[named, "filter"]
        )
    return results, samples[["config", "task", "doc_id", "metric", "value"]]


def toy_status(toy, run: str) -> str:
    """One sentence for the book saying whether the toy section ran, and on what."""
    if toy is None:
        return (
            f"No results of the run {run!r} were found, so the toy section below is skipped; "
            "run the sweep first (or pass toy_run) to fill it."
        )
    results, samples = toy
    return (
        f"The toy section below analyses the run {run!r}: {results['config'].nunique()} "
        f"configurations and {len(samples)} per-item scores."
    )
