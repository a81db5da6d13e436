"""The study's question on a real model: does instruction following hold while knowledge falls?

For a sweep of a real model (a live run or a recorded one, :mod:`widthprune.analysis.recorded`)
this module gives the unpruned model's scores with their intervals and chance levels, the
paired per-item change of every task from the unpruned model, and a verdict on the study's
pattern with a criterion that can fail:

- a knowledge task *falls* when its paired change is below zero after Holm's correction over
  every comparison of the sweep; it can only fall where the unpruned model is above chance;
- instruction following *holds* when the 95 % interval of its paired change lies within
  ``margin`` (default 5 points) of zero; it *falls* or *rises* when the change differs from
  zero after correction; otherwise the data cannot tell (*undetermined*);
- the study's pattern is shown at a width when every knowledge task above chance falls and
  the instruction task holds or rises.

A pattern shown while instruction following sits at its floor says little about robustness:
:func:`pattern_at` reports the unpruned instruction score beside the verdict for that reason.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..evaluation.catalogue import SPREAD_GROUPS, analysed_metrics, task_info
from .comparisons import compare_configs, compare_items

__all__ = [
    "MARGIN",
    "classify_change",
    "headline_samples",
    "paired_changes",
    "pattern_at",
    "template_effect",
    "unpruned_scores",
    "uses_template",
]

MARGIN = 0.05  # how close to zero an interval must stay for a score to "hold"


def _headline_keys(tasks) -> dict[str, str]:
    """{task: per-item metric name} of each catalogued task's headline metric."""
    out = {}
    for (task, metric, filt), _ in analysed_metrics(tasks, headline_only=True).items():
        out[task] = metric if filt == "none" else f"{metric},{filt}"
    return out


def unpruned_scores(results: pd.DataFrame, *, confidence_z: float = 1.96) -> pd.DataFrame:
    """The unpruned configuration's headline score of every catalogued task.

    Args:
        results: a run's results as :func:`~widthprune.analysis.claims.pair_run` gives them.

    Returns:
        One row per task: task, label, kind, metric, value, ci_low, ci_high (normal interval
        from lm-eval's standard error; NaN where it gives none), n, chance and standing
        ("above chance", "at chance", "below chance" or "no chance level").
    """
    base = results[results["pruning_pct"] == 0].drop_duplicates(["task", "metric", "filter"])
    keys = analysed_metrics(base["task"].unique(), headline_only=True)
    rows = []
    for (task, metric, filt), (kind, higher) in keys.items():
        hit = base[(base.task == task) & (base.metric == metric) & (base["filter"] == filt)]
        if hit.empty:
            continue
        row = hit.iloc[0]
        half = confidence_z * row["stderr"] if pd.notna(row["stderr"]) else np.nan
        low, high = row["value"] - half, row["value"] + half
        chance = task_info(task).chance if task_info(task) else np.nan
        chance = row["chance"] if chance is None or pd.isna(chance) else chance
        if pd.isna(chance) or not higher:
            standing = "no chance level"
        elif low > chance:
            standing = "above chance"
        elif high < chance:
            standing = "below chance"
        else:
            standing = "at chance"
        rows.append(
            {
                "task": task,
                "label": task_info(task).label or task,
                "kind": kind,
                "metric": metric,
                "value": row["value"],
                "ci_low": low,
                "ci_high": high,
                "n": row["n"],
                "chance": chance,
                "standing": standing,
            }
        )
    return pd.DataFrame(rows)


def headline_samples(samples: pd.DataFrame, tasks) -> pd.DataFrame:
    """Per-item rows of each task's headline metric; a spread group's subtasks become the group.

    MMLU is scored per subject; its items are pooled under the group's name (``local_mmlu``),
    each keyed by subject and item, so that the group is compared as one task.
    """
    samples = samples.assign(doc_id=samples["doc_id"].astype(str))
    for group in SPREAD_GROUPS:
        member = samples["task"].str.startswith(f"{group}_")
        if member.any():
            subject = samples.loc[member, "task"].str.removeprefix(f"{group}_")
            samples.loc[member, "doc_id"] = subject + "/" + samples.loc[member, "doc_id"]
            samples.loc[member, "task"] = group
    keys = _headline_keys(tasks)
    keep = [keys.get(t) == m for t, m in zip(samples["task"], samples["metric"], strict=True)]
    return samples[keep].reset_index(drop=True)


def classify_change(row: pd.Series, *, margin: float = MARGIN) -> str:
    """ "falls", "rises", "holds" (interval within ``margin`` of 0) or "undetermined"."""
    if row["reject"]:
        return "falls" if row["estimate"] < 0 else "rises"
    if -margin <= row["ci_low"] and row["ci_high"] <= margin:
        return "holds"
    return "undetermined"


def paired_changes(
    results: pd.DataFrame,
    samples: pd.DataFrame,
    *,
    seed: int = 0,
    n_resamples: int = 2000,
    alpha: float = 0.05,
    margin: float = MARGIN,
) -> pd.DataFrame:
    """Every pruned configuration against the unpruned one, task by task, item by item.

    Perplexity is left out (its per-item values are not a mean score). p values are
    Holm-adjusted over every comparison of the run.

    Returns:
        :func:`~widthprune.analysis.comparisons.compare_items` rows with config, criterion,
        pruning_pct, label, kind, base (the unpruned score) and change ("falls", "rises",
        "holds" or "undetermined", see :func:`classify_change`).
    """
    configs = results.drop_duplicates("config")
    base = configs.loc[configs["pruning_pct"] == 0, "config"]
    if len(base) != 1:
        raise ValueError(f"the run needs one unpruned configuration, found {len(base)}")
    items = headline_samples(samples, results["task"].unique())
    items = items[[task_info(t).chance is not None for t in items["task"]]]
    table = compare_configs(
        items, baseline=base.iloc[0], seed=seed, n_resamples=n_resamples, alpha=alpha
    )
    meta = configs.set_index("config")  # one row per configuration; pruned ones keep their own
    table["criterion"] = table["config"].map(meta["criterion"])
    table["pruning_pct"] = table["config"].map(meta["pruning_pct"])
    table["label"] = [task_info(t).label or t for t in table["task"]]
    table["kind"] = [task_info(t).kind for t in table["task"]]
    means = items[items["config"] == base.iloc[0]].groupby("task")["value"].mean()
    table["base"] = table["task"].map(means)
    table["change"] = [classify_change(r, margin=margin) for _, r in table.iterrows()]
    return table.sort_values(["criterion", "pruning_pct", "kind", "task"], ignore_index=True)


def pattern_at(
    changes: pd.DataFrame, scores: pd.DataFrame, *, instruction: str = "real_instructions"
) -> pd.DataFrame:
    """The study's pattern per pruned configuration, by the rule of the module docstring.

    Args:
        changes: :func:`paired_changes` rows.
        scores: :func:`unpruned_scores` rows (which knowledge tasks are above chance).
        instruction: the instruction task the verdict reads.

    Returns:
        One row per configuration: criterion, pruning_pct, knowledge_tasks (above chance),
        knowledge_fall (how many fall), instruction_base, instruction_change (estimate),
        instruction_ci_low/high, instruction (its change), verdict and rule.
    """
    above = set(scores.loc[scores["standing"] == "above chance", "task"])
    rows = []
    for config, part in changes.groupby("config", sort=False):
        know = part[(part["kind"] == "knowledge") & part["task"].isin(above)]
        inst = part[part["task"] == instruction]
        if inst.empty:
            raise ValueError(f"no paired comparison of {instruction} in the changes")
        inst = inst.iloc[0]
        falls = int((know["change"] == "falls").sum())
        shown = falls == len(know) and len(know) > 0 and inst["change"] in ("holds", "rises")
        reverse = inst["change"] == "falls" and falls < len(know)
        rows.append(
            {
                "config": config,
                "criterion": part["criterion"].iloc[0],
                "pruning_pct": part["pruning_pct"].iloc[0],
                "knowledge_tasks": len(know),
                "knowledge_fall": falls,
                "instruction_base": inst["base"],
                "instruction_change": inst["estimate"],
                "instruction_ci_low": inst["ci_low"],
                "instruction_ci_high": inst["ci_high"],
                "instruction": inst["change"],
                "verdict": "the study's pattern"
                if shown
                else ("the reverse of the study's pattern" if reverse else "neither pattern"),
            }
        )
    out = pd.DataFrame(rows)
    out["rule"] = (
        "every knowledge task above chance falls (paired test, Holm over the run, 0.05) and "
        f"{instruction} holds (95 % interval of its change within ±{MARGIN:.2f}) or rises"
    )
    return out


def uses_template(results: pd.DataFrame) -> pd.Series:
    """The ``chat_template`` field of each row as a bool (a CSV store reads it back as text)."""
    return results["chat_template"].astype(str).str.lower().isin(["true", "1"])


def template_effect(
    results: pd.DataFrame,
    samples: pd.DataFrame,
    *,
    task: str = "real_instructions",
    seed: int = 0,
    n_resamples: int = 2000,
    alpha: float = 0.05,
    margin: float = MARGIN,
) -> pd.DataFrame:
    """The chat template against none, and pruning under each, on one instruction task.

    The run holds its configurations twice, with prompts as they are (the study's way) and in
    the model's chat template (the ``chat_template`` field of a configuration). The paired
    per-item comparisons of the task's headline metric are:

    - ``template``: with the template against without, at each pruning percentage (the
      unpruned model first);
    - ``pruning``: each pruned configuration against the unpruned one under the same template.

    Their p values are Holm-adjusted together, and each change is read by
    :func:`classify_change` ("rises" for the template means it helps).

    Returns:
        One row per comparison: comparison, chat_template (the template of a pruning row; of
        the template rows, True), criterion, pruning_pct, base (the score compared against),
        estimate, ci_low, ci_high, p, p_adj, reject, change, n, a_better and b_better.

    Raises:
        ValueError: the run lacks the task, or holds it under one template only.
    """
    from statsmodels.stats.multitest import multipletests

    configs = results[results["task"] == task].drop_duplicates("config").copy()
    if configs.empty:
        raise ValueError(f"the run has no results of {task}")
    configs["template"] = uses_template(configs).to_numpy()
    if configs["template"].nunique() != 2:
        raise ValueError(f"{task} was evaluated with the chat template or without it, not both")
    configs["pct"] = configs["pruning_pct"].fillna(0).round(6)
    items = headline_samples(samples, [task])
    items = items[items["task"] == task]
    by = {c: part for c, part in items.groupby("config")}
    meta = configs.set_index("config")

    pairs = []  # (comparison, a, b): b against a
    for _, part in configs.groupby("pct", sort=True):
        for _, same in part.groupby(part["criterion"].fillna(""), sort=True):
            flags = dict(zip(same["template"], same["config"], strict=True))
            if len(flags) == 2:
                pairs.append(("template", flags[False], flags[True]))
    for template, part in configs.groupby("template", sort=True):
        base = part.loc[part["pct"] == 0, "config"]
        if len(base) != 1:
            raise ValueError(f"need one unpruned configuration with chat_template={template}")
        for config in part.loc[part["pct"] != 0, "config"]:
            pairs.append(("pruning", base.iloc[0], config))

    rows = []
    for comparison, a, b in pairs:
        row = compare_items(
            by[a], by[b], seed=seed, n_resamples=n_resamples, family=len(pairs), alpha=alpha
        ).iloc[0]
        pruned = b if comparison == "pruning" else a
        rows.append(
            {
                "comparison": comparison,
                "chat_template": bool(meta.loc[b, "template"]),
                "criterion": meta.loc[pruned, "criterion"],
                "pruning_pct": float(meta.loc[pruned, "pct"]),
                "base": float(by[a]["value"].mean()),
                **row.drop(["task"]).to_dict(),
            }
        )
    table = pd.DataFrame(rows)
    reject, p_adj, _, _ = multipletests(table["p"], alpha=alpha, method="holm")
    table["p_adj"], table["reject"] = p_adj, reject
    table["change"] = [classify_change(r, margin=margin) for _, r in table.iterrows()]
    return table
