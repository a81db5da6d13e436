"""The chat template against none, and pruning under each, on one instruction task.

An instruction-tuned model is trained on prompts wrapped in its chat template; the published
study gave its prompts as they are. A run that holds its configurations both ways (the
``chat_template`` field) answers whether the wrapping changes the score, and whether it
changes what pruning does to it. Each change is read by
:func:`~widthprune.analysis.real_model.classify_change`.
"""

from __future__ import annotations

import pandas as pd

from ..evaluation.catalogue import task_info
from .comparisons import compare_items
from .real_model import (
    MIN_INFORMATIVE,
    RELATIVE_MARGIN,
    _informative,
    classify_change,
    headline_samples,
    uses_template,
)

__all__ = ["prompt_mix", "template_effect"]


def template_effect(
    results: pd.DataFrame,
    samples: pd.DataFrame,
    *,
    task: str = "real_instructions",
    seed: int = 0,
    n_resamples: int = 2000,
    alpha: float = 0.05,
    margin: float = RELATIVE_MARGIN,
    min_items: int = MIN_INFORMATIVE,
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
        floor, informative, estimate, ci_low, ci_high, p, p_adj, reject, family, change, n,
        a_better and b_better.

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
                "floor": task_info(task).chance if task_info(task) else 0.0,
                "informative": _informative(by[a], by[b]),
                **row.drop(["task"]).to_dict(),
            }
        )
    table = pd.DataFrame(rows)
    reject, p_adj, _, _ = multipletests(table["p"], alpha=alpha, method="holm")
    table["p_adj"], table["reject"] = p_adj, reject
    table["family"] = f"Holm over the table's {len(table)} comparisons"
    table["change"] = [
        classify_change(r, margin=margin, min_items=min_items) for _, r in table.iterrows()
    ]
    return table


def prompt_mix(n: int, *, seed: int = 0, per_type: int = 16, multi: int = 160) -> dict:
    """What the first ``n`` prompts of the instruction suite hold, in its evaluation order.

    Returns:
        total (prompts in the suite), types (instruction types), single_min/single_max (prompts
        with one instruction, fewest and most of one type) and multi (prompts with two or three).
    """
    from collections import Counter

    from ..evaluation.tasks.real.instruction_suite import INSTRUCTIONS, _plan

    plan = _plan(seed, per_type, multi)  # the order build_items gives, without the questions
    singles = Counter(ids[0] for _, ids in plan[:n] if len(ids) == 1)
    counts = [singles.get(i, 0) for i in INSTRUCTIONS]
    return {
        "total": len(plan),
        "types": len(INSTRUCTIONS),
        "single_min": min(counts),
        "single_max": max(counts),
        "multi": sum(len(ids) > 1 for _, ids in plan[:n]),
    }
