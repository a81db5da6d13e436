"""The study's claims across models: each capability's change on axes every model shares.

Models differ in how much of their parameters the MLP holds (SmolLM2-135M about three fifths,
Gemma-3-270M, with its 262,144-token vocabulary, about a quarter), so a cut of 40 % of the MLP
neurons removes different shares of the whole model. Each change is therefore placed against
both the share of MLP parameters removed (the pruning percentage: every neuron carries
``3 x hidden`` weights) and the share of all parameters removed.

One rule reads every model and width, from summary statistics alone (the published Llama-3.2
results have no per-item records), by :func:`~widthprune.analysis.stats.baseline_change`'s z
test of the pruned against the unpruned score (independent scores: conservative), with Holm's
adjustment over each model's table:

- a capability *falls* or *rises* where the adjusted p is below ``alpha``; otherwise its change
  is *not significant*; a task without a standard error (perplexity) is shown, not tested;
- the *study's pattern* at a width: every knowledge task on which the unpruned model is above
  chance (its score more than 1.96 standard errors above the task's chance) falls, and the
  instruction task does not fall; *the reverse*: the instruction task falls while not every
  such knowledge task does; otherwise *neither*.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .stats import adjust, baseline_change

__all__ = [
    "CHANGES",
    "PATTERNS",
    "across_rule",
    "capability_changes",
    "parameter_counts",
    "pattern_verdicts",
    "published_mlp_shares",
]

CHANGES = ("falls", "rises", "not significant", "not tested")
PATTERNS = ("the study's pattern", "the reverse of the study's pattern", "neither pattern")


def across_rule(alpha: float = 0.05) -> str:
    """The rule of :func:`capability_changes` and :func:`pattern_verdicts`, in words."""
    return (
        f"z test of each pruned score against the unpruned one from their standard errors "
        f"(independent: conservative), Holm over each model's table, significant at {alpha:g}; "
        "the study's pattern: every knowledge task the unpruned model is above chance on falls "
        "and the instruction task does not fall; the reverse: the instruction task falls while "
        "not every such knowledge task does"
    )


def parameter_counts(config: dict) -> dict:
    """Parameters of a model described by its ``config.json`` (as a dict), counted on an empty
    ("meta") model of that configuration, with no weights loaded.

    Returns:
        ``{"total": ..., "mlp": ..., "mlp_share": ...}``: every parameter (tied embeddings
        once), those of the gated MLPs' three projections, and their share.
    """
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    from ..pruning.architectures import gated_mlps

    settings = {k: v for k, v in config.items() if k != "model_type"}
    built = AutoConfig.for_model(config["model_type"], **settings)
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(built)
    total = sum(p.numel() for p in model.parameters())
    mlp = sum(
        proj.weight.numel()
        for _, block in gated_mlps(model)
        for proj in (block.gate_proj, block.up_proj, block.down_proj)
    )
    return {"total": int(total), "mlp": int(mlp), "mlp_share": mlp / total}


def published_mlp_shares() -> dict[str, float]:
    """Share of each published Llama-3.2 model's parameters in its MLPs, from the parameter
    counts the study reports at each width: the parameters removed over the share of
    neurons removed."""
    from .published import published

    table = published("benchmarks")[["model", "width", "parameters"]].drop_duplicates()
    shares = {}
    for model, part in table.groupby("model"):
        full = part.loc[part["width"].idxmax()]
        cut = part.loc[part["width"].idxmin()]
        removed = 1 - cut["parameters"] / full["parameters"]
        shares[model] = float(removed / (1 - cut["width"] / full["width"]))
    return shares


def capability_changes(
    caps: pd.DataFrame, *, mlp_share: float | dict, alpha: float = 0.05
) -> pd.DataFrame:
    """Each capability's change from the unpruned model, tested and placed on both axes.

    Args:
        caps: :func:`~widthprune.analysis.capabilities.sweep_capabilities` or
            :func:`~widthprune.analysis.capabilities.published_capabilities` rows (model,
            criterion, pruning_pct, kind, task, metric, filter, value, stderr, chance,
            higher_is_better), the unpruned rows at ``pruning_pct`` 0.
        mlp_share: the share of the model's parameters in its MLPs (one number, or per model).

    Returns:
        :func:`~widthprune.analysis.stats.baseline_change` rows with kind, chance,
        higher_is_better, base_above_chance (the unpruned score more than 1.96 standard errors
        above chance), mlp_removed and all_removed (shares of parameters), p_adj (Holm within
        each model) and change (one of :data:`CHANGES`, in the direction of better or worse:
        a perplexity that rises *falls*).
    """
    caps = caps.assign(pruning_pct=caps["pruning_pct"].round(6))
    by = ("model", "criterion", "task", "metric", "filter")
    changes = baseline_change(caps, by=by)
    keys = [c for c in by if c in caps]
    info = caps.drop_duplicates(keys)[[*keys, "kind", "chance", "higher_is_better"]]
    changes = changes.merge(info, on=keys, how="left")
    base = caps[caps["pruning_pct"] == 0]
    base_se = base["stderr"].astype(float)
    above = (base["value"] - base["chance"]) > 1.96 * base_se
    base = base.assign(base_above_chance=above.fillna(False).astype(bool))
    changes = changes.merge(base[[*keys, "base_above_chance"]], on=keys, how="left")
    shares = changes["model"].map(mlp_share) if isinstance(mlp_share, dict) else mlp_share
    changes["mlp_removed"] = changes["pruning_pct"] / 100
    changes["all_removed"] = changes["mlp_removed"] * shares
    parts = [adjust(part, alpha=alpha) for _, part in changes.groupby("model", sort=False)]
    changes = pd.concat(parts, ignore_index=True)
    better = np.where(changes["higher_is_better"].astype(bool), 1, -1) * np.sign(
        changes["estimate"]
    )
    changes["change"] = np.select(
        [changes["p"].isna(), changes["reject"] & (better < 0), changes["reject"] & (better > 0)],
        [CHANGES[3], CHANGES[0], CHANGES[1]],
        CHANGES[2],
    )
    return changes


def pattern_verdicts(changes: pd.DataFrame, *, instruction: dict | None = None) -> pd.DataFrame:
    """The study's pattern per model, criterion and width, by :func:`across_rule`.

    Args:
        changes: :func:`capability_changes` rows.
        instruction: the instruction (task, metric) each model's verdict reads; default: its
            first instruction row with a test.

    Returns:
        One row per (model, criterion, pruning_pct): mlp_removed, all_removed,
        knowledge_tasks (tested and above chance unpruned), knowledge_fall, instruction_task,
        instruction_change, instruction_estimate, verdict (one of :data:`PATTERNS`).
    """
    rows = []
    keys = ["model", "criterion", "pruning_pct"]
    for (model, criterion, pct), part in changes.groupby(keys, sort=True):
        tested = part[part["change"] != CHANGES[3]]
        know = tested[(tested["kind"] == "knowledge") & tested["base_above_chance"]]
        inst = tested[tested["kind"] == "instruction"]
        if instruction and model in instruction:
            task, metric = instruction[model]
            inst = inst[(inst["task"] == task) & (inst["metric"] == metric)]
        if inst.empty:
            raise ValueError(f"no tested instruction task for {model} at {pct:g} %")
        inst = inst.iloc[0]
        falls = int((know["change"] == CHANGES[0]).sum())
        shown = len(know) > 0 and falls == len(know) and inst["change"] != CHANGES[0]
        reverse = inst["change"] == CHANGES[0] and falls < len(know)
        rows.append(
            {
                "model": model,
                "criterion": criterion,
                "pruning_pct": pct,
                "mlp_removed": part["mlp_removed"].iloc[0],
                "all_removed": part["all_removed"].iloc[0],
                "knowledge_tasks": len(know),
                "knowledge_fall": falls,
                "instruction_task": f"{inst['task']} ({inst['metric']})",
                "instruction_change": inst["change"],
                "instruction_estimate": inst["estimate"],
                "verdict": PATTERNS[0] if shown else PATTERNS[1] if reverse else PATTERNS[2],
            }
        )
    return pd.DataFrame(rows)
