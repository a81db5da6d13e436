"""The embedded default: a small Llama trained on a synthetic world, and its task suite.

The world (``world``, ``instructions``, ``arithmetic``) states invented facts at several
frequencies, poses checkable instructions on fresh inputs and short word problems;
``corpus`` turns it into training rows and task items, ``tokenizer`` builds the word-level
tokenizer and ``train`` trains and saves the model that ``widthprune.load("toy")`` loads.
"""

from pathlib import Path

from .corpus import (
    calibration_texts,
    item_texts,
    recovery_texts,
    task_items,
    training_rows,
    vocabulary,
    write_tasks,
)
from .tokenizer import build_tokenizer
from .train import TrainConfig, model_config, train
from .world import World, WorldConfig, build_world

__all__ = [
    "TASK_DATA",
    "TASKS_DIR",
    "TrainConfig",
    "World",
    "WorldConfig",
    "build_tokenizer",
    "calibration_texts",
    "item_texts",
    "recovery_texts",
    "build_world",
    "model_config",
    "task_items",
    "train",
    "training_rows",
    "vocabulary",
    "write_tasks",
]

# lm-eval task folder of the package (pass it as TaskManager(include_path=...))
TASKS_DIR = Path(__file__).parent.parent / "evaluation" / "tasks"
# the items of the toy tasks, one jsonl file per task
TASK_DATA = TASKS_DIR / "toy" / "data"
