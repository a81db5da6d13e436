"""Capabilities across a sweep: headline metrics against expansion ratio, above chance.

Each capability is one (task, metric, filter) with a kind, "knowledge" or "instruction"
(from the task catalogue, :mod:`widthprune.evaluation.catalogue`). A score
is also shown *above chance*, ``(value - chance) / (1 - chance)``: 0 is guessing, 1 is perfect,
so tasks with different chance levels share one axis.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .claims import PUBLISHED_TASKS
from .runs import check_comparable, run_metrics
from .stats import CHANCE

__all__ = [
    "describe_endpoints",
    "endpoints",
    "knowledge_by_frequency",
    "published_capabilities",
    "sweep_capabilities",
]

_COLUMNS = [
    "model",
    "criterion",
    "expansion_ratio",
    "pruning_pct",
    "kind",
    "task",
    "metric",
    "filter",
    "value",
    "stderr",
    "ci_low",
    "ci_high",
    "chance",
    "above_chance",
    "above_chance_low",
    "above_chance_high",
    "higher_is_better",
]


def _headline(frame: pd.DataFrame, tasks: dict) -> pd.DataFrame:
    keys = list(zip(frame["task"], frame["metric"], frame["filter"].fillna("none"), strict=True))
    keep = np.array([k in tasks for k in keys], dtype=bool)
    out = frame[keep].copy()
    kinds = [tasks[k] for k, m in zip(keys, keep, strict=True) if m]
    out["kind"] = [k for k, _ in kinds]
    out["higher_is_better"] = [h for _, h in kinds]
    return out


def _intervals(out: pd.DataFrame, extra: tuple[str, ...] = ()) -> pd.DataFrame:
    """95 % intervals on the score and on the above-chance scale (NaN where unknown)."""
    out["ci_low"] = out["value"] - 1.96 * out["stderr"]
    out["ci_high"] = out["value"] + 1.96 * out["stderr"]
    scale = 1 - out["chance"]
    for suffix, column in (("", "value"), ("_low", "ci_low"), ("_high", "ci_high")):
        out[f"above_chance{suffix}"] = (out[column] - out["chance"]) / scale
    order = ["model", "criterion", "task", "metric", *extra, "expansion_ratio"]
    return out[_COLUMNS + list(extra)].sort_values(order, ignore_index=True)


def sweep_capabilities(results: pd.DataFrame, *, tasks: dict | None = None) -> pd.DataFrame:
    """Headline metrics of a stored sweep (:func:`widthprune.load_results`) per configuration.

    The metrics are those the task catalogue lists for the tasks the run holds (any suite:
    the toy, the real tasks, the study's); a run whose configurations were measured
    differently is refused (:func:`widthprune.analysis.runs.check_comparable`).

    The unpruned configuration belongs to every criterion's curve, so its rows are repeated once
    per criterion. ``expansion_ratio`` is the width reached over the hidden size, also for
    sweeps given as percentages; ``pruning_pct`` is the share of neurons removed.

    Returns:
        One row per (model, criterion, configuration, capability): the columns of
        :data:`_COLUMNS`.
    """
    check_comparable(results)
    tasks = run_metrics(results) if tasks is None else tasks
    frame = _headline(results, tasks)
    if frame.empty:
        raise ValueError(f"No headline metric {sorted(tasks)} in these results")
    return _intervals(_per_criterion(frame))


def _per_criterion(frame: pd.DataFrame) -> pd.DataFrame:
    """Ratio and percentage from the widths reached; the unpruned rows copied to each criterion."""
    frame = frame.assign(expansion_ratio=frame["final_ratio"])
    base = frame[frame["criterion"].isna()]
    full = dict(zip(base["model"], base["final_width"], strict=False))
    frame["pruning_pct"] = 100 * (1 - frame["final_width"] / frame["model"].map(full))
    base = frame[frame["criterion"].isna()]
    criteria = list(frame["criterion"].dropna().unique()) or ["none"]
    return pd.concat(
        [frame[frame["criterion"].notna()]] + [base.assign(criterion=c) for c in criteria],
        ignore_index=True,
    )


def published_capabilities(*, tasks: dict | None = None, variants=("base", "instruct")):
    """The published Llama-3.2 results (:func:`widthprune.published`) in the same form.

    Where the study reported no standard error for an accuracy, the binomial one,
    ``sqrt(p (1 - p) / n)``, is used. The criterion is the study's, ``ppm``.
    """
    from .published import published

    tasks = PUBLISHED_TASKS if tasks is None else tasks
    frame = published("benchmarks")
    frame = _headline(frame[frame["variant"].isin(variants)], tasks)
    binomial = np.sqrt(frame["value"] * (1 - frame["value"]) / frame["n"])
    is_rate = frame["metric"].str.contains("acc|exact_match")
    frame["stderr"] = frame["stderr"].where(frame["stderr"].notna() | ~is_rate, binomial)
    frame["criterion"] = "ppm"
    keys = zip(frame["task"], frame["metric"], strict=True)
    frame["chance"] = [CHANCE.get(k, 0.0 if "acc" in k[1] else np.nan) for k in keys]
    return _intervals(frame)


def knowledge_by_frequency(results: pd.DataFrame, samples: pd.DataFrame) -> pd.DataFrame:
    """Knowledge accuracy of each configuration of a toy sweep, per frequency of the fact.

    Every toy knowledge question asks a fact that the training text stated at one of several
    frequencies; this splits the accuracy by that frequency, with binomial standard errors.

    Args:
        results: :func:`widthprune.load_results` of the sweep.
        samples: :func:`widthprune.load_samples` of the same sweep.

    Returns:
        Rows in the form of :func:`sweep_capabilities` (``task`` toy_knowledge, ``metric`` acc),
        plus ``frequency`` (ordered from the most to the least frequent bucket) and ``n``
        (questions in that bucket).
    """
    from ..toy import TASK_DATA, WorldConfig

    items = pd.read_json(TASK_DATA / "knowledge.jsonl", lines=True)
    order = [name for name, _ in WorldConfig().frequency_buckets]  # most frequent first
    frequency = items["frequency"].rename_axis("doc_id").reset_index()
    acc = samples[(samples["task"] == "toy_knowledge") & (samples["metric"] == "acc")]
    acc = acc.merge(frequency, on="doc_id", how="left", validate="many_to_one")
    if acc["frequency"].isna().any():
        raise ValueError("Samples hold toy_knowledge items that the bundled task data lacks")
    table = acc.groupby(["config_id", "frequency"], as_index=False)["value"].agg(["mean", "size"])
    table = table.rename(columns={"mean": "value", "size": "n"})
    table["stderr"] = np.sqrt(table["value"] * (1 - table["value"]) / table["n"])
    configs = results.drop_duplicates("config_id")
    configs = configs[["config_id", "model", "criterion", "final_width", "final_ratio"]]
    frame = table.merge(configs, on="config_id").assign(
        task="toy_knowledge",
        metric="acc",
        filter="none",
        chance=0.25,
        kind="knowledge",
        higher_is_better=True,
    )
    frame["frequency"] = pd.Categorical(frame["frequency"], categories=order, ordered=True)
    return _intervals(_per_criterion(frame), extra=("frequency", "n"))


def endpoints(caps: pd.DataFrame, criterion: str) -> pd.DataFrame:
    """Each capability of one criterion at the widest and the narrowest width of a sweep.

    Args:
        caps: :func:`sweep_capabilities` rows.
        criterion: whose curve to read.

    Returns:
        Index (task, metric); columns kind, full (value at the widest ratio), narrow (at the
        narrowest), widest, narrowest, higher_is_better.
    """
    mine = caps[caps["criterion"] == criterion]
    if mine.empty:
        raise ValueError(f"No configuration of criterion {criterion!r} in these capabilities")
    widest, narrowest = mine["expansion_ratio"].max(), mine["expansion_ratio"].min()
    at = mine.set_index(["task", "metric", "expansion_ratio"])
    rows = []
    for (task, metric), group in mine.groupby(["task", "metric"], sort=False):
        first = group.iloc[0]
        rows.append(
            {
                "task": task,
                "metric": metric,
                "kind": first["kind"],
                "full": float(at.loc[(task, metric, widest), "value"]),
                "narrow": float(at.loc[(task, metric, narrowest), "value"]),
                "widest": widest,
                "narrowest": narrowest,
                "higher_is_better": bool(first["higher_is_better"]),
            }
        )
    return pd.DataFrame(rows).set_index(["task", "metric"])


def describe_endpoints(ends: pd.DataFrame) -> str:
    """One sentence per capability kind, e.g. "toy_knowledge acc 1.000 -> 0.865"."""
    parts = []
    for kind in ("knowledge", "instruction"):
        mine = ends[ends["kind"] == kind]
        if mine.empty:
            continue
        moves = [
            f"`{task}` {metric} {row.full:.3f} → {row.narrow:.3f}"
            + ("" if row.higher_is_better else " (lower is better)")
            for (task, metric), row in mine.iterrows()
        ]
        parts.append(f"{kind}: " + "; ".join(moves))
    return ". ".join(p[0].upper() + p[1:] for p in parts) + "."
