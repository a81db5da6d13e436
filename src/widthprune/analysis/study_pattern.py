"""The study's pattern per width: where knowledge falls while instruction following holds.

At each pruned configuration the pattern is read from the paired changes of
:func:`widthprune.analysis.real_model.paired_changes` (each against the unpruned model of the
same chat template, Holm over the whole run):

- *the study's pattern*: every knowledge task on which that unpruned model is above chance
  falls, and the instruction task holds or rises;
- *the reverse*: the instruction task falls while not every such knowledge task does;
- otherwise *neither*.

A pattern shown while instruction following sits at its floor says little about robustness,
so the unpruned instruction score is reported beside every verdict. :func:`pattern_events`
says where along the widths of one criterion, template and seed the pattern appears,
disappears or reverses.
"""

from __future__ import annotations

import pandas as pd

from ..evaluation.catalogue import CATALOGUE
from .real_model import holds_rule

__all__ = ["PATTERNS", "instruction_task", "pattern_events", "pattern_rule", "patterns"]

PATTERNS = ("the study's pattern", "the reverse of the study's pattern", "neither pattern")
_KEYS = ("chat_template", "criterion", "seed")  # one curve along the widths


def instruction_task(changes: pd.DataFrame, instruction: str | None = None) -> str:
    """The instruction task a verdict reads: ``instruction`` if given, else the run's first
    instruction task in the catalogue's order."""
    tasks = set(changes["task"])
    if instruction is not None:
        if instruction not in tasks:
            raise ValueError(f"no paired comparison of {instruction} in the changes")
        return instruction
    found = [t for t, info in CATALOGUE.items() if info.kind == "instruction" and t in tasks]
    if not found:
        raise ValueError("the changes hold no instruction task")
    return found[0]


def pattern_rule(instruction: str, **rule) -> str:
    """The verdict's rule in words (``rule``: margin and min_items of the holds rule)."""
    return (
        "every knowledge task above chance falls (paired test against the unpruned model of "
        f"the same template, Holm over the run, 0.05) and {instruction} holds "
        f"({holds_rule(**rule)}) or rises"
    )


def patterns(
    changes: pd.DataFrame, scores: pd.DataFrame, *, instruction: str | None = None
) -> pd.DataFrame:
    """The study's pattern per pruned configuration.

    Args:
        changes: :func:`~widthprune.analysis.real_model.paired_changes` rows.
        scores: :func:`~widthprune.analysis.real_model.unpruned_scores` rows (which knowledge
            tasks each template's unpruned model is above chance on).
        instruction: the instruction task the verdict reads (default: :func:`instruction_task`).

    Returns:
        One row per configuration: config, chat_template, criterion, seed, pruning_pct,
        knowledge_tasks (above chance), knowledge_fall, instruction_task, instruction_base,
        instruction_change, instruction_ci_low/high, instruction_p_adj, instruction (its
        reading), verdict, family (of the p values).
    """
    instruction = instruction_task(changes, instruction)
    above = scores[scores["standing"] == "above chance"]
    above = {t: set(part["task"]) for t, part in above.groupby("chat_template")}
    rows = []
    for config, part in changes.groupby("config", sort=False):
        first = part.iloc[0]
        tasks = above.get(bool(first["chat_template"]), set())
        know = part[(part["kind"] == "knowledge") & part["task"].isin(tasks)]
        inst = part[part["task"] == instruction]
        if inst.empty:
            raise ValueError(f"no paired comparison of {instruction} for {config}")
        inst = inst.iloc[0]
        falls = int((know["change"] == "falls").sum())
        shown = falls == len(know) and len(know) > 0 and inst["change"] in ("holds", "rises")
        reverse = inst["change"] == "falls" and falls < len(know)
        rows.append(
            {
                "config": config,
                **{k: first[k] for k in _KEYS if k in part},
                "pruning_pct": first["pruning_pct"],
                "knowledge_tasks": len(know),
                "knowledge_fall": falls,
                "instruction_task": instruction,
                "instruction_base": inst["base"],
                "instruction_change": inst["estimate"],
                "instruction_ci_low": inst["ci_low"],
                "instruction_ci_high": inst["ci_high"],
                "instruction_p_adj": inst["p_adj"],
                "instruction": inst["change"],
                "verdict": PATTERNS[0] if shown else PATTERNS[1] if reverse else PATTERNS[2],
                "family": first.get("family", ""),
            }
        )
    return pd.DataFrame(rows)


def pattern_events(verdicts: pd.DataFrame) -> pd.DataFrame:
    """Where the pattern changes along the widths of each criterion, template and seed.

    The unpruned model shows no pattern; walking from it to the narrowest width, a change of
    verdict is an event: "appears" (to the study's pattern), "reverses" (to the reverse),
    "disappears" (from either to neither).

    Returns:
        One row per event: chat_template, criterion, seed, pruning_pct (the first width with
        the new verdict), event, before, after. Empty when the verdict never changes.
    """
    keys = [k for k in _KEYS if k in verdicts]
    rows = []
    for key, part in verdicts.groupby(keys, sort=True):
        before = PATTERNS[2]
        for _, row in part.sort_values("pruning_pct").iterrows():
            after = row["verdict"]
            if after != before:
                event = {PATTERNS[0]: "appears", PATTERNS[1]: "reverses"}.get(after, "disappears")
                rows.append(
                    {
                        **dict(zip(keys, key, strict=True)),
                        "pruning_pct": row["pruning_pct"],
                        "event": event,
                        "before": before,
                        "after": after,
                    }
                )
            before = after
    columns = [*keys, "pruning_pct", "event", "before", "after"]
    return pd.DataFrame(rows, columns=columns)
