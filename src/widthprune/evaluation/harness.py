"""Evaluation: upstream lm-eval on an in-memory model, per-item samples, quick perplexity.

``evaluate`` wraps ``lm_eval.simple_evaluate`` around ``HFLM(pretrained=<model object>)``, so a
model pruned in memory is scored without being saved. Every metric and filter lm-eval reports is
kept (tidy ``summary``), and so is every item (tidy ``samples`` for paired statistics, raw
``records`` with the model's outputs). How raw lm-eval items become tidy rows, and chance
levels, live in :mod:`widthprune.metrics`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import pandas as pd
import torch
from tqdm.auto import tqdm

from .catalogue import ENGINES, PRESETS, SPREAD_GROUPS
from .metrics import check_sentence_splitter, tidy_samples, tidy_summary

__all__ = [
    "PRESETS",
    "TASKS_DIR",
    "ENGINES",
    "EvalResult",
    "check_tasks_exist",
    "cpu_batch_size",
    "evaluate",
    "perplexity",
    "resolve_tasks",
]

# Task YAMLs of the bundled toy suite (group ``toy``).
TASKS_DIR = Path(__file__).parent / "tasks"

# lm-eval's "auto" probes batches at full context length, which takes minutes on a CPU; there
# "auto" is a fixed batch instead, smaller for few-shot prompts: their logits (batch x several
# hundred tokens x the vocabulary, in float32) took about 17 GB at batch 16 for SmolLM2's MMLU.
_CPU_BATCH = 32
_CPU_FEWSHOT_BATCH = 4
# ... for a vocabulary of this size (SmolLM2's); a larger vocabulary gets proportionally fewer
# rows (Gemma-3's 262,144 tokens: 6 and 1), so that batch x vocabulary stays the same
_CPU_BATCH_VOCAB = 49_152


def cpu_batch_size(vocab_size: int, *, few_shot: bool) -> int:
    """Rows of a CPU log-likelihood batch for a model of ``vocab_size`` tokens.

    The logits of a batch (rows x tokens x vocabulary, float32, and their log-softmax) dominate
    its memory; the fixed CPU batches (32 zero-shot, 4 few-shot) were sized on SmolLM2's
    vocabulary and shrink in proportion to a larger one, never below one row.
    """
    base = _CPU_FEWSHOT_BATCH if few_shot else _CPU_BATCH
    return max(1, min(base, base * _CPU_BATCH_VOCAB // int(vocab_size)))


def spread_limit(limit: int | float | None, subtasks: int) -> int | float | None:
    """The per-subtask limit of a spread group (``SPREAD_GROUPS``): ``limit`` items in all.

    An int limit is divided evenly over the subtasks, rounded up (MMLU's 57 subjects at 1000:
    18 each, 1026 items); a fraction or None applies to each subtask as it is.
    """
    if isinstance(limit, int) and not isinstance(limit, bool) and subtasks > 1:
        return max(1, math.ceil(limit / subtasks))
    return limit


def _lm_class(engine: str):
    if engine == "fast":
        from .fastlm import FastLM

        return FastLM
    from lm_eval.models.huggingface import HFLM

    return HFLM


@dataclass
class EvalResult:
    """What :func:`evaluate` returns."""

    summary: pd.DataFrame  # task, metric, filter, value, stderr, n, chance
    samples: pd.DataFrame  # task, doc_id, filter, metric, value, weight (one row per item)
    records: list[dict] = field(repr=False)  # lm-eval's items, "task" added, prompts dropped
    details: dict = field(repr=False)  # configs, versions, n-shot, n-samples, groups


def resolve_tasks(
    tasks: str | Sequence[str], num_fewshot: int | dict[str, int] | None = None
) -> dict[str, int | None]:
    """``{task: shots}`` from a preset name, one task name or a list of names.

    Args:
        tasks: a preset name (:data:`PRESETS`), a task/group name or a list of them.
        num_fewshot: one shot count for every task, a dict per task, or None for the preset's
            (``paper``) or each task's own default.
    """
    if isinstance(tasks, str):
        plan = dict(PRESETS[tasks]) if tasks in PRESETS else {tasks: None}
    else:
        plan = {str(t): None for t in tasks}
        if not plan:
            raise ValueError(f"No tasks given; name a preset {sorted(PRESETS)} or task names.")
    if isinstance(num_fewshot, int):
        plan = dict.fromkeys(plan, num_fewshot)
    elif isinstance(num_fewshot, dict):
        unknown = set(num_fewshot) - set(plan)
        if unknown:
            raise ValueError(f"num_fewshot names tasks not requested: {sorted(unknown)}")
        plan.update(num_fewshot)
    return plan


@lru_cache(maxsize=8)
def _task_manager(include_path: tuple[str, ...], include_defaults: bool):
    from lm_eval.tasks import TaskManager

    return TaskManager(include_path=list(include_path), include_defaults=include_defaults)


def _manager_for(names: Sequence[str], include_path: Sequence[str | Path]):
    """A TaskManager that knows ``names``; lm-eval's own ~14k tasks are indexed only if needed."""
    from .tasks.real.mirrors import task_folder

    folders = [TASKS_DIR, task_folder(), *include_path]  # task_folder: the local_* tasks
    paths = tuple(str(p) for p in folders if Path(p).is_dir())
    local = _task_manager(paths, False)
    if all(n in local.all_tasks for n in names):
        return local
    full = _task_manager(paths, True)
    check_task_names(names, full.all_tasks, paths)
    return full


def check_tasks_exist(names: Sequence[str], include_path: Sequence[str | Path] = ()) -> None:
    """Raise a ValueError (with close matches) unless lm-eval knows every name."""
    _manager_for(list(names), include_path)


def check_task_names(names: Sequence[str], known: Sequence[str], paths: Sequence[str] = ()):
    """Raise a ValueError naming each unknown task with its closest known names."""
    import difflib

    missing = [n for n in names if n not in set(known)]
    if missing:
        hints = {n: difflib.get_close_matches(n, known, n=3) for n in missing}
        raise ValueError(
            f"Unknown task(s) {missing}; closest names: {hints}. Presets: {sorted(PRESETS)}. "
            f"Task folders searched besides lm-eval's own: {list(paths)} (the bundled toy "
            f"suite belongs in {TASKS_DIR / 'toy'})."
        )


def _load_tasks(manager, names: list[str]) -> dict:
    """lm-eval's ``TaskManager.load``, with a missing offline dataset named in plain words."""
    try:
        return manager.load(names)
    except ConnectionError as err:
        found = re.search(r"'([^' ]+)'", str(err))  # "Couldn't reach 'org/name' on the Hub"
        dataset = found.group(1) if found else str(err)
        raise FileNotFoundError(
            f"Dataset {dataset!r} (needed by tasks {names}) is neither reachable nor in the "
            "local Hugging Face cache. Either copy a cache that holds it (download on a machine "
            f"with network: `datasets.load_dataset({dataset!r})`, then copy ~/.cache/huggingface "
            "or set HF_HOME), or point the task at local files: write a task YAML that "
            "`include:`s the official one and sets `dataset_path: json` and "
            "`dataset_kwargs: {data_files: {test: /path/items.jsonl}}`, and pass its folder "
            "as include_path."
        ) from err


_LOADED: dict[tuple, dict] = {}  # (manager, task names) -> lm-eval's loaded tasks
_LOADED_MAX = 16


def _cached_tasks(manager, names: list[str], shots: int | None) -> dict:
    """:func:`_load_tasks`, once per process: building a task reads and maps its whole split
    (seconds for HellaSwag), and a task object is rebuilt into requests by every evaluation
    (``build_all_requests``), so the configurations of a sweep can share it. Keyed by the shot
    count too, which lm-eval sets on the task object itself."""
    key = (id(manager), tuple(names), shots)
    if key not in _LOADED:
        if len(_LOADED) >= _LOADED_MAX:
            _LOADED.pop(next(iter(_LOADED)))
        _LOADED[key] = _load_tasks(manager, names)
    return _LOADED[key]


def _top_level(loaded: dict) -> list:
    """The loaded tasks and groups that no other loaded group contains (what was asked for)."""
    children = {c for kids in loaded.get("group_map", {}).values() for c in kids}
    items = {**loaded["groups"], **loaded["tasks"]}
    return [obj for name, obj in items.items() if name not in children]


def evaluate(
    model,
    tokenizer,
    tasks: str | Sequence[str] = "toy",
    *,
    num_fewshot: int | dict[str, int] | None = None,
    limit: int | float | None = None,
    batch_size: int | str = "auto",
    seed: int = 0,
    include_path: Sequence[str | Path] = (),
    bootstrap_iters: int = 1000,
    apply_chat_template: bool = False,
    engine: str = "fast",
) -> EvalResult:
    """Run lm-eval on an in-memory model.

    Args:
        model: a causal LM (e.g. after ``wp.prune``), on the device it should run on.
        tokenizer: its tokenizer.
        tasks: ``"toy"`` (the bundled suite), ``"paper"`` (the published study's 13 tasks and
            shot counts), ``"paper-local"`` (8 of them on installed items), ``"real"`` (real
            items a small model knows), a task or group name, or a list of them.
        num_fewshot: see :func:`resolve_tasks`. lm-eval never overrides a task whose YAML fixes
            0 shots (e.g. ifeval).
        limit: items per task (int) or fraction of each task (float < 1); None for all. For
            a group of ``SPREAD_GROUPS`` (MMLU) an int counts the group's items, spread over
            its subtasks (see :func:`spread_limit`).
        batch_size: int or "auto" (lm-eval's probe on accelerators; on a CPU 32, and 4 for
            few-shot prompts, fewer for a vocabulary larger than SmolLM2's: see
            :func:`cpu_batch_size`).
        seed: seeds Python, numpy, torch and lm-eval's few-shot sampler.
        include_path: extra folders of task YAMLs (the bundled ``tasks/`` is always searched).
        bootstrap_iters: resamples for the stderr of metrics that are not plain means.
        apply_chat_template: wrap each prompt in the tokenizer's chat template (few-shot
            examples as turns); the published study evaluated without it.
        engine: ``"fast"`` (:class:`~.fastlm.FastLM`: greedy answers on a static cache, GPU
            batches sized to memory) or ``"lm-eval"`` (lm-eval's ``HFLM`` as it is).

    Returns:
        An :class:`EvalResult`.

    Raises:
        ValueError: an unknown task name (the message lists close matches).
        FileNotFoundError: a dataset is offline and not cached, or IFEval-style scoring needs
            nltk's ``punkt_tab`` data that is absent (the message says how to install it).
    """
    from unittest import mock

    import lm_eval.evaluator
    from lm_eval import simple_evaluate

    if engine not in ENGINES:
        raise ValueError(f"engine must be one of {ENGINES}, got {engine!r}")
    plan = resolve_tasks(tasks, num_fewshot)
    device = next(model.parameters()).device
    cpu_auto = batch_size == "auto" and device.type == "cpu"
    vocab = model.config.vocab_size
    lm = _lm_class(engine)(
        pretrained=model,
        tokenizer=tokenizer,
        batch_size=cpu_batch_size(vocab, few_shot=False) if cpu_auto else batch_size,
        device=str(device),
    )
    manager = _manager_for(list(plan), include_path)
    parts: dict[tuple[int | None, str | None], list[str]] = {}  # (shots, spread group)
    for name, shots in plan.items():
        parts.setdefault((shots, name if name in SPREAD_GROUPS else None), []).append(name)
    loaded = {key: _cached_tasks(manager, names, key[0]) for key, names in parts.items()}
    limits = {
        key: spread_limit(limit, len(part["tasks"])) if key[1] else limit
        for key, part in loaded.items()
    }
    for key, part in loaded.items():  # before any generation, so a missing file costs seconds
        check_sentence_splitter(part["tasks"], limits[key])
    merged: dict = {"records": []}
    for key, part in tqdm(loaded.items(), desc="task groups", disable=len(loaded) == 1):
        shots = key[0]
        if cpu_auto:
            lm.batch_size_per_gpu = cpu_batch_size(vocab, few_shot=bool(shots))
        # lm-eval asks git for the commit of the working folder, and git says "fatal: not a git
        # repository" outside a checkout; the provenance records the package's own commit
        quiet = mock.patch.object(lm_eval.evaluator, "get_git_commit_hash", _quiet_git_hash)
        with quiet:
            out = simple_evaluate(
                model=lm,
                tasks=_top_level(part),
                num_fewshot=shots,
                limit=limits[key],
                log_samples=True,
                task_manager=manager,
                bootstrap_iters=bootstrap_iters,
                random_seed=seed,
                numpy_random_seed=seed,
                torch_random_seed=seed,
                fewshot_random_seed=seed,
                apply_chat_template=apply_chat_template,
                fewshot_as_multiturn=apply_chat_template and bool(shots),
            )
        for name in ("results", "configs", "versions", "n-shot", "n-samples", "group_subtasks"):
            merged.setdefault(name, {}).update(out.get(name, {}))
        for task, items in out["samples"].items():
            merged["records"].extend({"task": task, **_jsonable(s)} for s in items)
    records = merged.pop("records")
    summary = tidy_summary(merged, records)
    return EvalResult(summary, tidy_samples(records), records, _jsonable(merged))


def _quiet_git_hash() -> str | None:
    """lm-eval's ``get_git_commit_hash`` without git's complaint outside a checkout."""
    import subprocess

    try:
        out = subprocess.run(
            ["git", "describe", "--always"], capture_output=True, text=True, timeout=10
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def _jsonable(obj):
    """Plain JSON types: tuples to lists, numpy/torch scalars to Python; prompts dropped."""
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items() if k != "arguments"}
    if isinstance(obj, list | tuple):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, bool):
        return bool(obj)
    for kind in (int, float, str):  # numpy scalars subclass these: store plain values
        if isinstance(obj, kind):
            return kind(obj)
    if obj is None:
        return obj
    if hasattr(obj, "item"):
        return obj.item()
    if callable(obj):
        return getattr(obj, "__qualname__", repr(obj))
    return str(obj)


@torch.no_grad()
def perplexity(
    model,
    tokenizer,
    texts: str | Sequence[str],
    *,
    max_length: int = 512,
    stride: int | None = None,
    progress: bool = False,
) -> float:
    """Token-level perplexity with a sliding window, outside lm-eval.

    Each text is tokenized on its own (with the tokenizer's special tokens) and scored by windows
    of ``max_length`` tokens that advance by ``stride``; every token after the first is predicted
    exactly once, from the window whose new part holds it, so it sees between
    ``max_length - stride`` and ``max_length - 1`` tokens of context.

    Args:
        model: a causal LM.
        tokenizer: its tokenizer.
        texts: one text or a list.
        max_length: tokens per window.
        stride: advance per window (default ``max_length // 2``), 1 <= stride < max_length, so
            that the first new token of a window has context.
        progress: show a tqdm bar over windows.

    Returns:
        ``exp(total negative log-likelihood / predicted tokens)`` over all texts.
    """
    stride = max_length // 2 if stride is None else stride
    if not 1 <= stride < max_length:
        raise ValueError(f"Need 1 <= stride < max_length; got {max_length=}, {stride=}")
    texts = [texts] if isinstance(texts, str) else list(texts)
    device = next(model.parameters()).device
    windows = []  # (ids (1, n), number of tokens at its end to predict)
    for text in texts:
        ids = tokenizer(text, return_tensors="pt")["input_ids"]
        done = 1  # the first token has no context: never predicted
        for begin in range(0, ids.shape[1], stride):
            end = min(begin + max_length, ids.shape[1])
            if end > done:
                windows.append((ids[:, begin:end], end - done))
                done = end
            if end == ids.shape[1]:
                break
    if not windows:
        raise ValueError("The texts hold fewer than two tokens: nothing to predict.")
    nll, count = 0.0, 0
    for ids, new in tqdm(windows, desc="perplexity", disable=not progress):
        logits = model(ids.to(device)).logits[0, :-1].float()
        logp = torch.log_softmax(logits, dim=-1)
        targets = ids[0, 1:].to(device)
        token_nll = -logp.gather(1, targets[:, None])[:, 0]
        nll += token_nll[-new:].double().sum().item()
        count += new
    return math.exp(nll / count)
