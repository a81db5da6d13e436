"""The study's question on a real model: does instruction following hold while knowledge falls?

For a sweep of a real model (a live run or a recorded one, :mod:`widthprune.analysis.recorded`)
this module gives the unpruned model's scores with their intervals and chance levels, the
paired per-item change of every task from the unpruned model of the same chat template, and
the rule that reads each change:

- a task *falls* or *rises* when its paired change differs from zero after Holm's correction
  over every comparison of the run (the family is named in :func:`paired_changes`' output);
- it *holds* when the 95 % interval of its change lies within :data:`RELATIVE_MARGIN` of the
  unpruned model's distance from the task's floor (its chance level, 0 for generation), on
  either side: a fifth of what the model has to lose. A task at its floor cannot hold;
- *too few items* when fewer than :data:`MIN_INFORMATIVE` items are informative (see
  :func:`informative_items`) and the change is not significant: such a task can show neither
  a hold nor an undetermined change;
- otherwise the data cannot tell (*undetermined*).

The study's pattern per width is read by :mod:`widthprune.analysis.study_pattern`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..evaluation.catalogue import SPREAD_GROUPS, analysed_metrics, task_info
from .comparisons import compare_items

__all__ = [
    "MIN_INFORMATIVE",
    "READINGS",
    "RELATIVE_MARGIN",
    "classify_change",
    "holds_rule",
    "informative_items",
    "headline_samples",
    "paired_changes",
    "unpruned_scores",
    "uses_template",
]

# A change "holds" when its interval stays within this share of the unpruned score's distance
# from the task's floor (chance): a fifth of what the model has to lose.
RELATIVE_MARGIN = 0.2
# Fewer informative items than this and a change that is not significant reads "too few items":
# with 20 items that carry information, one item is 5 % of them.
MIN_INFORMATIVE = 20
READINGS = ("falls", "rises", "holds", "undetermined", "too few items")


def holds_rule(margin: float = RELATIVE_MARGIN, min_items: int = MIN_INFORMATIVE) -> str:
    """The "holds" rule in words, for a table's caption or a chapter's prose."""
    return (
        f"its 95 % interval lies within ±{margin:.0%} of the unpruned score's distance from "
        f"the task's floor, with at least {min_items} informative items (items where the two "
        "configurations differ or the unpruned model is above the item's floor)"
    )


def informative_items(a, b, *, floor: float = 0.0) -> int:
    """Items that carry information on a change from ``a`` to ``b`` (paired per-item scores).

    An item is informative when the two configurations score it differently, or when the
    unpruned one (``a``) scores it above the item's floor (0: a wrong answer, a prompt whose
    instructions are all missed), so that it had something to lose. Items both configurations
    leave at the floor say nothing about whether a score holds.
    """
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    return int(((a != b) | (a > floor)).sum())


def _headline_keys(tasks) -> dict[str, str]:
    """{task: per-item metric name} of each catalogued task's headline metric."""
    out = {}
    for (task, metric, filt), _ in analysed_metrics(tasks, headline_only=True).items():
        out[task] = metric if filt == "none" else f"{metric},{filt}"
    return out


def unpruned_scores(results: pd.DataFrame, *, confidence_z: float = 1.96) -> pd.DataFrame:
    """The headline score of every catalogued task of each unpruned configuration.

    Args:
        results: a run's results as :func:`~widthprune.analysis.claims.pair_run` gives them;
            a run with and without the chat template has one unpruned configuration of each
            (at seed 0 where the run repeats it over seeds).

    Returns:
        One row per unpruned configuration and task: chat_template, task, label, kind, metric,
        value, ci_low, ci_high (normal interval from lm-eval's standard error; NaN where it
        gives none), n, chance and standing ("above chance", "at chance", "below chance" or
        "no chance level").
    """
    base = results[results["pruning_pct"] == 0]
    if "seed" in base and base["seed"].nunique() > 1:
        base = base[base["seed"].astype(int) == 0]
    base = base.drop_duplicates(["config", "task", "metric", "filter"])
    keys = analysed_metrics(base["task"].unique(), headline_only=True)
    rows = []
    for _, part in base.groupby("config", sort=False):
        template = bool(uses_template(part).iloc[0]) if "chat_template" in part else False
        for (task, metric, filt), (kind, higher) in keys.items():
            hit = part[(part.task == task) & (part.metric == metric) & (part["filter"] == filt)]
            if not hit.empty:
                rows.append({"chat_template": template, **_score_row(hit.iloc[0], kind, higher,
                                                                      confidence_z)})  # fmt: skip
    return pd.DataFrame(rows)


def _score_row(row: pd.Series, kind: str, higher: bool, confidence_z: float) -> dict:
    task = row["task"]
    half = confidence_z * row["stderr"] if pd.notna(row["stderr"]) else np.nan
    low, high = row["value"] - half, row["value"] + half
    chance = task_info(task).chance
    chance = row["chance"] if chance is None or pd.isna(chance) else chance
    if pd.isna(chance) or not higher:
        standing = "no chance level"
    elif low > chance:
        standing = "above chance"
    elif high < chance:
        standing = "below chance"
    else:
        standing = "at chance"
    return {
        "task": task,
        "label": task_info(task).label or task,
        "kind": kind,
        "metric": row["metric"],
        "value": row["value"],
        "ci_low": low,
        "ci_high": high,
        "n": row["n"],
        "chance": chance,
        "standing": standing,
    }


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


def classify_change(
    row, *, margin: float = RELATIVE_MARGIN, min_items: int = MIN_INFORMATIVE
) -> str:
    """One of :data:`READINGS` for a paired change, by the rule of the module docstring.

    Args:
        row: a mapping with reject, estimate, ci_low, ci_high, base (the unpruned score),
            floor (the task's chance level; NaN or None counts as 0) and informative (items).
    """
    if row["reject"]:
        return "falls" if row["estimate"] < 0 else "rises"
    if row["informative"] < min_items:
        return "too few items"
    floor = 0.0 if row["floor"] is None or pd.isna(row["floor"]) else row["floor"]
    room = margin * max(row["base"] - floor, 0.0)
    if -room <= row["ci_low"] and row["ci_high"] <= room and room > 0:
        return "holds"
    return "undetermined"


def _pairs(configs: pd.DataFrame) -> list[tuple[str, str]]:
    """(unpruned, pruned) configuration ids, each pruned one against the unpruned one of its
    chat template (at seed 0 where the run repeats the baseline over seeds)."""
    configs = configs.assign(template=uses_template(configs).to_numpy())
    pairs = []
    for template, part in configs.groupby("template", sort=True):
        base = part[part["pruning_pct"] == 0]
        if "seed" in base and base["seed"].nunique() > 1:
            base = base[base["seed"].astype(int) == 0]
        if len(base) != 1:
            raise ValueError(
                f"need one unpruned configuration with chat_template={template}, found {len(base)}"
            )
        pruned = part.loc[part["pruning_pct"] != 0, "config"]
        pairs += [(base["config"].iloc[0], c) for c in pruned]
    return pairs


def _informative(a: pd.DataFrame, b: pd.DataFrame) -> int:
    both = a.merge(b, on=["task", "doc_id", "metric"], suffixes=("_a", "_b"))
    return informative_items(both["value_a"], both["value_b"])


def paired_changes(
    results: pd.DataFrame,
    samples: pd.DataFrame,
    *,
    seed: int = 0,
    n_resamples: int = 2000,
    alpha: float = 0.05,
    margin: float = RELATIVE_MARGIN,
    min_items: int = MIN_INFORMATIVE,
) -> pd.DataFrame:
    """Every pruned configuration against the unpruned one of its chat template, item by item.

    Perplexity is left out (its per-item values are not a mean score). p values are
    Holm-adjusted over every comparison of the run together (column ``family``).

    Returns:
        :func:`~widthprune.analysis.comparisons.compare_items` rows with config, baseline,
        criterion, pruning_pct, chat_template, seed, label, kind, base (the unpruned score),
        floor (the task's chance), informative (:func:`informative_items`), p_adj, reject,
        family and change (:func:`classify_change`).
    """
    from statsmodels.stats.multitest import multipletests

    configs = results.drop_duplicates("config")
    pairs = _pairs(configs)
    items = headline_samples(samples, results["task"].unique())
    items = items[[task_info(t).chance is not None for t in items["task"]]]
    by = {c: part for c, part in items.groupby("config")}
    family = len(pairs) * items["task"].nunique()
    parts = []
    for base, config in pairs:
        a, b = by[base], by[config]
        table = compare_items(
            a, b, seed=seed, n_resamples=n_resamples, family=family, alpha=alpha
        ).assign(config=config, baseline=base)
        counts = {t: _informative(a[a.task == t], b[b.task == t]) for t in table["task"]}
        table["informative"] = table["task"].map(counts)
        table["base"] = table["task"].map(a.groupby("task")["value"].mean())
        parts.append(table)
    table = pd.concat(parts, ignore_index=True)
    reject, p_adj, _, _ = multipletests(table["p"], alpha=alpha, method="holm")
    table["p_adj"], table["reject"] = p_adj, reject
    table["family"] = f"Holm over the run's {len(table)} comparisons"
    meta = configs.set_index("config")  # one row per configuration; pruned ones keep their own
    for column in ("criterion", "pruning_pct", "seed"):
        if column in meta:
            table[column] = table["config"].map(meta[column])
    table["chat_template"] = table["config"].map(uses_template(meta).set_axis(meta.index))
    table["label"] = [task_info(t).label or t for t in table["task"]]
    table["kind"] = [task_info(t).kind for t in table["task"]]
    table["floor"] = [task_info(t).chance for t in table["task"]]
    table["change"] = [
        classify_change(r, margin=margin, min_items=min_items) for _, r in table.iterrows()
    ]
    order = [c for c in ("chat_template", "criterion", "pruning_pct", "seed") if c in table]
    return table.sort_values([*order, "kind", "task"], ignore_index=True)


def uses_template(results: pd.DataFrame) -> pd.Series:
    """The ``chat_template`` field of each row as a bool (a CSV store reads it back as text)."""
    return results["chat_template"].astype(str).str.lower().isin(["true", "1"])
