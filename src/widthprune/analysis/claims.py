"""The study's claims, checked against a results table (the published one or a sweep of ours).

A results table is long: one row per configuration x task x metric, with model, pruning_pct,
task, metric, value and stderr and/or n (as :func:`widthprune.published.published` and the
sweep's results store give it). Frames out are tidy, as in :mod:`widthprune.stats`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats as st

from ..evaluation.catalogue import analysed_metrics
from .comparisons import compare_configs
from .runs import check_comparable
from .stats import adjust, baseline_change, chance_floor, correlation, spearman

__all__ = [
    "PUBLISHED_TASKS",
    "TOY_TASKS",
    "correlation_robustness",
    "dichotomy",
    "load_toy",
    "pair_scores",
    "toy_paired",
    "toy_status",
    "verdicts",
]

# (task, metric, filter) -> (kind, higher_is_better): the capabilities the dichotomy contrasts.
# (task, metric, filter) -> (capability, higher is better), from the task catalogue: the
# study's four core tasks, and the toy suite.
PUBLISHED_TASKS = analysed_metrics(("mmlu", "gsm8k", "wikitext", "ifeval"))
TOY_TASKS = analysed_metrics(("toy",))


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
        :func:`widthprune.stats.correlation` rows with a ``scope`` column: each model; each
        model without its unpruned baseline; all models pooled (raw, and centred within model,
        which removes the between-model difference); the configurations whose x score is
        distinguishable from chance (where a chance level is known).
    """
    wide = pair_scores(results, x, y)
    xs, ys = x[0], y[0]
    scopes = {}
    for model, part in wide.groupby("model", sort=True):
        scopes[model] = part
        scopes[f"{model}, pruned only"] = part[part["pruning_pct"] != 0]
    scopes["pooled"] = wide
    centred = wide.copy()
    centred[[xs, ys]] = wide[[xs, ys]] - wide.groupby("model")[[xs, ys]].transform("mean")
    scopes["pooled, centred within model"] = centred
    floor = chance_floor(results[(results["task"] == xs) & (results["metric"] == x[1])])
    keep = floor.loc[floor["at_chance"] == False, ["model", "pruning_pct"]]  # noqa: E712
    scopes[f"pooled, {xs} above chance"] = wide.merge(keep, on=["model", "pruning_pct"])
    rows = []
    for scope, part in scopes.items():
        if len(part) >= 3:
            rows.append(
                correlation(part[xs], part[ys], seed=seed, n_resamples=n_resamples).assign(
                    scope=scope
                )
            )
    return pd.concat(rows, ignore_index=True)


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
        that negative means "gets worse"), p (exact permutation test), p_adj (Holm over the
        table), worse/better (pruned configs significantly worse/better than baseline,
        conservative z test at ``alpha``; by sign alone where no standard error is known, as
        for perplexity), direction ("falls", "rises" or "holds").
    """
    tasks = PUBLISHED_TASKS if tasks is None else tasks
    frame = results.copy()
    if "filter" not in frame:
        frame["filter"] = "none"
    key = pd.Series(list(zip(frame["task"], frame["metric"], frame["filter"], strict=True)))
    frame = frame[key.isin(list(tasks)).to_numpy()]
    change = baseline_change(frame, by=(*by, "task", "metric", "filter"))
    rows = []
    for group, part in frame.groupby([*by, "task", "metric", "filter"], sort=True):
        *labels, task, metric, filt = group
        kind, higher = tasks[(task, metric, filt)]
        sign = 1 if higher else -1
        rho = _rho(part["pruning_pct"], part["value"])
        ch = change
        for col, val in zip([*by, "task", "metric", "filter"], group, strict=True):
            ch = ch[ch[col] == val]
        good = sign * ch["estimate"] > 0
        signif = (ch["p"] < alpha) | ch["p"].isna()  # no standard error: count by sign
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
                "estimate": sign * rho.statistic,
                "p": rho.pvalue,
                "worse": int((~good & signif).sum()),
                "better": int((good & signif).sum()),
                "method": "Spearman rho vs pruning_pct (signed: < 0 is worse), permutation p",
            }
        )
    out = adjust(pd.DataFrame(rows), method="holm")
    n_pruned = out["n"] - 1
    out["direction"] = np.select(
        [out["worse"] > n_pruned / 2, out["better"] > n_pruned / 2], ["falls", "rises"], "holds"
    )
    return out


def toy_paired(
    results: pd.DataFrame,
    samples: pd.DataFrame,
    *,
    config_col: str = "config",
    by: tuple[str, ...] = ("model", "criterion"),
    seed: int = 0,
    n_resamples: int = 2000,
) -> pd.DataFrame:
    """Paired per-item tests of every pruned configuration against its unpruned baseline.

    Args:
        results: the sweep's long results; must hold ``config_col``, ``by`` and pruning_pct.
        samples: per-item samples (config_col, task, doc_id, metric, value).

    Returns:
        :func:`widthprune.comparisons.compare_configs` rows per sweep, joined with ``by`` and
        pruning_pct of each config; p_adj is Holm over all rows.
    """
    by = [c for c in by if c in results]
    configs = results[[config_col, *by, "pruning_pct"]].drop_duplicates()
    parts = []
    for _, sweep in configs.groupby(by, sort=True) if by else [((), configs)]:
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
            )
        )
    out = pd.concat(parts, ignore_index=True).drop(columns=["p_adj", "reject", "adjust"])
    return adjust(out.merge(configs, on=config_col), method="holm")


def _fmt(row: pd.Series) -> str:
    span = f"{row['worst']:.3f} to {row['best']:.3f}"
    return f"{row['model']} {row['task']}: {row['baseline']:.3f} at 0 %, {span} pruned"


def _rho(x: pd.Series, y: pd.Series):
    """Spearman rho with an exact permutation p (the t approximation fails at n = 4)."""
    return st.permutation_test(
        (x.to_numpy(float), y.to_numpy(float)),
        spearman,
        permutation_type="pairings",
        n_resamples=10_000,
        vectorized=True,
        rng=np.random.default_rng(0),
    )


def verdicts(results: pd.DataFrame, *, seed: int = 0, n_resamples: int = 9999) -> pd.DataFrame:
    """Each claim of the study next to what the published table supports, with its numbers.

    Args:
        results: the published benchmarks (:func:`widthprune.published.published`).

    Returns:
        One row per claim: claim, evidence (numbers, as text), verdict, and the statistic the
        verdict rests on (estimate, p, method).
    """
    dich = dichotomy(results)
    base = dich[dich["model"].isin(["Llama-3.2-1B", "Llama-3.2-3B"])]
    know = base[(base["kind"] == "knowledge")]
    inst = base[(base["kind"] == "instruction") & (base["metric"] == "prompt_level_strict_acc")]
    instr = dich[(dich["model"] == "Llama-3.2-1B-Instruct") & (dich["kind"] == "instruction")]
    instr = instr[instr["metric"] == "prompt_level_strict_acc"]
    floor = chance_floor(results[(results["task"] == "mmlu") & (results["pruning_pct"] > 0)])
    floor = floor[floor["model"] != "Llama-3.2-1B-Instruct"]
    near = int((floor["estimate"] < 0.02).sum())
    corr = correlation_robustness(results, seed=seed, n_resamples=n_resamples)
    head = corr[(corr["scope"] == "Llama-3.2-3B")].set_index("method")
    rows = [
        {
            "claim": "Knowledge (MMLU, GSM8K, perplexity) degrades with width pruning",
            "evidence": "; ".join(_fmt(r) for _, r in know.iterrows())
            + f". MMLU is within 2 points of chance in {near} of {len(floor)} pruned base configs.",
            "verdict": "supported" if (know["direction"] == "falls").all() else "partly supported",
            "estimate": know["estimate"].max(),
            "p": know["p_adj"].max(),
            "method": "largest signed Spearman rho and Holm p over the knowledge rows",
        },
        {
            "claim": "Instruction following (IFEval) holds or improves in the base models",
            "evidence": "; ".join(_fmt(r) for _, r in inst.iterrows())
            + ". Both baselines are low (about 0.1), a few points above a floor of 0.",
            "verdict": "supported"
            if inst["direction"].isin(["holds", "rises"]).all()
            else "not supported",
            "estimate": inst["estimate"].min(),
            "p": inst["p_adj"].min(),
            "method": "smallest signed Spearman rho and Holm p over the IFEval rows",
        },
        {
            "claim": "The dichotomy is a property of width pruning in Llama-3.2",
            "evidence": "; ".join(_fmt(r) for _, r in instr.iterrows())
            + ": the instruction-tuned model loses IFEval with its knowledge.",
            "verdict": "not supported for 1B-Instruct"
            if (instr["direction"] == "falls").all()
            else "supported",
            "estimate": instr["estimate"].iloc[0],
            "p": instr["p_adj"].iloc[0],
            "method": "signed Spearman rho (n = 4), Holm p",
        },
        {
            "claim": "MMLU and TruthfulQA-MC2 are anti-correlated in 3B (r = -0.864, p = 0.012)",
            "evidence": (
                f"Pearson r = {head.loc['pearson', 'estimate']:.3f}, "
                f"p = {head.loc['pearson', 'p']:.3f} (t test), "
                f"permutation p = {head.loc['pearson', 'p_perm']:.3f}, bootstrap 95 % interval "
                f"[{head.loc['pearson', 'ci_low']:.2f}, {head.loc['pearson', 'ci_high']:.2f}]; "
                f"Spearman rho = {head.loc['spearman', 'estimate']:.3f} "
                f"(p = {head.loc['spearman', 'p']:.3f}); n = 7 configurations, "
                "five of them with MMLU near chance"
            ),
            "verdict": "reproduced; not robust"
            if max(head.loc["pearson", "p_perm"], head.loc["spearman", "p"]) > 0.05
            else "reproduced and robust",
            "estimate": head.loc["pearson", "estimate"],
            "p": head.loc["pearson", "p"],
            "method": "Pearson (t test); see the robustness table",
        },
    ]
    return pd.DataFrame(rows)


def load_toy(run: str, root: str | Path = "results") -> tuple[pd.DataFrame, pd.DataFrame] | None:
    """A sweep's results and per-item samples in the form the analysis takes, or None.

    The unpruned configuration is shared by every criterion of a sweep, so its rows are repeated
    once per criterion (with ``pruning_pct`` 0); ``pruning_pct`` is the share of MLP neurons
    removed, also for sweeps given as expansion ratios. A metric computed under an lm-eval
    filter other than "none" is named ``metric,filter`` in the samples.

    Args:
        run: name of the run folder under ``root``.
        root: the results store.

    Returns:
        (results, samples): long results with a ``config`` column (the configuration id), and
        per-item samples (config, task, doc_id, metric, value).
    """
    from ..store import load_results, load_samples

    if not (Path(root) / run).is_dir():
        return None
    results = load_results(run, root)
    if results.empty:
        return None
    check_comparable(results)
    results = results.rename(columns={"config_id": "config"})
    base = results[results["criterion"].isna()]
    if base.empty:
        raise ValueError(f"run {run!r} holds no unpruned configuration to compare with")
    full_width = {m: w for m, w in zip(base["model"], base["final_width"], strict=True)}
    results["pruning_pct"] = 100 * (1 - results["final_width"] / results["model"].map(full_width))
    criteria = [c for c in results["criterion"].dropna().unique()]
    results = pd.concat(
        [results[results["criterion"].notna()]]
        + [base.assign(criterion=c, pruning_pct=0.0) for c in criteria or [None]],
        ignore_index=True,
    )
    samples = load_samples(run, root).rename(columns={"config_id": "config"})
    named = samples["filter"].fillna("none") != "none"
    samples.loc[named, "metric"] = samples.loc[named, "metric"] + "," + samples.loc[named, "filter"]
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
