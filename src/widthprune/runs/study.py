"""The configurations of a study run: criteria at every width, both templates, a random floor.

A study run holds, for one model and one task suite:

- each criterion of ``criteria`` at every percentage of ``pcts``, once with the prompts as
  they are and once in the model's chat template (the ``chat_template`` field);
- the ``random`` criterion at ``random_pcts`` with each seed of ``seeds``, in the templates of
  ``random_templates``: the floor a criterion must beat;
- one unpruned baseline per template, at seed 0;
- with ``recovery`` given: at each point of ``recovery_points`` and under each template, the
  pruned model as it is and recovered by that setting (see
  :class:`~widthprune.pruning.recovery.RecoverySpec`), right after the baselines.

Widths follow the floor rule of :func:`widthprune.target_width`. The run varies
``chat_template`` and ``seed`` on purpose, so it is read with :data:`STUDY_VARY`.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from .config import EvalConfig

__all__ = ["RECOVERY_POINTS", "STUDY_PCTS", "STUDY_VARY", "evaluate_study", "study_configs"]

STUDY_PCTS = (10.0, 20.0, 30.0, 40.0, 50.0, 60.0)  # the published study's widths
STUDY_VARY = ("chat_template", "seed")  # fields a study run varies on purpose
# the (criterion, percentage) points a study recovers when asked to
RECOVERY_POINTS = (("ppm", 40.0), ("ppm", 60.0), ("wanda", 40.0))


def study_configs(
    model: str,
    *,
    tasks: str | Sequence[str],
    limit: int | float | None,
    criteria: Sequence[str] = ("ppm", "wanda"),
    pcts: Sequence[float] = STUDY_PCTS,
    templates: Sequence[bool] = (False, True),
    random_pcts: Sequence[float] = (20.0, 40.0, 60.0),
    seeds: Sequence[int] = (0, 1, 2),
    random_templates: Sequence[bool] = (True,),
    recovery: str | None = None,
    recovery_points: Sequence[tuple[str, float]] = RECOVERY_POINTS,
    **common,
) -> list[EvalConfig]:
    """Every configuration of a study run, baselines first, each once.

    Args:
        model: the model every configuration loads.
        tasks, limit: the task suite and its items per task.
        criteria: the criteria swept at every width of ``pcts`` under each template.
        templates: the chat-template settings of the baselines and of ``criteria``.
        random_pcts, seeds, random_templates: the random floor's widths, seeds and templates.
        recovery: a recovery setting (``"kd:steps=200,text=lambada"``, ...); None: none.
        recovery_points: the (criterion, percentage) points recovered, at seed 0.
        common: other :class:`~widthprune.runs.config.EvalConfig` fields (device, batch_size,
            dtype).

    Returns:
        The configurations, each once, in the order they are best run: the baselines, the
        recovery points (each pruned, then recovered under each template in turn, so that
        one distillation serves both), the first criterion at every width and template, the
        random floor's first seed, the other criteria, the floor's other seeds (a run cut
        short holds the most useful part).
    """
    shared = dict(model=model, tasks=tasks, limit=limit, **common)
    out = [EvalConfig(chat_template=t, seed=0, **shared) for t in templates]

    def curve(criterion: str) -> list[EvalConfig]:
        return [
            EvalConfig(criterion=criterion, pruning_pct=p, chat_template=template, **shared)
            for template in templates
            for p in pcts
        ]

    def floor(seed: int) -> list[EvalConfig]:
        return [
            EvalConfig(criterion="random", pruning_pct=p, chat_template=t, seed=seed, **shared)
            for t in random_templates
            for p in random_pcts
        ]

    # a run cut short is most useful holding the first criterion's curves and one seed of the
    # floor, so those come first, then the other criteria, then the floor's other seeds
    for criterion, pct in recovery_points if recovery else ():
        point = dict(criterion=criterion, pruning_pct=pct, seed=0, **shared)
        out += [EvalConfig(chat_template=t, **point) for t in templates]
        out += [EvalConfig(chat_template=t, recovery=recovery, **point) for t in templates]
    criteria, seeds = list(criteria), list(seeds)
    out += curve(criteria[0]) if criteria else []
    out += floor(seeds[0]) if seeds else []
    for criterion in criteria[1:]:
        out += curve(criterion)
    for seed in seeds[1:]:
        out += floor(seed)
    unique = {c.config_id: c for c in out}
    return list(unique.values())


def evaluate_study(
    configs: Sequence[EvalConfig],
    run: str,
    root: str | os.PathLike = "results",
    *,
    deadline: float | None = None,
) -> list[EvalConfig]:
    """Evaluate and store each configuration not stored yet (a rerun resumes), in this process,
    the unpruned model loaded once.

    Args:
        configs: the configurations, in the order to run them.
        run, root: the results store's run and folder.
        deadline: seconds after which no further configuration is started (the one running
            finishes and is stored); None: no limit.

    Returns:
        The configurations not stored when it returns (empty when every one is stored).
    """
    import time

    from tqdm.auto import tqdm

    from .experiment import evaluate_config, forget_models
    from .store import is_complete, result_folder

    start = time.monotonic()
    left = list(configs)
    try:
        for config in tqdm(list(configs), desc=f"study {run}", unit="config"):
            if deadline is not None and time.monotonic() - start > deadline:
                break
            if not is_complete(result_folder(config, run, root)):
                evaluate_config(config, run, root, keep_model=True)
            left.remove(config)
    finally:
        forget_models()
    return [c for c in left if not is_complete(result_folder(c, run, root))]
