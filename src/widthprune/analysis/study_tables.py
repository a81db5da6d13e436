"""The study's changes and verdicts as the book shows them, and in words no stronger than they.

Tables keep their key columns first and one interval per cell (``+0.012 [-0.020, +0.041]``),
so that no two numbers run together; p values carry the name of their correction family.
"""

from __future__ import annotations

import pandas as pd

from .study_curves import template_name
from .tables import readable

__all__ = ["changes_table", "describe_change", "describe_events", "interval", "verdict_table"]

_SHORT = {  # verdict names short enough for a table column
    "the study's pattern": "study's pattern",
    "the reverse of the study's pattern": "reverse",
    "neither pattern": "neither",
}


def interval(estimate: float, low: float, high: float, spec: str = "+.3f") -> str:
    """``+0.012 [-0.020, +0.041]``: an estimate and its interval in one cell."""
    return f"{estimate:{spec}} [{low:{spec}}, {high:{spec}}]"


def describe_change(row, *, spec: str = "+.3f") -> str:
    """A paired change in words, as strong as its test: direction, size, interval, the p after
    correction with its family, and the rule's reading.

    Args:
        row: a :func:`~widthprune.analysis.real_model.paired_changes` row.
    """
    what = "a rise" if row["estimate"] > 0 else "a fall" if row["estimate"] < 0 else "no change"
    test = "significant" if row["reject"] else "not significant"
    text = (
        f"{what} of {interval(row['estimate'], row['ci_low'], row['ci_high'], spec)}, {test} "
        f"after correction (p {row['p_adj']:.3g}, {row['family']})"
    )
    if row["change"] == "too few items":
        return text + f"; too few items to read ({row['informative']} informative)"
    if row["change"] in ("holds", "undetermined"):
        return text + f"; {row['change']} by the rule"
    return text


def _named(frame: pd.DataFrame) -> pd.DataFrame:
    if "chat_template" in frame and "template" not in frame:
        frame = frame.assign(template=frame["chat_template"].map(template_name))
    return frame


def changes_table(changes: pd.DataFrame):
    """Paired changes for the book: task, capability, configuration, the unpruned score, the
    change with its interval, p after Holm, informative items and the reading."""
    changes = _named(changes)
    keys = [c for c in ("template", "criterion", "seed") if c in changes]
    shown = changes.assign(
        change_ci=[
            interval(e, lo, hi)
            for e, lo, hi in zip(changes.estimate, changes.ci_low, changes.ci_high, strict=True)
        ]
    )
    columns = ["label", "kind", *keys, "pruning_pct", "base", "change_ci", "p_adj"]
    columns += ["informative", "change"]
    names = {
        "label": "task",
        "template": "prompts",
        "base": "unpruned",
        "change_ci": "change [95 % interval]",
        "change": "reading",
    }
    return readable(shown[columns], names=names, formats={"pruned (%)": "{:.0f}"})


def verdict_table(verdicts: pd.DataFrame):
    """One row per configuration: knowledge tasks that fall, the instruction task's change and
    reading, and the verdict (short names: study's pattern, reverse, neither)."""
    verdicts = _named(verdicts)
    shown = verdicts.assign(
        knowledge=[f"{f} of {n}" for f, n in zip(verdicts.knowledge_fall,
                                                  verdicts.knowledge_tasks, strict=True)],
        inst=[
            interval(e, lo, hi)
            for e, lo, hi in zip(verdicts.instruction_change, verdicts.instruction_ci_low,
                                 verdicts.instruction_ci_high, strict=True)
        ],
        verdict=verdicts.verdict.map(_SHORT),
    )  # fmt: skip
    keys = [c for c in ("template", "criterion", "seed") if c in shown]
    columns = [*keys, "pruning_pct", "knowledge", "instruction_base", "inst", "instruction"]
    names = {
        "template": "prompts",
        "knowledge": "knowledge tasks falling",
        "instruction_base": "instructions unpruned",
        "inst": "instructions change [95 %]",
        "instruction": "reading",
    }
    return readable(shown[[*columns, "verdict"]], names=names, formats={"pruned (%)": "{:.0f}"})


def describe_events(events: pd.DataFrame, verdicts: pd.DataFrame) -> str:
    """Where the pattern appears, disappears or reverses, one sentence per criterion, template
    and seed whose verdict changes; the others are named as never showing either pattern."""
    events, verdicts = _named(events), _named(verdicts)
    keys = [c for c in ("criterion", "template", "seed") if c in verdicts]
    seeded = set()  # criteria run with several seeds: their seed is named
    if "seed" in verdicts:
        seeded = {c for c, part in verdicts.groupby("criterion") if part["seed"].nunique() > 1}

    def name(row) -> str:
        text = f"`{row['criterion']}` ({row['template']}"
        return text + (f", seed {row['seed']})" if row["criterion"] in seeded else ")")

    sentences, quiet = [], []
    for _, row in verdicts.drop_duplicates(keys).sort_values(keys).iterrows():
        mask = (events[keys] == row[keys]).all(axis=1) if len(events) else []
        mine = events[mask] if len(events) else events
        if len(mine) == 0:
            quiet.append(name(row))
            continue
        steps = ", then ".join(
            f"{e['event']} at {e['pruning_pct']:.0f} %" for _, e in mine.iterrows()
        )
        sentences.append(f"{name(row)}: the pattern {steps}.")
    if quiet:
        sentences.append("Neither pattern at any width: " + "; ".join(quiet) + ".")
    return " ".join(sentences)
