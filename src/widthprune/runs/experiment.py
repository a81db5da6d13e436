"""Experiment: run one configuration (load, prune, evaluate), or read it back from the store.

:func:`evaluate_config` is the one entry point: a configuration already stored complete is read
back; otherwise it is run under the store's lock and written atomically.
"""

from __future__ import annotations

import copy
import dataclasses
import os
import platform
import time

from ..evaluation.harness import EvalResult, evaluate
from ..models.loading import load
from ..pruning.calibration import calibration_batches, calibration_texts
from ..pruning.surgery import prune
from . import store
from .config import ID_PACKAGES, EvalConfig, git_commit, package_version

__all__ = ["evaluate_config", "forget_models", "prune_as_configured", "run_config", "score_key"]

# The unpruned model a process keeps between configurations when asked to (a sweep's points
# in one process): {(model, dtype, device): (model, tokenizer, its scores by score_key)}, one
# entry at most.
_KEPT: dict[tuple[str, str, str], tuple] = {}
# The last recovered model a process made when keeping models: {key: (model, prune report,
# recovery report)}, one entry at most, so that configurations that differ only in how they
# are evaluated (the chat template) distil once. The key is everything the weights depend on.
_RECOVERED: dict[tuple, tuple] = {}


def _load(config: EvalConfig, keep: bool):
    """The configuration's unpruned model, its tokenizer and a cache of its scores (None when
    not kept): loaded, or a copy of the one this process kept."""
    if not keep:
        return (*load(config.model, dtype=config.torch_dtype, device=config.device), None)
    key = (config.model, config.dtype, config.device)
    if key not in _KEPT:
        _KEPT.clear()  # one model at a time: a sweep of several models frees the last one
        model, tokenizer = load(config.model, dtype=config.torch_dtype, device=config.device)
        _KEPT[key] = (model, tokenizer, {})
    model, tokenizer, scores = _KEPT[key]
    return copy.deepcopy(model), tokenizer, scores


def forget_models() -> None:
    """Drop the unpruned model kept by ``evaluate_config(..., keep_model=True)``, and the
    last recovered model."""
    _KEPT.clear()
    _RECOVERED.clear()


def prune_as_configured(model, tokenizer, config: EvalConfig, *, scores: dict | None = None):
    """Prune ``model`` in place as ``config`` says (calibrating first if it names a text).

    Args:
        scores: a cache of the unpruned model's scores, ``{score key: scores}`` (see
            :func:`score_key`), read and filled: the configurations of one model that differ
            only in width then score once.

    Returns:
        The :class:`~widthprune.PruneReport`.
    """
    key = score_key(config)
    known = None if scores is None else scores.get(key)
    batches = None
    if config.calibration is not None and known is None:
        batches = calibration_batches(
            tokenizer,
            calibration_texts(config.calibration),
            n_samples=config.calibration_samples,
            seq_len=config.seq_len,
            seed=config.seed,
        )
    if known is None and scores is not None:
        from ..pruning.scoring import score

        known = scores[key] = score(model, config.criterion, calibration=batches, seed=config.seed)
    return prune(
        model,
        criterion=config.criterion,
        width=config.resolved_width(),  # the width the configuration's id names
        calibration=batches,
        seed=config.seed,
        progress=True,
        scores=known,
    )


def score_key(config: EvalConfig) -> tuple:
    """What a criterion's scores of one unpruned model depend on: the criterion, its
    calibration text and windows, and the seed (ties, windows, the random criterion)."""
    calibration = (config.calibration, config.calibration_samples, config.seq_len)
    return (config.criterion, calibration if config.calibration else None, config.seed)


def _teacher(config: EvalConfig, keep_model: bool):
    """The unpruned model a configuration recovers from: the one this process keeps (recovery
    never changes its teacher), or a fresh load."""
    kept = _KEPT.get((config.model, config.dtype, config.device)) if keep_model else None
    if kept is not None:
        return kept[0]
    model, _ = load(config.model, dtype=config.torch_dtype, device=config.device)
    return model


def _recovered_key(config: EvalConfig) -> tuple:
    """What a recovered model's weights depend on: the model, its dtype and device, the
    criterion's scores, the width and the recovery (not the tasks, shots or template)."""
    return (
        config.model,
        config.dtype,
        config.device,
        score_key(config),
        config.resolved_width(),
        config.recovery,
    )


def run_config(config: EvalConfig, *, keep_model: bool = False) -> tuple[EvalResult, dict]:
    """Load, prune and evaluate; returns the result and its provenance.

    Args:
        keep_model: keep the unpruned model in this process and prune a copy of it, so that
            the next configuration of the same model, dtype and device skips the load, and a
            criterion already scored on it (at another width) is not scored again.
    """
    import torch

    t0 = time.perf_counter()
    model, tok, scores = _load(config, keep_model)
    original_width = model.config.intermediate_size
    t1 = time.perf_counter()
    report = recovery = None
    recovered_key = _recovered_key(config) if keep_model and config.recovery else None
    if recovered_key is not None and recovered_key in _RECOVERED:
        kept, report, recovery = _RECOVERED[recovered_key]
        model = copy.deepcopy(kept)  # distilled for a configuration evaluated otherwise
        recovery = {**recovery, "reused": True}
    else:
        if config.criterion is not None:
            report = prune_as_configured(model, tok, config, scores=scores).to_dict()
        if config.recovery is not None:
            from ..pruning.recovery import RecoverySpec

            teacher = _teacher(config, keep_model)
            model, report_r = RecoverySpec.parse(config.recovery).run(model, teacher, tok)
            recovery = report_r.to_dict()
            del teacher
            if recovered_key is not None:
                _RECOVERED.clear()
                _RECOVERED[recovered_key] = (copy.deepcopy(model), report, recovery)
    t2 = time.perf_counter()
    shots = config.num_fewshot
    result = evaluate(
        model,
        tok,
        config.tasks,
        num_fewshot=dict(shots) if isinstance(shots, tuple) else shots,
        limit=config.limit,
        batch_size=config.batch_size,
        seed=config.seed,
        include_path=config.include_path,
        apply_chat_template=config.chat_template,
        engine=config.engine,
    )
    t3 = time.perf_counter()
    device = next(model.parameters()).device
    provenance = {
        "versions": {p: package_version(p) for p in (*ID_PACKAGES, "numpy", "pandas", "nltk")},
        "python": platform.python_version(),
        "git_commit": git_commit(),
        "device": torch.cuda.get_device_name(device)
        if device.type == "cuda"
        else f"{platform.machine()} CPU, {os.cpu_count()} cores",
        "dtype": str(next(model.parameters()).dtype).removeprefix("torch."),
        "seconds": {"load": t1 - t0, "prune": t2 - t1, "evaluate": t3 - t2, "total": t3 - t0},
        "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "width": model.config.intermediate_size,
        "original_width": original_width,
        "hidden_size": model.config.hidden_size,
        "prune_report": report,
        "recovery": recovery,
        "lm_eval": result.details,
    }
    return result, provenance


def evaluate_config(
    config: EvalConfig,
    run: str = "default",
    root: str | os.PathLike = "results",
    *,
    keep_model: bool = False,
) -> EvalResult:
    """Evaluate one configuration and store it, or return the stored result if complete.

    Args:
        config: what to load, prune and evaluate.
        run: a name grouping configurations (one sweep, one chapter).
        root: the results folder.
        keep_model: see :func:`run_config` (a sweep's points in one process).

    Returns:
        The :class:`EvalResult`, fresh or read back from ``<root>/<run>/<config id>/``.
    """
    identity = {"id": config.config_id, "label": config.label, **config.identity()}
    identity["request"] = dataclasses.asdict(config)
    folder = store.result_folder(config, run, root)
    if store.is_complete(folder):
        return store.read(folder)
    with store.lock(store.lock_path(folder)):
        if store.is_complete(folder):  # another process finished it while we waited
            return store.read(folder)
        store.clear_stale(folder)
        result, provenance = run_config(config, keep_model=keep_model)
        if provenance["width"] != identity["config"]["width"]:
            raise RuntimeError(
                f"{config.label}: evaluated width {provenance['width']} differs from the width "
                f"{identity['config']['width']} its id names"
            )
        store.write(folder, identity, result, provenance)
    return store.read(folder)
