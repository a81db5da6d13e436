"""What a stored run holds, and whether its configurations can be compared at all.

A sweep compares configurations that differ in model, criterion and width. Anything else that
differs (items per task, tasks, shots, chat template, seed, recovery after pruning, dtype,
device, package versions, task data, the model's weights under one name) makes two numbers
measure different things, so a run that mixes them is refused with the differing fields named,
never averaged.
"""

from __future__ import annotations

import pandas as pd

from ..evaluation.catalogue import analysed_metrics

__all__ = ["MUST_MATCH", "check_comparable", "run_metrics"]

# Columns of load_results that every configuration of a comparable run shares.
MUST_MATCH = (
    "tasks",
    "num_fewshot",
    "limit",
    "chat_template",
    "seed",
    "recovery",
    "resolved_dtype",
    "device",
    "batch_size",
    "include_path",
    "versions",
    "tasks_data",
)


def _distinct(column: pd.Series) -> list:
    return sorted({"None" if pd.isna(v) else str(v) for v in column}, key=str)


def check_comparable(results: pd.DataFrame, *, vary: tuple[str, ...] = ()) -> pd.DataFrame:
    """Return ``results`` if its configurations differ only in model, criterion and width.

    Args:
        results: :func:`widthprune.load_results` of one run.
        vary: fields of :data:`MUST_MATCH` the run varies on purpose (a run asked once without
            and once with the chat template); the analysis that reads it must compare
            configurations only within one value of each.

    Raises:
        ValueError: naming each field that differs, with its values, and what to do.
    """
    if results.empty:
        raise ValueError("The run holds no complete result")
    configs = results.drop_duplicates("config_id")
    unknown = set(vary) - set(MUST_MATCH)
    if unknown:
        raise ValueError(f"vary names fields that are not compared: {sorted(unknown)}")
    problems = []
    for name in MUST_MATCH:
        if name in vary:
            continue
        if name in configs and configs[name].nunique(dropna=False) > 1:
            problems.append(f"{name}: {_distinct(configs[name])}")
    for model, group in configs.groupby("model") if "model_fingerprint" in configs else ():
        if group["model_fingerprint"].nunique() > 1:
            problems.append(
                f"model_fingerprint of {model!r} (its files changed between configurations): "
                f"{_distinct(group['model_fingerprint'])}"
            )
    calibrated = configs.dropna(subset=["criterion"]) if "calibration_digest" in configs else None
    for criterion, group in calibrated.groupby("criterion") if calibrated is not None else ():
        if group["calibration_digest"].nunique(dropna=False) > 1:
            problems.append(f"calibration text of {criterion}: {_distinct(group['calibration'])}")
    if problems:
        raise ValueError(
            "This run mixes configurations measured differently, which cannot be compared: "
            + "; ".join(problems)
            + ". Sweep into a fresh --run, or delete the results that no longer apply."
        )
    return results


def run_metrics(results: pd.DataFrame, *, headline_only: bool = False) -> dict:
    """The catalogue's analysed metrics of the tasks a run holds.

    Returns:
        ``{(task, metric, filter): (kind, higher is better)}``, as
        :func:`widthprune.evaluation.catalogue.analysed_metrics`.
    """
    metrics = analysed_metrics(results["task"].unique(), headline_only=headline_only)
    filters = results["filter"].fillna("none")
    present = set(zip(results["task"], results["metric"], filters, strict=True))
    return {k: v for k, v in metrics.items() if k in present}
