"""The study's deployment claims (energy per token, latency at batch 1, batch throughput),
checked against its own efficiency runs (``published("efficiency")``).

The study ran six workloads (three tasks at batch 1 and at batch 8), three runs each, and left
some runs out of its means (``excluded_by_study``); the means here leave out the same runs. Its
energy figures are CodeCarbon emissions, energy times a grid factor: ratios between
configurations are unaffected, so every comparison here is a ratio to the unpruned model.
Each claim function returns one row of :func:`widthprune.analysis.abstract.study_claims`.
"""

from __future__ import annotations

import pandas as pd

__all__ = [
    "batch_claim",
    "efficiency_checkpoints",
    "energy_claim",
    "latency_claim",
    "measured_energy",
    "relative_to_unpruned",
]


def relative_to_unpruned(efficiency: pd.DataFrame, quantity: str) -> pd.DataFrame:
    """Mean of one quantity over the study's kept runs, relative to the unpruned model.

    Returns:
        Columns model, workload, batch_size, pruning_pct, value (mean over runs), spread
        (standard deviation over runs / mean), relative (value / the unpruned value of the
        same model and workload); the pruned configurations only.
    """
    runs = efficiency[
        (efficiency["workload"] != "summary")
        & (efficiency["quantity"] == quantity)
        & ~efficiency["excluded_by_study"].astype(bool)
    ]
    if runs.empty:
        raise ValueError(f"no runs of quantity {quantity!r}")
    keys = ["model", "workload", "batch_size", "pruning_pct"]
    means = runs.groupby(keys, as_index=False)["value"].agg(["mean", "std"])
    means = means.rename(columns={"mean": "value"})
    means["spread"] = means.pop("std") / means["value"]
    base = means[means["pruning_pct"] == 0].set_index(["model", "workload"])["value"]
    means["relative"] = means["value"] / pd.MultiIndex.from_frame(means[["model", "workload"]]).map(
        base
    ).to_numpy(float)
    return means[means["pruning_pct"] != 0].reset_index(drop=True)


def efficiency_checkpoints(efficiency: pd.DataFrame) -> pd.DataFrame:
    """Which checkpoint each point of the study's efficiency series ran.

    Returns:
        One row per model and pruning_pct: checkpoint (the Hugging Face repository the study's
        file names for that run), ratio 0 first.
    """
    runs = efficiency.dropna(subset=["hf_repo"])
    out = runs.groupby(["model", "pruning_pct"], as_index=False)["hf_repo"].first()
    return out.rename(columns={"hf_repo": "checkpoint"})


def measured_energy(
    measurements: pd.DataFrame,
    width: int,
    paths: dict[int, str],
    *,
    shape: str = "llama-3.2-1b",
    metric: str = "energy_per_token",
) -> pd.DataFrame:
    """The book's own energy per token of one pruned width over the unpruned width's.

    Args:
        measurements: :func:`widthprune.efficiency.timing.load_measurements` rows (one pass, or
            rounds).
        width: the pruned width.
        paths: batch size -> the generation path read at it.
        shape: the shape measured; its widest width is the reference.
        metric: ``energy_per_token`` (idle included) or ``energy_per_token_net``.

    Returns:
        One row per batch: device (the card), batch, path, metric, rounds, relative (median over
        rounds of the per-round ratio).
    """
    from ..efficiency.rounds import round_ratios

    rows = []
    for batch, path in paths.items():
        sel = measurements.query("shape == @shape and batch == @batch and path == @path")
        ratio = round_ratios(sel.assign(round=sel["round"].fillna(0)), metric)
        ratio = ratio[ratio["width"] == width]
        if ratio.empty:
            raise ValueError(f"no {metric} of width {width} at batch {batch} on {path}")
        rows.append(
            {
                "device": str(measurements["device"].dropna().iloc[0]),
                "batch": batch,
                "path": path,
                "metric": metric,
                "rounds": int(ratio["round"].nunique()),
                "relative": float(ratio["ratio"].median()),
            }
        )
    return pd.DataFrame(rows)


_ENERGY = {
    "energy_per_token": "energy per token (idle included)",
    "energy_per_token_net": "energy per token above idle",
}


def _pct(x: float) -> str:
    return f"{100 * x:.1f} %"


def energy_claim(
    efficiency: pd.DataFrame,
    *,
    stated: float = 0.23,
    measured: pd.DataFrame | None = None,
    width: int = 7373,
) -> dict:
    """Claim: pruned configurations use up to 23 % less energy per token.

    Args:
        efficiency: ``published("efficiency")``.
        stated: the saving the abstract states.
        measured: the book's own measurements of the study's ``width``
            (:func:`measured_energy` rows, several sources concatenated); where one uses more
            energy per token than unpruned by more than 5 %, the verdict says so.
    """
    summary = efficiency[
        (efficiency["workload"] == "summary") & (efficiency["quantity"] == "energy_per_token")
    ]
    base = summary[summary["pruning_pct"] == 0].set_index("model")["value"]
    summary = summary[summary["pruning_pct"] != 0]
    saving = 1 - summary["value"] / summary["model"].map(base)
    best = summary.assign(saving=saving).sort_values("saving").groupby("model").tail(1)
    per = relative_to_unpruned(efficiency, "energy_per_token").assign(
        saving=lambda f: 1 - f["relative"]
    )
    top = per.loc[per["saving"].idxmax()]
    more = per[(per["batch_size"] > 1) & (per["relative"] > 1)]
    reached = (saving >= stated - 0.01).any()
    verdict = (
        "supported"
        if reached
        else "partly supported: single workloads only"
        if top["saving"] >= stated - 0.01
        else "not supported"
    )
    ours = ""
    if measured is not None and len(measured):
        pruned = f"{100 * (1 - width / 8192):.0f} % pruned"
        ours = f" Measured by the book at width {width} ({pruned}): " + (
            "; ".join(
                f"{r.relative:.2f}x the unpruned {_ENERGY[r.metric]} at batch {r.batch} "
                f"({r.device}, {r.path}, {r.rounds} round{'s' if r.rounds > 1 else ''})"
                for r in measured.itertuples()
            )
            + "."
        )
        if (measured["relative"] > 1.05).any():
            verdict += f"; the study's unaligned width {width} uses more energy than unpruned"
    return {
        "claim": f"Pruning saves up to {100 * stated:.0f} % of the energy per token",
        "evidence": "the study's own average over its six workloads: "
        + "; ".join(f"{r.model} {_pct(r.saving)} at {r.pruning_pct} %" for r in best.itertuples())
        + f" at most. Single workloads: up to {_pct(top['saving'])} ({top['model']}, "
        f"{top['workload']}, {top['pruning_pct']} %); at batch 8, {len(more)} of "
        f"{int((per['batch_size'] > 1).sum())} pruned configurations use more energy per token "
        f"than unpruned (up to {_pct(more['relative'].max() - 1)} more)." + ours,
        "criterion": f"the study's average over its workloads reaches {100 * stated:.0f} % less "
        "energy "
        "per token (within one point) at some pruned configuration",
        "verdict": verdict,
    }


def latency_claim(efficiency: pd.DataFrame, *, margin: float = 2.0) -> dict:
    """Claim: pruning costs latency at batch 1 (single requests)."""
    wall = relative_to_unpruned(efficiency, "generate_wall_time")
    wall = wall[wall["batch_size"] == 1]
    tokens = relative_to_unpruned(efficiency, "new_tokens")
    tokens = tokens[tokens["batch_size"] == 1]
    speed = relative_to_unpruned(efficiency, "throughput")
    speed = speed[speed["batch_size"] == 1]
    noise = margin * speed["spread"].median()
    slower = int((speed["relative"] < 1 - noise).sum())
    longer = int((wall["relative"] > 1 + noise).sum())
    n = len(wall)
    per_token = slower > n / 2
    verdict = (
        "supported"
        if per_token
        else "partly supported: longer requests, not slower tokens"
        if longer > n / 2
        else "not supported"
    )
    return {
        "claim": "Pruned models pay a latency penalty on single requests (batch 1)",
        "evidence": f"a generate() call takes {wall['relative'].min():.2f}x to "
        f"{wall['relative'].max():.2f}x as long as unpruned (longer in {longer} of {n}), "
        f"because the pruned models write {tokens['relative'].min():.2f}x to "
        f"{tokens['relative'].max():.2f}x as many tokens; tokens per second are "
        f"{speed['relative'].min():.3f}x to {speed['relative'].max():.3f}x unpruned (slower by "
        f"more than {_pct(noise)}, {margin:g} times the median run-to-run spread, in {slower} "
        f"of {n}).",
        "criterion": "a penalty of the pruned model itself: tokens per second below unpruned by "
        "more than the runs' noise in most batch-1 configurations",
        "verdict": verdict,
    }


def batch_claim(efficiency: pd.DataFrame) -> dict:
    """Claim: batch workloads benefit uniformly from pruning."""
    speed = relative_to_unpruned(efficiency, "throughput")
    speed = speed[speed["batch_size"] > 1]
    energy = relative_to_unpruned(efficiency, "energy_per_token")
    energy = energy[energy["batch_size"] > 1]
    both = speed.merge(energy, on=["model", "workload", "pruning_pct"], suffixes=("", "_energy"))
    good = (both["relative"] > 1) & (both["relative_energy"] < 1)
    n, k = len(both), int(good.sum())
    verdict = "supported" if k == n else "partly supported" if k > n / 2 else "not supported"
    return {
        "claim": "Batch workloads benefit uniformly",
        "evidence": f"at batch 8, throughput is {speed['relative'].min():.3f}x to "
        f"{speed['relative'].max():.3f}x unpruned and energy per token "
        f"{energy['relative'].min():.3f}x to {energy['relative'].max():.3f}x; both better in "
        f"{k} of {n} (model, workload, pruned configuration) cells.",
        "criterion": "every pruned configuration of both models has more tokens per second and "
        "less energy per token than unpruned in every batch-8 workload (means over the runs)",
        "verdict": verdict + (f" ({k} of {n})" if 0 < k < n else ""),
    }
