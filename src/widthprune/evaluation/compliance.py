"""Compliance per instruction type, from the per-item records of IFEval-style tasks.

lm-eval reports one instruction-level score per task; each of its items keeps the instruction
ids (``doc["instruction_id_list"]``) and one boolean per instruction (``inst_level_strict_acc``,
``inst_level_loose_acc``). This splits the pooled score by instruction type, so that a type a
model never follows (its floor) can be told apart from one it follows and may lose.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

__all__ = ["COMPLIANCE_COLUMNS", "instruction_compliance"]

COMPLIANCE_COLUMNS = [
    "task",
    "instruction",
    "n",
    "strict",
    "strict_stderr",
    "loose",
    "loose_stderr",
]


def _stderr(values: np.ndarray) -> float:
    """Standard error of a mean (lm-eval's: sample standard deviation over sqrt(n))."""
    if len(values) < 2:
        return math.nan
    return float(np.std(values, ddof=1) / math.sqrt(len(values)))


def instruction_compliance(records: list[dict]) -> pd.DataFrame:
    """Share of instructions followed, per task and instruction type, strict and loose.

    Args:
        records: lm-eval's logged samples with a ``"task"`` key (``EvalResult.records``); items
            without an ``instruction_id_list`` are skipped.

    Returns:
        One row per (task, instruction): ``n`` instructions given, the share followed under
        strict and loose checking, and their standard errors. Pooling a task's rows, weighted
        by ``n``, gives lm-eval's ``inst_level_strict_acc`` and ``inst_level_loose_acc``.
    """
    rows = []
    for record in records:
        ids = record.get("doc", {}).get("instruction_id_list")
        if not ids or "inst_level_strict_acc" not in record:
            continue
        strict, loose = record["inst_level_strict_acc"], record["inst_level_loose_acc"]
        for iid, s, lo in zip(ids, strict, loose, strict=True):
            rows.append((record["task"], iid, float(s), float(lo)))
    flat = pd.DataFrame(rows, columns=["task", "instruction", "strict", "loose"])
    out = []
    for (task, iid), g in flat.groupby(["task", "instruction"], sort=True):
        s, lo = g["strict"].to_numpy(), g["loose"].to_numpy()
        out.append((task, iid, len(g), s.mean(), _stderr(s), lo.mean(), _stderr(lo)))
    return pd.DataFrame(out, columns=COMPLIANCE_COLUMNS)
