"""Running the book: every chapter through papermill, and chapter 4 once per configuration.

A *sweep* is the product models x criteria x (pruning percentages or expansion ratios). Each
point is one execution of the evaluation chapter with its parameters; the executed notebook is
kept next to the book, named by a hash of its parameters, and written only once papermill
finished it, so a rerun skips what exists and a killed run leaves nothing half-written.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

from tqdm.auto import tqdm

from .chapters.runner import EVALUATION_CHAPTER, provenance, run_notebook

__all__ = [
    "SweepConfig",
    "point_config",
    "run_sweep",
    "sweep_points",
]


@dataclass(frozen=True)
class SweepConfig:
    """Which configurations to evaluate; the default is the study's seven, on the toy model."""

    models: tuple[str, ...] = ("toy",)  # "toy", Hugging Face ids or local folders
    criteria: tuple[str, ...] = ("ppm", "wanda")  # the study's rule and a contrasting one
    pcts: tuple[float, ...] | None = (0, 10, 20, 30, 40, 50, 60)  # pruning percentages
    ratios: tuple[float, ...] | None = None  # expansion ratios instead of percentages
    round_to: int | None = None  # align widths to a multiple of this
    tasks: str = "toy"  # task preset (toy, paper, paper-local, real) or comma-separated names
    limit: int | None = None  # items per task (None: all)
    run: str = "toy-sweep"  # results/<run>/ and the folder of executed notebooks
    dtype: str = "auto"  # model dtype: auto, float32, bfloat16, float16
    device: str = "cpu"  # cpu, cuda, ...
    seed: int = 0  # seed of evaluation and of the random criterion

    def __post_init__(self):
        if (self.pcts is None) == (self.ratios is None):
            raise ValueError("A sweep takes pcts= or ratios=, exactly one of them.")
        if not self.models or not self.criteria:
            raise ValueError("A sweep needs at least one model and one criterion.")


def sweep_points(config: SweepConfig) -> list[dict]:
    """The parameters of chapter 4 for every point of the sweep.

    The unpruned model (0 %) is one point per model, not one per criterion: its criterion is
    recorded as ``"none"``.
    """
    points = []
    common = {
        "tasks": config.tasks,
        "limit": config.limit,
        "run": config.run,
        "dtype": config.dtype,
        "device": config.device,
        "seed": config.seed,
        "round_to": config.round_to,
    }
    for model in config.models:
        seen = set()
        for criterion in config.criteria:
            for value in config.pcts if config.pcts is not None else config.ratios:
                if config.pcts is not None:
                    target = {"pruning_pct": float(value), "expansion_ratio": None}
                    baseline = float(value) == 0.0
                else:
                    target = {"pruning_pct": None, "expansion_ratio": float(value)}
                    baseline = False
                point = {"model": model, "criterion": "none" if baseline else criterion}
                point.update(target, **common)
                key = json.dumps(point, sort_keys=True)
                if key not in seen:
                    seen.add(key)
                    points.append(point)
    return points


def point_config(
    *,
    model: str,
    criterion: str,
    pruning_pct: float | None = None,
    expansion_ratio: float | None = None,
    round_to: int | None = None,
    tasks: str = "toy",
    limit: int | None = None,
    dtype: str = "auto",
    device: str = "cpu",
    seed: int = 0,
    calibration: str = "toy",
):
    """The :class:`~widthprune.EvalConfig` of one sweep point (chapter 4's parameters).

    ``criterion="none"`` or a target of 0 % means the unpruned model. Calibration text is
    recorded only for criteria that read it, so a weight criterion's configuration does not
    change with it.
    """
    from .config import EvalConfig
    from .scoring import ACTIVATION_CRITERIA

    baseline = criterion == "none" or (pruning_pct == 0 and expansion_ratio is None)
    return EvalConfig(
        model=model,
        criterion=None if baseline else criterion,
        pruning_pct=None if baseline else pruning_pct,
        expansion_ratio=None if baseline else expansion_ratio,
        round_to=None if baseline else round_to,
        calibration=calibration if criterion in ACTIVATION_CRITERIA and not baseline else None,
        tasks=tasks,
        limit=limit,
        seed=seed,
        dtype=dtype,
        device=device,
    )


def _slug(parameters: dict) -> str:
    """A readable, unique file stem for a point: model, criterion, target and a hash."""
    digest = hashlib.sha256(json.dumps(parameters, sort_keys=True).encode()).hexdigest()[:8]
    model = Path(str(parameters.get("model", "model"))).name.replace(".", "-")
    if parameters.get("pruning_pct") is not None:
        target = f"pct{parameters['pruning_pct']:g}"
    else:
        target = f"ratio{parameters.get('expansion_ratio')}"
    return f"{model}_{parameters.get('criterion')}_{target}_{digest}"


def run_sweep(
    config: SweepConfig,
    *,
    notebooks: str | os.PathLike = "notebooks",
    out_dir: str | os.PathLike = "book/generated/sweep",
    cwd: str | os.PathLike = ".",
) -> list[Path]:
    """Execute chapter 4 for every point of ``config``; skip points already executed.

    Returns:
        The executed notebooks, one per point, in sweep order.
    """
    source = Path(notebooks) / f"{EVALUATION_CHAPTER}.ipynb"
    folder = Path(out_dir) / config.run
    folder.mkdir(parents=True, exist_ok=True)
    record = {"config": asdict(config), "provenance": provenance()}
    (folder / "sweep.json").write_text(json.dumps(record, indent=2) + "\n")
    outputs = []
    points = sweep_points(config)
    for point in tqdm(points, desc=f"sweep {config.run}", unit="config"):
        output = folder / f"{_slug(point)}.ipynb"
        if not output.exists():
            run_notebook(source, output, point, cwd=cwd)
        outputs.append(output)
    return outputs
