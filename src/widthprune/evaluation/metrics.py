"""Metrics: lm-eval's results as tidy frames, per-item values, chance levels, IFEval's data check.

lm-eval stores per item what its aggregation needs, not always a number: IFEval's instruction
level keeps a list of booleans, perplexities keep ``(log-likelihood, words)``. Each item becomes
one ``value`` with a ``weight`` chosen so that the task's score is a weighted mean of the items
(arithmetic, or geometric for perplexities); :func:`aggregate_samples` recomputes it.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from .catalogue import CHANCE

__all__ = [
    "CHANCE",
    "SENTENCE_SPLITTER_INSTRUCTIONS",
    "SUMMARY_COLUMNS",
    "SAMPLE_COLUMNS",
    "aggregate_samples",
    "check_sentence_splitter",
    "punkt_available",
    "tidy_samples",
    "tidy_summary",
]

SUMMARY_COLUMNS = ["task", "metric", "filter", "value", "stderr", "n", "chance"]
SAMPLE_COLUMNS = ["task", "doc_id", "filter", "metric", "value", "weight"]

# Nominal chance of a task's accuracy metrics comes from the catalogue. Tasks not listed there
# get theirs from the items: multiple choice 1/(number of choices) averaged over the evaluated
# items (truthfulqa_mc1: 4 to 13 choices, leaderboard_musr: 2 to 5), generation 0.
# Per-document chance where the metric is not "pick one choice": truthfulqa_mc2 scores the
# probability mass on the true answers, n_true / n under a uniform model.
_DOC_CHANCE = {"truthfulqa_mc2": lambda doc: float(np.mean(doc["mc2_targets"]["labels"]))}
_PERPLEXITIES = {"perplexity", "word_perplexity", "byte_perplexity"}
_NO_CHANCE = _PERPLEXITIES | {"bits_per_byte"}

# IFEval instructions whose checker calls nltk's punkt_tab sentence splitter (count_sentences,
# word_tokenize); every other instruction is checked with regular expressions.
SENTENCE_SPLITTER_INSTRUCTIONS = frozenset(
    {"length_constraints:number_sentences", "change_case:capital_word_frequency"}
)


def _item_value(metric: str, raw) -> tuple[float, float]:
    """``(value, weight)`` of one item's raw lm-eval metric entry."""
    if metric in ("word_perplexity", "byte_perplexity"):
        loglik, units = raw
        return math.exp(-loglik / units), float(units)
    if metric == "bits_per_byte":
        loglik, units = raw
        return -loglik / units / math.log(2), float(units)
    if metric == "perplexity":  # per item: the log-likelihood of the target
        return math.exp(-raw), 1.0
    if isinstance(raw, list):  # instruction level: one boolean per instruction
        return (float(np.mean(raw)) if raw else math.nan), float(len(raw))
    if isinstance(raw, bool | int | float):
        return float(raw), 1.0
    return math.nan, 0.0  # corpus-level metrics (f1, bleu): only the summary holds a score


def tidy_samples(records: list[dict]) -> pd.DataFrame:
    """One row per item, filter and metric: task, doc_id, filter, metric, value, weight.

    Args:
        records: lm-eval's logged samples, each with a ``"task"`` key added.
    """
    rows = [
        (r["task"], int(r["doc_id"]), r.get("filter", "none"), m, *_item_value(m, r[m]))
        for r in records
        for m in r.get("metrics", [])
        if m in r
    ]
    frame = pd.DataFrame(rows, columns=SAMPLE_COLUMNS)
    return frame.sort_values(SAMPLE_COLUMNS[:4], kind="stable", ignore_index=True)


def aggregate_samples(samples: pd.DataFrame) -> pd.DataFrame:
    """Task scores from items: weighted mean, geometric for perplexities (lm-eval's rules).

    Returns:
        Columns task, filter, metric, value.
    """
    out = []
    for (task, filt, metric), g in samples.groupby(["task", "filter", "metric"], sort=True):
        w, v = g["weight"].to_numpy(float), g["value"].to_numpy(float)
        if metric in _PERPLEXITIES:
            value = float(np.exp(np.sum(w * np.log(v)) / w.sum()))
        else:
            value = float(np.sum(w * v) / w.sum())
        out.append((task, filt, metric, value))
    return pd.DataFrame(out, columns=["task", "filter", "metric", "value"])


def _leaves(group: str, subtasks: dict[str, list[str]]) -> list[str]:
    kids = subtasks.get(group)
    if kids is None:
        return [group]
    return [leaf for kid in kids for leaf in _leaves(kid, subtasks)]


def _leaf_chance(task: str, metric: str, config: dict, records: list[dict]) -> float:
    if metric in _NO_CHANCE:
        return math.nan
    if task in CHANCE:
        return CHANCE[task]
    mine = [r for r in records if r["task"] == task]
    if task in _DOC_CHANCE and mine:
        return float(np.mean([_DOC_CHANCE[task](r["doc"]) for r in mine]))
    kind = config.get("output_type")
    if kind == "generate_until":
        return 0.0
    if kind == "multiple_choice" and mine:
        return float(np.mean([1.0 / len(r["filtered_resps"]) for r in mine]))
    return math.nan


def tidy_summary(details: dict, records: list[dict]) -> pd.DataFrame:
    """Every metric and filter of every task and group lm-eval reported, with n and chance.

    Args:
        details: lm-eval's output (``results``, ``configs``, ``n-samples``, ``group_subtasks``).
        records: its logged samples, each with a ``"task"`` key added.
    """
    subtasks = details.get("group_subtasks", {})
    counts = {t: v["effective"] for t, v in details.get("n-samples", {}).items()}
    configs = details.get("configs", {})
    rows = []
    for task, entry in details["results"].items():
        leaves = _leaves(task, subtasks)
        for key, value in entry.items():
            if "," not in key or "_stderr," in key or not isinstance(value, int | float):
                continue
            metric, filt = key.split(",", 1)
            stderr = entry.get(f"{metric}_stderr,{filt}")
            stderr = float(stderr) if isinstance(stderr, int | float) else math.nan
            n = entry.get("sample_count", {}).get(key, sum(counts.get(t, 0) for t in leaves))
            if task in CHANCE and metric not in _NO_CHANCE:
                chance = CHANCE[task]
            else:
                parts = [
                    (_leaf_chance(t, metric, configs.get(t, {}), records), counts.get(t, 0))
                    for t in leaves
                    if key in details["results"].get(t, {})
                ]
                weights = sum(c for _, c in parts)
                chance = sum(p * c for p, c in parts) / weights if weights else math.nan
            rows.append((task, metric, filt, float(value), stderr, int(n), float(chance)))
    frame = pd.DataFrame(rows, columns=SUMMARY_COLUMNS)
    return frame.sort_values(["task", "metric", "filter"], ignore_index=True)


def punkt_available() -> bool:
    """Whether nltk finds its ``punkt_tab`` sentence-splitter data (English)."""
    import nltk

    try:
        nltk.data.find("tokenizers/punkt_tab/english/")
    except LookupError:
        return False
    return True


def _uses_ifeval_scorer(task) -> bool:
    import inspect

    import lm_eval

    fn = getattr(task.config, "process_results", None)
    try:
        source = inspect.getsourcefile(fn) if callable(fn) else None
    except TypeError:
        return False
    ifeval_dir = Path(lm_eval.__file__).parent / "tasks" / "ifeval"
    return source is not None and Path(source).resolve().parent == ifeval_dir.resolve()


def check_sentence_splitter(tasks: dict, limit: int | float | None = None) -> None:
    """Refuse to start when IFEval scoring would need nltk data that is not installed.

    Without ``punkt_tab`` two of IFEval's instruction checkers raise deep inside scoring, after
    every answer was generated; others would not notice. Checking the items first means a wrong
    or lost run never happens.

    Args:
        tasks: ``{name: lm-eval Task}`` as loaded.
        limit: the evaluation's limit (only the items that will be scored are checked).

    Raises:
        FileNotFoundError: an item to be scored needs the sentence splitter and it is absent.
    """
    for name, task in tasks.items():
        if not _uses_ifeval_scorer(task):
            continue
        docs = list(task.eval_docs)
        if limit is not None:
            docs = docs[: int(limit) if limit >= 1 else math.ceil(limit * len(docs))]
        needs = SENTENCE_SPLITTER_INSTRUCTIONS
        needing = [d for d in docs if needs & set(d["instruction_id_list"])]
        if needing and not punkt_available():
            import nltk

            raise FileNotFoundError(
                f"Task {name!r}: {len(needing)} of {len(docs)} items carry instructions that "
                f"IFEval checks with nltk's 'punkt_tab' sentence splitter "
                f"({sorted(SENTENCE_SPLITTER_INSTRUCTIONS)}), and punkt_tab is not installed "
                f"(searched {nltk.data.path}). Install it once where there is network: "
                "`python -m nltk.downloader -d ~/nltk_data punkt_tab`, or unzip nltk_data's "
                "punkt_tab.zip into tokenizers/ of a folder named by the NLTK_DATA variable. "
                "Nothing was run, since these items could not be scored."
            )
