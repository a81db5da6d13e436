"""The study's efficiency runs as workloads: its published runs averaged per model, pruning
level and workload, in the units the quantities really have."""

from __future__ import annotations

import pandas as pd

from .published import published

__all__ = ["STUDY_GPU", "published_workloads"]

STUDY_GPU = "NVIDIA L4"  # every efficiency run of the study (its repository's results)

_WORKLOAD_QUANTITIES = {
    "throughput": "throughput_tok_s",
    "generate_wall_time": "ttlt_ms",
    "emissions_net": "energy_kwh_reported",
    "emissions_per_token": "joules_per_token_reported",
}


def published_workloads(frame: pd.DataFrame | None = None) -> pd.DataFrame:
    """The study's efficiency runs averaged per model, pruning level and workload.

    Args:
        frame: :func:`widthprune.published` ``("efficiency")`` (read when omitted): one row per
            run and quantity, in the units the quantities really have.

    Returns:
        One row per (model, pruning_pct, workload): shape, gpu, width, batch_size, num_prompts,
        max_new_tokens, num_runs and the run means of ``throughput_tok_s``, ``ttlt_ms`` (the
        wall time of a whole ``generate()`` call), and the two figures the study called energy,
        ``energy_kwh_reported`` and ``joules_per_token_reported`` (both CodeCarbon emissions in
        disguise: see :func:`correct_published_energy`). Runs the study itself excluded are left
        out, as are its own summary rows.
    """
    if frame is None:
        frame = published("efficiency")
    runs = frame[(frame["workload"] != "summary") & ~frame["excluded_by_study"].astype(bool)]
    keys = ["model", "pruning_pct", "width", "workload", "batch_size", "num_prompts"]
    keys.append("max_new_tokens")
    wanted = runs[runs["quantity"].isin(_WORKLOAD_QUANTITIES)]
    table = wanted.pivot_table(index=keys, columns="quantity", values="value", aggfunc="mean")
    table = table.rename(columns=_WORKLOAD_QUANTITIES).reset_index()
    table.columns.name = None
    table.insert(1, "shape", table["model"].str.lower())  # the key of widthprune.SHAPES
    table["gpu"] = STUDY_GPU
    counts = runs.groupby(["model", "pruning_pct", "workload"])["run"].nunique()
    table = table.merge(
        counts.rename("num_runs").reset_index(), on=["model", "pruning_pct", "workload"]
    )
    return table.sort_values(["model", "pruning_pct", "workload"], ignore_index=True)
