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
  such knowledge task does; otherwise *neither*; *not read* where the instruction task has no
  test (every answer alike before and after, so no standard error).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from .stats import adjust, baseline_change

__all__ = [
    "CHANGES",
    "PATTERNS",
    "PACKAGED_PARAMETERS",
    "across_rule",
    "capability_changes",
    "CUT_TIES",
    "count_packaged_parameters",
    "count_cut_ties",
    "cut_tie_table",
    "describe_verdicts",
    "detectable_change",
    "kind_changes",
    "model_parameters",
    "parameter_counts",
    "pattern_verdicts",
    "published_mlp_shares",
    "run_capabilities",
]

# the packaged models' parameter counts, as count_packaged_parameters() gives them (written
# with ``to_csv(index=False)``; a test recounts them from the installed GGUF files)
PACKAGED_PARAMETERS = Path(__file__).parent / "data" / "model_parameters.csv"
# the packaged models' ties across the cut under ppm, as count_cut_ties() gives them (a test
# recounts them from the converted checkpoints)
CUT_TIES = Path(__file__).parent / "data" / "cut_ties.csv"
TIE_PCTS = (10, 20, 30, 40, 50, 60)

CHANGES = ("falls", "rises", "not significant", "not tested")
PATTERNS = (
    "the study's pattern",
    "the reverse of the study's pattern",
    "neither pattern",
    "not read",  # the instruction task has no test (no standard error: every answer alike)
)


def across_rule(alpha: float = 0.05) -> str:
    """The rule of :func:`capability_changes` and :func:`pattern_verdicts`, in words."""
    return (
        f"z test of each pruned score against the unpruned one from their standard errors "
        f"(independent: conservative), Holm over each model's table, significant at {alpha:g}; "
        "the study's pattern: every knowledge task the unpruned model is above chance on falls "
        "and the instruction task does not fall; the reverse: the instruction task falls while "
        "not every such knowledge task does; not read: the instruction task has no test"
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


def count_packaged_parameters(names: tuple[str, ...] | None = None) -> pd.DataFrame:
    """Count the packaged models' parameters from their GGUF files' headers (no weights).

    Returns:
        One row per model: model, model_type, hidden_size, intermediate_size, layers, vocab,
        tied (embeddings), total, mlp, mlp_share.
    """
    from ..models.registry import PACKAGED_MODELS, gguf_config

    rows = []
    for name in names or tuple(PACKAGED_MODELS):
        config = gguf_config(name)
        counts = parameter_counts(config)
        rows.append(
            {
                "model": name,
                "model_type": config["model_type"],
                "hidden_size": int(config["hidden_size"]),
                "intermediate_size": int(config["intermediate_size"]),
                "layers": int(config["num_hidden_layers"]),
                "vocab": int(config["vocab_size"]),
                "tied": bool(config.get("tie_word_embeddings", False)),
                **counts,
            }
        )
    return pd.DataFrame(rows)


def model_parameters(name: str | None = None) -> pd.DataFrame | dict:
    """The packaged models' parameter counts (:data:`PACKAGED_PARAMETERS`), or, for ``name``,
    that model's row as a dict; a name not in the table (the toy, a local folder, a hub id)
    is counted from its ``config.json`` by :func:`parameter_counts`.

    Raises:
        ValueError: ``name`` is neither in the table nor a model whose configuration can be read.
    """
    table = pd.read_csv(PACKAGED_PARAMETERS)
    if name is None:
        return table
    if name in set(table["model"]):
        return table.set_index("model").loc[name].to_dict()
    import json

    from ..models.loading import TOY_CHECKPOINT

    folder = TOY_CHECKPOINT if name == "toy" else Path(name).expanduser()
    if not (folder / "config.json").is_file():
        try:
            from transformers import AutoConfig

            config = AutoConfig.from_pretrained(name).to_dict()
        except (OSError, ValueError) as err:
            raise ValueError(f"cannot read the configuration of model {name!r}: {err}") from err
    else:
        config = json.loads((folder / "config.json").read_text())
    return parameter_counts(config)


def run_capabilities(
    results: pd.DataFrame, *, model: str, chat_template: bool = False
) -> pd.DataFrame:
    """One run's pruned-only models with one prompt form, as capability rows named ``model``.

    Args:
        results: a store's or a recorded run's results (``load_results`` /
            ``recorded_results``): configurations with a ``recovery`` setting are left out.
        model: the name the rows carry (a model and its prompt form, say).
        chat_template: which prompt form to keep.

    Raises:
        ValueError: no unpruned model with that prompt form is in ``results``.
    """
    from .capabilities import sweep_capabilities
    from .recovery import recovered

    part = results[(results["chat_template"].astype(bool) == chat_template) & ~recovered(results)]
    if not (part["label"] == "baseline").any():
        form = "chat-template" if chat_template else "plain"
        raise ValueError(f"no unpruned model with {form} prompts in the results for {model}")
    caps = sweep_capabilities(part)
    return caps.assign(model=model)


def detectable_change(stderr: float, tests: int, alpha: float = 0.05) -> float:
    """The smallest change :func:`capability_changes` can call significant for a score of
    standard error ``stderr`` measured twice (unpruned and pruned, each with that error), as
    the first of ``tests`` tests Holm's adjustment orders (the strictest)."""
    from scipy.stats import norm

    return float(norm.isf(alpha / (2 * tests)) * np.sqrt(2) * stderr)


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


def _knowledge_rows(part: pd.DataFrame) -> pd.DataFrame:
    """The tested knowledge rows whose unpruned score is above chance."""
    tested = part[part["change"] != CHANGES[3]]
    return tested[(tested["kind"] == "knowledge") & tested["base_above_chance"].astype(bool)]


def _instruction_row(part: pd.DataFrame, instruction: dict | None) -> pd.Series:
    """The instruction row one (model, criterion, width) is read on: the (task, metric) that
    ``instruction`` names for the model, else its first; a tested row before an untested one."""
    model, pct = part["model"].iloc[0], part["pruning_pct"].iloc[0]
    inst = part[part["kind"] == "instruction"]
    if instruction and model in instruction:
        task, metric = instruction[model]
        inst = inst[(inst["task"] == task) & (inst["metric"] == metric)]
    if inst.empty:
        raise ValueError(f"no instruction task for {model} at {pct:g} %")
    if (inst["change"] != CHANGES[3]).any():
        inst = inst[inst["change"] != CHANGES[3]]
    return inst.iloc[0]


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
        know = _knowledge_rows(part)
        inst = _instruction_row(part, instruction)
        falls = int((know["change"] == CHANGES[0]).sum())
        if inst["change"] == CHANGES[3]:
            verdict = PATTERNS[3]
        elif len(know) > 0 and falls == len(know) and inst["change"] != CHANGES[0]:
            verdict = PATTERNS[0]
        elif inst["change"] == CHANGES[0] and falls < len(know):
            verdict = PATTERNS[1]
        else:
            verdict = PATTERNS[2]
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
                "verdict": verdict,
            }
        )
    return pd.DataFrame(rows)


def kind_changes(changes: pd.DataFrame, *, instruction: dict | None = None) -> pd.DataFrame:
    """Each model's knowledge and instruction change per width, relative to the unpruned score.

    Knowledge is the mean over the knowledge tasks the unpruned model is above chance on (one
    headline row each, perplexity left out: it has no ceiling); instruction following is the
    instruction row :func:`pattern_verdicts` reads. A relative change of -0.5 is half the
    unpruned score lost.

    Args:
        changes: :func:`capability_changes` rows.
        instruction: as for :func:`pattern_verdicts`.

    Returns:
        One row per (model, criterion, pruning_pct, kind): mlp_removed, all_removed,
        relative (mean of estimate / unpruned), tasks (how many were averaged).
    """
    keys = ["model", "criterion", "pruning_pct"]
    parts = []
    for _, part in changes.groupby(keys, sort=True):
        inst = _instruction_row(part, instruction)
        parts.append(_knowledge_rows(part))
        if inst["change"] != CHANGES[3]:
            parts.append(inst.to_frame().T)
    rows = pd.concat(parts, ignore_index=True)
    base = rows["baseline_value"].astype(float)
    rows = rows.assign(relative=rows["estimate"].astype(float) / base.where(base != 0))
    out = rows.groupby([*keys, "kind"], sort=True).agg(
        mlp_removed=("mlp_removed", "first"),
        all_removed=("all_removed", "first"),
        relative=("relative", "mean"),
        tasks=("task", "nunique"),
    )
    return out.reset_index()


def _widths(pcts) -> str:
    pcts = sorted(float(p) for p in pcts)
    return ", ".join(f"{p:.0f}" for p in pcts) + " %"


def describe_verdicts(verdicts: pd.DataFrame, *, sources: dict | None = None) -> str:
    """The verdicts of :func:`pattern_verdicts` in words, one bullet per model and criterion.

    Args:
        verdicts: :func:`pattern_verdicts` rows.
        sources: optional ``{model: "where its numbers come from"}``, said after its name.
    """
    lines = []
    for (model, criterion), part in verdicts.groupby(["model", "criterion"], sort=False):
        part = part.sort_values("pruning_pct")
        said = []
        for verdict in PATTERNS:
            at = part[part["verdict"] == verdict]
            if len(at):
                said.append(f"*{verdict}* at {_widths(at['pruning_pct'])}")
        inst = part.iloc[0]["instruction_task"]
        moves = []
        for change in (CHANGES[0], CHANGES[1]):
            at = part[part["instruction_change"] == change]
            if len(at):
                moves.append(f"{change} at {_widths(at['pruning_pct'])}")
        know = part["knowledge_tasks"].iloc[0]
        falls = ", ".join(f"{r.knowledge_fall}" for r in part.itertuples())
        source = f" ({sources[model]})" if sources and model in sources else ""
        lines.append(
            f"- **{model}**{source}, {criterion}: {'; '.join(said)}. Of its {know} knowledge "
            f"tasks above chance, {falls} fall at the widths in turn; instruction following, read "
            f"on {inst}, {' and '.join(moves) if moves else 'changes significantly at no width'}."
        )
    return "\n".join(lines)


def count_cut_ties(model, name: str, *, criterion: str = "ppm", pcts=TIE_PCTS) -> pd.DataFrame:
    """How often the tie rule, not the score, decides which neurons a cut keeps.

    Args:
        model: the loaded, unpruned model (a weight criterion needs no calibration).
        name: the name its rows carry.
        criterion: a criterion that needs no calibration text.
        pcts: the widths, as percentages of MLP neurons removed.

    Returns:
        One row per width: model, criterion, pruning_pct, width, layers, layers_tied (layers
        with a tie across the cut, :func:`~widthprune.pruning.selection.cut_ties`) and
        at_stake (neurons that would change places under the opposite tie rule, all layers).
    """
    from ..pruning.architectures import pct_width
    from ..pruning.scoring import score
    from ..pruning.selection import cut_ties

    scores = score(model, criterion)
    rows = []
    for pct in pcts:
        width = pct_width(model.config.intermediate_size, pct)
        ties = cut_ties(scores, width)
        rows.append(
            {
                "model": name,
                "criterion": criterion,
                "pruning_pct": pct,
                "width": width,
                "layers": len(ties),
                "layers_tied": sum(tied > kept for tied, kept in ties.values()),
                "at_stake": sum(min(kept, tied - kept) for tied, kept in ties.values()),
            }
        )
    return pd.DataFrame(rows)


def cut_tie_table() -> pd.DataFrame:
    """The packaged models' ties across the cut (:data:`CUT_TIES`)."""
    return pd.read_csv(CUT_TIES)
