"""Arguments that several sub-commands share, and the errors that are a user's mistake."""

from __future__ import annotations

import json
import math
from pathlib import Path

# The errors by which the library reports a user's mistake.
USER_ERRORS = (
    ValueError,
    FileNotFoundError,
    FileExistsError,
    KeyError,
    NotADirectoryError,
    IsADirectoryError,
)


def _batch_size(text: str) -> int | str:
    return int(text) if text.strip().lstrip("-").isdigit() else text


def _add_pruning_arguments(p, *, required: bool, width: bool = False) -> None:
    """Target width, rounding, calibration, seed and device: shared by prune and evaluate."""
    target = p.add_mutually_exclusive_group(required=required)
    target.add_argument("--ratio", type=float, help="target expansion ratio (width / hidden)")
    target.add_argument("--pct", type=float, help="percentage of neurons removed per layer")
    if width:
        target.add_argument("--width", type=int, help="explicit MLP width")
    p.add_argument("--round-to", type=int, default=None, help="align the width to a multiple")
    p.add_argument("--rounding", choices=["floor", "nearest"], default="floor")
    p.add_argument(
        "--calibration",
        help='"toy", "lambada" (real text) or a text file, for activation-aware criteria',
    )
    p.add_argument("--calibration-samples", type=int, default=64)
    p.add_argument("--seq-len", type=int, default=256)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cpu")


def _add_task_arguments(p) -> None:
    """What is evaluated and how: tasks, shots, items, chat template (sweep and evaluate)."""
    p.add_argument(
        "--tasks",
        default="toy",
        help="a preset (toy, paper, paper-local, real) or comma-separated task names",
    )
    p.add_argument("--num-fewshot", type=int, default=None, help="shots for every task")
    p.add_argument("--limit", type=float, default=None, help="items per task (or fraction < 1)")
    p.add_argument("--chat-template", action="store_true", help="prompts in the chat template")
    p.add_argument(
        "--engine",
        choices=["fast", "lm-eval"],
        default="fast",
        help="fast: greedy answers on a static cache (a CUDA graph on a GPU), GPU batches sized "
        "to memory (default); lm-eval: lm-eval's own Hugging Face model class as it is",
    )


def _limit(value: float | None) -> int | float | None:
    whole = value is not None and math.isfinite(value) and value >= 1 and value == int(value)
    return int(value) if whole else value


def _check_calibration(config) -> None:
    """A calibration text file that is not there fails before the model loads."""
    from ..runs.config import NAMED_CALIBRATIONS

    text = config.calibration
    if text is not None and text not in NAMED_CALIBRATIONS and not Path(text).is_file():
        raise FileNotFoundError(
            f"No calibration text file at {text} (give a path, 'toy' or 'lambada')"
        )


def _parse_parameter(text: str) -> tuple[str, str, object]:
    """``chapter:name=value`` with a JSON (or plain string) value."""
    try:
        target, value = text.split("=", 1)
        chapter, name = target.split(":", 1)
    except ValueError:
        raise SystemExit(f"error: parameter {text!r} is not CHAPTER:NAME=VALUE") from None
    try:
        return chapter, name, json.loads(value)
    except json.JSONDecodeError:
        return chapter, name, value
