"""Why a short-answer task scores zero: the model's answers, or the evaluation's reading of them.

A generation task is scored in three steps: the model generates until a stop sequence or the
token limit; a filter extracts the answer (for ``real_capitals`` and ``real_elements``, lm-eval's
``strip`` filter: ``remove_whitespace`` then ``take_first``); ``exact_match`` compares it with
the target. A score of zero can come from any step. :func:`response_table` keeps each item's
raw text, extracted answer and score side by side and names the cause of every miss:

- ``answer lost by the extraction``: the target is a word of the raw text (not part of a
  longer word: "Helium" does not hold "He") but the score is 0 (an
  evaluation artefact: the stop sequence, the filter or the comparison);
- ``empty answer``: the model stopped at once (its first token was the stop sequence ``\\n``);
- ``wrong answer``: the model answered something else.

Only the first cause blames the evaluation. :func:`record_responses` runs the check on a model
and writes the table with its provenance, so a chapter can show it without the model.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pandas as pd

__all__ = [
    "CAUSES",
    "COLLAPSE_DIR",
    "cause_counts",
    "classify_response",
    "record_responses",
    "recorded_responses",
    "response_table",
]

CAUSES = ("right", "answer lost by the extraction", "empty answer", "wrong answer")
COLLAPSE_DIR = Path(__file__).parent / "data" / "collapse"  # recorded response tables


def classify_response(raw: str, extracted: str, target: str, score: float) -> str:
    """The cause of one item's score, one of :data:`CAUSES` (see the module docstring)."""
    if score == 1:
        return "right"
    if target and re.search(rf"(?<!\w){re.escape(target)}(?!\w)", raw):
        return "answer lost by the extraction"
    if not raw.strip():
        return "empty answer"
    return "wrong answer"


def _first(value):
    while isinstance(value, list | tuple) and value:
        value = value[0]
    return "" if isinstance(value, list | tuple) else str(value)


def response_table(
    records: list[dict], *, config: str, metric: str = "exact_match"
) -> pd.DataFrame:
    """One row per generated item of lm-eval's records (``EvalResult.records``).

    Args:
        records: lm-eval's per-item records with ``task``, ``doc_id``, ``target``, ``resps``
            (raw generations), ``filtered_resps`` (after the task's filter) and ``metric``.
        config: a name for the configuration the records come from.

    Returns:
        config, task, doc_id, target, raw (the generated text, as is), extracted (what the
        filter kept), score and cause (:func:`classify_response`).
    """
    rows = []
    for rec in records:
        if metric not in rec or "resps" not in rec:
            continue  # not a generation item scored by this metric
        raw, extracted = _first(rec["resps"]), _first(rec["filtered_resps"])
        target, score = _first(rec["target"]), float(rec[metric])
        rows.append(
            {
                "config": config,
                "task": rec["task"],
                "doc_id": int(rec["doc_id"]),
                "target": target,
                "raw": raw,
                "extracted": extracted,
                "score": score,
                "cause": classify_response(raw, extracted, target, score),
            }
        )
    return pd.DataFrame(rows)


def cause_counts(table: pd.DataFrame) -> pd.DataFrame:
    """Items per (config, task, cause), every cause of :data:`CAUSES` listed (0 where none).

    Returns:
        config, task, cause, items, share (of the task's items in that configuration).
    """
    index = pd.MultiIndex.from_product(
        [list(dict.fromkeys(table["config"])), sorted(table["task"].unique()), list(CAUSES)],
        names=["config", "task", "cause"],
    )
    counts = table.groupby(["config", "task", "cause"]).size().reindex(index, fill_value=0)
    out = counts.rename("items").reset_index()
    totals = out.groupby(["config", "task"])["items"].transform("sum")
    out["share"] = out["items"] / totals
    return out


def record_responses(
    out: str | os.PathLike,
    *,
    model: str = "smollm2-135m-instruct",
    criterion: str = "ppm",
    pruning_pct: float = 40,
    tasks: tuple[str, ...] = ("real_capitals", "real_elements"),
    limit: int | None = None,
) -> Path:
    """Evaluate the unpruned and the pruned model on ``tasks`` and write their response table.

    Writes ``responses.csv`` (:func:`response_table` of both) and ``provenance.json`` (the
    call, versions, commit, device) into ``out``.
    """
    import copy
    import platform

    import torch

    import widthprune as wp

    from ..runs.config import cpu_name, git_commit, package_version

    base, tok = wp.load(model)
    pruned = copy.deepcopy(base)
    wp.prune(pruned, criterion=criterion, pruning_pct=pruning_pct)
    parts = []
    for name, net in (("unpruned", base), (f"{criterion} {pruning_pct:g} %", pruned)):
        result = wp.evaluate(net, tok, list(tasks), limit=limit)
        parts.append(response_table(result.records, config=name))
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    pd.concat(parts, ignore_index=True).to_csv(folder / "responses.csv", index=False)
    call = f"record_responses({str(out)!r}, model={model!r}, criterion={criterion!r}, "
    call += f"pruning_pct={pruning_pct!r}, tasks={tasks!r}, limit={limit!r})"
    provenance = {
        "call": f"from widthprune.analysis.collapse import record_responses; {call}",
        "commit": git_commit(),
        "versions": {p: package_version(p) for p in ("widthprune", "torch", "lm_eval")},
        "python": platform.python_version(),
        "device": cpu_name(),
        "dtype": str(next(base.parameters()).dtype).removeprefix("torch."),
        "threads": torch.get_num_threads(),
    }
    (folder / "provenance.json").write_text(json.dumps(provenance, indent=2) + "\n")
    return folder


def recorded_responses(name: str | os.PathLike = "smollm2-ppm40") -> tuple[pd.DataFrame, dict]:
    """A recorded response table and its provenance (a name under :data:`COLLAPSE_DIR`, or a
    folder that :func:`record_responses` wrote)."""
    folder = Path(name)
    if not (folder / "responses.csv").is_file():
        folder = COLLAPSE_DIR / str(name)
    table = pd.read_csv(folder / "responses.csv", keep_default_na=False, dtype={"target": str})
    table["raw"], table["extracted"] = table["raw"].astype(str), table["extracted"].astype(str)
    table["cause"] = [  # the rule of this module, not the one the table was written with
        classify_response(r, e, t, s)
        for r, e, t, s in zip(table.raw, table.extracted, table.target, table.score, strict=True)
    ]
    return table, json.loads((folder / "provenance.json").read_text())
