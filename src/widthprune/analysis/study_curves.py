"""Each capability against width, per criterion, chat template and seed, with the random floor.

:func:`capability_curves` gives one row per configuration and task (the task's headline metric,
a 95 % interval from lm-eval's standard error, clipped to the metric's range), every criterion
starting from the unpruned model of its template. :func:`random_band` is the spread of the
``random`` criterion over its seeds (min..max, with the mean): the floor a criterion must beat,
since a rule that keeps no better neurons than chance is no rule. :func:`against_band` says
where each other criterion lies relative to it.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..evaluation.catalogue import analysed_metrics, task_info
from .real_model import uses_template

__all__ = ["RANDOM", "against_band", "capability_curves", "random_band", "template_name"]

RANDOM = "random"  # the criterion whose seeds make the floor


def template_name(flag: bool) -> str:
    """How a table or figure names a chat-template setting."""
    return "chat template" if flag else "as they are"


def capability_curves(results: pd.DataFrame, *, confidence_z: float = 1.96) -> pd.DataFrame:
    """Headline score of every catalogued task at every configuration of a run.

    Args:
        results: a run as :func:`~widthprune.analysis.claims.pair_run` gives it (the unpruned
            rows repeated once per criterion).

    Returns:
        One row per (config, criterion, task): config, chat_template, template (its name),
        criterion, seed, pruning_pct, width, task, label, kind, metric, higher (is better),
        value, ci_low, ci_high (NaN without a standard error; bounded metrics clipped to
        [0, 1]), n, chance.
    """
    keys = analysed_metrics(results["task"].unique(), headline_only=True)
    filters = results["filter"].fillna("none")
    triple = list(zip(results["task"], results["metric"], filters, strict=True))
    rows = results[[k in keys for k in triple]].copy()
    rows["higher"] = [
        keys[k][1] for k in zip(rows["task"], rows["metric"], rows["filter"], strict=True)
    ]
    rows["kind"] = [task_info(t).kind for t in rows["task"]]
    rows["label"] = [task_info(t).label or t for t in rows["task"]]
    rows["chance"] = [task_info(t).chance for t in rows["task"]]
    rows["chat_template"] = uses_template(rows).to_numpy() if "chat_template" in rows else False
    rows["template"] = rows["chat_template"].map(template_name)
    rows["seed"] = rows["seed"].astype(int) if "seed" in rows else 0
    rows["width"] = rows["final_width"] if "final_width" in rows else np.nan
    half = confidence_z * rows["stderr"]
    rows["ci_low"], rows["ci_high"] = rows["value"] - half, rows["value"] + half
    bounded = rows["higher"].to_numpy()  # accuracies; perplexity (lower is better) is not
    rows.loc[bounded, "ci_low"] = rows.loc[bounded, "ci_low"].clip(lower=0)
    rows.loc[bounded, "ci_high"] = rows.loc[bounded, "ci_high"].clip(upper=1)
    columns = ["config", "chat_template", "template", "criterion", "seed", "pruning_pct"]
    columns += ["width", "task", "label", "kind", "metric", "higher", "value", "ci_low"]
    columns += ["ci_high", "n", "chance"]
    order = ["chat_template", "kind", "task", "criterion", "seed", "pruning_pct"]
    return rows[columns].sort_values(order, ignore_index=True)


def random_band(curves: pd.DataFrame, *, criterion: str = RANDOM) -> pd.DataFrame:
    """The spread of ``criterion`` over its seeds at each width, template and task.

    Widths where ``criterion`` was run, and the unpruned model (the band's start) of each
    template it was run in.

    Returns:
        chat_template, template, task, label, kind, pruning_pct, low, high (min and max over
        seeds), mean, seeds (how many). Empty when the run has no ``criterion``.
    """
    part = curves[curves["criterion"] == criterion]
    ran = set(part.loc[part["pruning_pct"] > 0, "chat_template"])
    part = part[part["chat_template"].isin(ran)]
    part = part[(part["pruning_pct"] > 0) | (part["seed"] == part["seed"].min())]
    keys = ["chat_template", "template", "task", "label", "kind", "pruning_pct"]
    band = part.groupby(keys, sort=True)["value"].agg(
        low="min", high="max", mean="mean", seeds="count"
    )
    return band.reset_index()


def against_band(curves: pd.DataFrame, band: pd.DataFrame) -> pd.DataFrame:
    """Where each other criterion's score lies relative to the random band at the same width.

    Returns:
        The pruned rows of ``curves`` (other criteria, widths the band covers) with low, high
        and position: "above the band", "within the band" or "below the band" (in the
        direction of the score: above is better, also for perplexity).
    """
    keys = ["chat_template", "task", "pruning_pct"]
    other = curves[(curves["criterion"] != RANDOM) & (curves["pruning_pct"] > 0)]
    merged = other.merge(band[[*keys, "low", "high"]], on=keys, how="inner")
    better = np.where(
        merged["higher"], merged["value"] > merged["high"], merged["value"] < merged["low"]
    )
    worse = np.where(
        merged["higher"], merged["value"] < merged["low"], merged["value"] > merged["high"]
    )
    merged["position"] = np.select(
        [better, worse], ["above the band", "below the band"], "within the band"
    )
    return merged
