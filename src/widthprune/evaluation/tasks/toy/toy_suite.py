"""Data loading and scoring of the toy task suite, called by lm-eval through the YAML files.

The items live in ``data/<task>.jsonl`` beside this file and are found from this file's own
location, so the suite works wherever the package is installed and from any working folder.
"""

from __future__ import annotations

import json
from pathlib import Path

import datasets

from widthprune.toy.instructions import check, check_loose

DATA = Path(__file__).parent / "data"


def _load(name: str) -> datasets.DatasetDict:
    path = DATA / f"{name}.jsonl"
    if not path.is_file():
        raise FileNotFoundError(
            f"toy task data missing at {path}; write it with `widthprune toy tasks`"
        )
    with path.open(encoding="utf-8") as f:
        rows = [json.loads(line) for line in f if line.strip()]
    return datasets.DatasetDict({"test": datasets.Dataset.from_list(rows)})


def knowledge(**kwargs) -> datasets.DatasetDict:
    """Four-way questions about the facts of the world, with each person's frequency bucket."""
    return _load("knowledge")


def instructions(**kwargs) -> datasets.DatasetDict:
    """Prompts of one to three checkable instructions on fresh random inputs."""
    return _load("instructions")


def arithmetic(**kwargs) -> datasets.DatasetDict:
    """Word problems of one to three steps."""
    return _load("arithmetic")


def perplexity(**kwargs) -> datasets.DatasetDict:
    """Held-out running text."""
    return _load("perplexity")


def score_instructions(doc: dict, results: list[str]) -> dict:
    """Prompt- and instruction-level accuracy of one response, strict and loose."""
    response = results[0]
    kinds, kwargs = doc["instruction_ids"], json.loads(doc["kwargs"])
    strict = [check(k, response, kw) for k, kw in zip(kinds, kwargs, strict=True)]
    loose = [check_loose(k, response, kw) for k, kw in zip(kinds, kwargs, strict=True)]
    return {
        "prompt_level_strict_acc": all(strict),
        "inst_level_strict_acc": strict,
        "prompt_level_loose_acc": all(loose),
        "inst_level_loose_acc": loose,
    }


def mean_over_instructions(items: list[list[bool]]) -> float:
    """Share of instructions followed, pooled over every prompt."""
    flat = [x for item in items for x in item]
    return sum(flat) / len(flat)


def score_perplexity(doc: dict, results: list[float]) -> dict:
    """Log-likelihood with its word and byte counts; a word is a token of the toy tokenizer."""
    (loglikelihood,) = results
    n_words, n_bytes = len(doc["text"].split()), len(doc["text"].encode("utf-8"))
    return {
        "word_perplexity": (loglikelihood, n_words),
        "byte_perplexity": (loglikelihood, n_bytes),
        "bits_per_byte": (loglikelihood, n_bytes),
    }
