"""Evaluation: upstream lm-eval on an in-memory model, tidy results, the task catalogue."""

from .compliance import instruction_compliance
from .harness import PRESETS, TASKS_DIR, EvalResult, evaluate, perplexity, resolve_tasks
from .metrics import CHANCE, aggregate_samples

__all__ = [
    "CHANCE",
    "PRESETS",
    "TASKS_DIR",
    "EvalResult",
    "aggregate_samples",
    "evaluate",
    "instruction_compliance",
    "perplexity",
    "resolve_tasks",
]
