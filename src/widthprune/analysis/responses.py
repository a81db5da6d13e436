"""Per-item responses: what each item's score was computed from, compact and without prompts.

One row per configuration, task and item, by lm-eval's request kind (``output_type``):

- ``multiple_choice``: ``loglikelihoods``, the log-likelihood of each choice's continuation in
  the task's choice order (twice as many as the choices for a task that also asks for mutual
  information: the conditional ones, then the unconditional ones); ``greedy``, per choice,
  whether greedy decoding reproduces it; ``choice_chars`` and ``choice_bytes``, each choice's
  length in characters and in UTF-8 bytes (the choice as ``doc_to_choice`` gives it, without
  the target delimiter); ``gold``, the right choice's index as lm-eval resolves it (a list where
  several are right; -100 where the label is out of range).
  lm-eval's ``acc`` is ``argmax(loglikelihoods) == gold``, ``acc_norm`` the argmax of
  ``loglikelihoods / choice_chars``, ``acc_bytes`` that of ``loglikelihoods / choice_bytes``
  (the first index wins a tie, as ``numpy.argmax``).
- ``loglikelihood``: ``loglikelihood`` of the target and ``greedy`` (its ``acc``); the item's
  perplexity is ``exp(-loglikelihood)``.
- ``loglikelihood_rolling``: ``loglikelihood`` of the whole text, and ``words`` and ``bytes``,
  the counts its perplexities divide by, as the task's per-item results gave them (a task may
  count words its own way). Task level: ``word_perplexity = exp(-sum(loglikelihood) /
  sum(words))``, ``byte_perplexity`` alike with bytes, ``bits_per_byte = -sum(loglikelihood) /
  sum(bytes) / ln 2``.
- ``generate_until``: ``response``, the raw generated text; ``answers``, ``{filter: answer}``
  (the text each filter handed to the metric, e.g. the number a regular expression took out);
  ``target``, lm-eval's ``doc_to_target`` of the item.

Columns that do not apply to a kind are empty. Every column but ``task``, ``doc_id``,
``output_type``, ``loglikelihood``, ``words`` and ``bytes`` is JSON text in the file (so an
empty generation reads back as ``""``, not as missing); :func:`read_responses` decodes them.
Floats are written with every digit and read back exactly, so scores recomputed from the file
equal lm-eval's.
"""

from __future__ import annotations

import json
import os
from functools import lru_cache

import pandas as pd

__all__ = [
    "JSON_COLUMNS",
    "RESPONSE_COLUMNS",
    "read_responses",
    "tidy_responses",
    "write_responses",
]

RESPONSE_COLUMNS = [
    *("task", "doc_id", "output_type", "gold", "loglikelihoods", "greedy", "choice_chars"),
    *("choice_bytes", "loglikelihood", "words", "bytes", "response", "answers", "target"),
]
JSON_COLUMNS = ("gold", "loglikelihoods", "greedy", "choice_chars", "choice_bytes", "response")
JSON_COLUMNS += ("answers", "target")  # text too: an empty answer stays "" and not missing


@lru_cache(maxsize=4)
def _tasks(names: tuple[str, ...], include_path: tuple[str, ...]) -> dict:
    from ..evaluation.harness import _load_tasks, _manager_for

    return _load_tasks(_manager_for(list(names), include_path), list(names))["tasks"]


def _gold(task, doc: dict, choices: list[str]):
    """The right choice's index as lm-eval's multiple-choice scoring resolves it."""
    gold = task.doc_to_text(doc) if task.multiple_input else task.doc_to_target(doc)
    if isinstance(gold, list):
        return [i if i < len(choices) else -100 for i in gold]
    if isinstance(gold, str):
        return choices.index(gold) if gold in choices else -100
    return int(gold) if gold < len(choices) else -100


def _choice_fields(task, record: dict) -> dict:
    choices = [str(c) for c in task.doc_to_choice(record["doc"])]
    lls, greedy = zip(*record["filtered_resps"], strict=True)
    return {
        "gold": _gold(task, record["doc"], choices),
        "loglikelihoods": list(lls),
        "greedy": [bool(g) for g in greedy],
        "choice_chars": [len(c) for c in choices],
        "choice_bytes": [len(c.encode("utf-8")) for c in choices],
    }


def _rolling_fields(record: dict) -> dict:
    (loglikelihood,) = record["filtered_resps"]
    row = {"loglikelihood": float(loglikelihood)}
    for metric, column in (("word_perplexity", "words"), ("byte_perplexity", "bytes")):
        raw = record.get(metric) or (record.get("bits_per_byte") if column == "bytes" else None)
        if raw is not None:
            row[column] = int(raw[1])
    return row


def _item(kind: str, group: list[dict], task) -> dict:
    first = group[0]
    if kind == "multiple_choice":
        return _choice_fields(task, first)
    if kind == "loglikelihood":
        ((loglikelihood, greedy),) = first["filtered_resps"]
        return {"loglikelihood": float(loglikelihood), "greedy": bool(greedy)}
    if kind == "loglikelihood_rolling":
        return _rolling_fields(first)
    if kind == "generate_until":
        answers = {r.get("filter", "none"): r["filtered_resps"][0] for r in group}
        return {"response": first["resps"][0][0], "answers": answers, "target": first["target"]}
    raise ValueError(f"task {first['task']!r}: no response layout for output_type {kind!r}")


def tidy_responses(
    records: list[dict], configs: dict, include_path: tuple[str, ...] = ()
) -> pd.DataFrame:
    """One configuration's responses, one row per task and item (see the module's layout).

    Args:
        records: lm-eval's logged items as the store keeps them (``"task"`` added, one record
            per item and filter).
        configs: lm-eval's task configurations (``output_type`` of each task).
        include_path: the folders of task YAMLs the run searched; multiple-choice tasks are
            loaded from them for their choices and gold index.

    Returns:
        Columns :data:`RESPONSE_COLUMNS`, JSON columns still as Python objects.
    """
    groups: dict[tuple[str, int], list[dict]] = {}
    for record in records:
        groups.setdefault((record["task"], int(record["doc_id"])), []).append(record)
    kinds = {task: configs[task]["output_type"] for task, _ in groups}
    choice_tasks = tuple(sorted(t for t, k in kinds.items() if k == "multiple_choice"))
    loaded = _tasks(choice_tasks, tuple(include_path)) if choice_tasks else {}
    rows = [
        {"task": task, "doc_id": doc_id, "output_type": kinds[task]}
        | _item(kinds[task], group, loaded.get(task))
        for (task, doc_id), group in sorted(groups.items())
    ]
    frame = pd.DataFrame(rows, columns=RESPONSE_COLUMNS, dtype=object)  # gold stays an int
    return frame.astype({"doc_id": int, "loglikelihood": float, "words": "Int64", "bytes": "Int64"})


def write_responses(frame: pd.DataFrame, path: str | os.PathLike) -> None:
    """Write responses (JSON columns encoded) as gzipped CSV."""
    frame = frame.copy()
    for column in JSON_COLUMNS:
        frame[column] = [
            None if _empty(v) else json.dumps(v, ensure_ascii=False) for v in frame[column]
        ]
    frame.to_csv(path, index=False, compression="gzip")


def _empty(value) -> bool:
    return value is None or (isinstance(value, float) and value != value)


def read_responses(path: str | os.PathLike) -> pd.DataFrame:
    """Responses written by :func:`write_responses`, JSON columns decoded (None where empty)."""
    frame = pd.read_csv(
        path,
        keep_default_na=False,
        na_values=[""],
        dtype=dict.fromkeys(JSON_COLUMNS, object),
    )
    for column in JSON_COLUMNS:
        values = [None if _empty(v) else json.loads(v) for v in frame[column]]
        frame[column] = pd.Series(values, index=frame.index, dtype=object)
    for column in ("words", "bytes"):
        frame[column] = frame[column].astype("Int64")
    return frame
