"""Sweeps: a list of run configurations, each evaluated and stored, then reported by chapter 4.

A :class:`SweepConfig` is the product models x criteria x (pruning percentages or expansion
ratios); :meth:`SweepConfig.points` turns it into :class:`~widthprune.runs.config.EvalConfig`
objects, always with each model's unpruned baseline, and with targets that give the same
width run once. Every input is checked before the first point runs. Whether a point is done is
decided by the results store alone (a complete, verified result); chapter 4 executed on it
beside the book is its report, a separate product whose failure is reported as such and never
marks a stored result failed. A failing point is logged and the others still run. Where the
points run is the executor's business (:mod:`widthprune.runs.executors`: this process, jobs on this
host, or a Slurm job array); the run folder's ``jobs.json`` says where each one stands
(:mod:`widthprune.runs.jobs`).
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from dataclasses import dataclass, replace
from pathlib import Path

from tqdm.auto import tqdm

from . import jobs
from .config import DEFAULT_BATCH_SIZE, STUDY_PCTS, EvalConfig
from .executors import ExecutorConfig, JobTask, run_jobs
from .notebook import EVALUATION_CHAPTER, provenance, remove_partials

__all__ = ["DEFAULT_RUN", "PointOutcome", "SweepConfig", "run_sweep", "sweep_points"]

DEFAULT_RUN = "toy-sweep"  # results/<run>/ of the book's own sweep


@dataclass(frozen=True)
class SweepConfig:
    """Which configurations to evaluate; the default is the study's seven widths on the toy."""

    models: tuple[str, ...] = ("toy",)  # "toy", "smollm2-135m-instruct", hub ids or folders
    criteria: tuple[str, ...] = ("ppm", "wanda")  # the study's rule and a contrasting one
    pcts: tuple[float, ...] | None = None  # pruning percentages (None: the study's, 0..60)
    ratios: tuple[float, ...] | None = None  # expansion ratios instead of percentages
    round_to: int | None = None  # align widths to a multiple of this
    tasks: str = "toy"  # task preset ("toy", "paper", ...) or comma-separated task names
    num_fewshot: int | None = None  # shots for every task (None: the preset's or task's own)
    limit: int | float | None = None  # items per task (None: all)
    chat_template: bool = False  # prompts in the model's chat template
    run: str = DEFAULT_RUN  # results/<run>/ and the folder of executed notebooks
    dtype: str = "auto"  # model dtype: auto, float32, bfloat16, float16
    device: str = "cpu"  # cpu, cuda, cuda:1, ...
    seed: int = 0  # seed of evaluation and of the random criterion
    seeds: tuple[int, ...] | None = None  # pruned points once per seed (the baseline: `seed`)
    calibration: str | None = None  # activation criteria's text (None: the model's default)
    batch_size: int | str = DEFAULT_BATCH_SIZE  # lm-eval batch size
    engine: str = "fast"  # how requests are computed: "fast" or "lm-eval"
    recovery: str | None = None  # each pruned point also distilled from the unpruned model (a
    # recovery setting as EvalConfig takes it, e.g. "kd:steps=50"); None: pruned points only

    def __post_init__(self):
        if self.pcts is not None and self.ratios is not None:
            raise ValueError("A sweep takes pcts= or ratios=, not both.")
        if self.pcts is None and self.ratios is None:
            object.__setattr__(self, "pcts", STUDY_PCTS)
        for name in ("models", "criteria"):
            value = getattr(self, name)
            object.__setattr__(self, name, (value,) if isinstance(value, str) else tuple(value))
            if not getattr(self, name):
                raise ValueError(f"A sweep needs at least one of {name}.")
        if self.seeds is not None:
            object.__setattr__(self, "seeds", tuple(dict.fromkeys(int(s) for s in self.seeds)))
            if not self.seeds:
                raise ValueError("seeds is empty; give at least one seed or None")
        if not self.run or "/" in self.run or self.run.startswith("."):
            raise ValueError(f"run must be a plain folder name, got {self.run!r}")

    def _common(self, model: str) -> dict:
        return dict(
            model=model,
            tasks=self.tasks,
            num_fewshot=self.num_fewshot,
            limit=self.limit,
            chat_template=self.chat_template,
            seed=self.seed,
            dtype=self.dtype,
            device=self.device,
            batch_size=self.batch_size,
            engine=self.engine,
        )

    def points(self) -> list[EvalConfig]:
        """Every configuration of the sweep: per model its baseline first, then each criterion
        and target (once per seed of ``seeds``). Targets that give a width already listed (for
        that model and criterion), or the unpruned width itself, are left out."""
        out = []
        for model in self.models:
            baseline = EvalConfig(**self._common(model))
            out.append(baseline)
            full = baseline.resolved_width()
            for criterion in self.criteria:
                seen = {full}
                targets = [("pruning_pct", v) for v in self.pcts or ()]
                targets += [("expansion_ratio", v) for v in self.ratios or ()]
                for key, value in targets:
                    points = [
                        EvalConfig(
                            **{**self._common(model), "seed": seed},
                            criterion=criterion,
                            round_to=self.round_to,
                            calibration=self.calibration,
                            **{key: value},
                        )
                        for seed in self.seeds or (self.seed,)
                    ]
                    width = points[0].resolved_width()
                    if width not in seen:
                        seen.add(width)
                        out.extend(points)
                        if self.recovery is not None:  # each pruned point, then recovered
                            out.extend(replace(p, recovery=self.recovery) for p in points)
        return out

    def validate(self, *, check_device: bool = True) -> list[EvalConfig]:
        """Check every input before anything runs; return the points.

        Args:
            check_device: whether this host must have the device (not so for a Slurm sweep,
                whose jobs run elsewhere).

        Raises:
            ValueError: one message listing every problem found (unknown criteria or tasks,
                unreachable models, impossible targets, an absent device or calibration text).
        """
        from ..evaluation.catalogue import preset_tasks
        from ..evaluation.harness import check_tasks_exist
        from ..models.loading import check_device as check_device_here
        from ..pruning.calibration import calibration_texts
        from ..pruning.scoring import get_criterion
        from .fingerprint import checkpoint_config

        problems = []
        for criterion in self.criteria:
            try:
                get_criterion(criterion)
            except KeyError as err:
                problems.append(err.args[0])
        for model in self.models:
            try:
                checkpoint_config(model)
            except (OSError, ValueError) as err:
                problems.append(f"model {model!r}: {err}")
        checks = [(lambda: check_tasks_exist(preset_tasks(self.tasks)), "tasks")]
        if check_device:
            checks.insert(0, (lambda: check_device_here(self.device), "device"))
        for check, what in checks:
            try:
                check()
            except (ValueError, RuntimeError) as err:
                problems.append(f"{what}: {err}")
        points = []
        if not problems:
            try:
                points = self.points()
            except (ValueError, OSError) as err:
                problems.append(str(err))
        for text in {p.calibration for p in points if p.calibration is not None}:
            try:
                calibration_texts(text)
            except (OSError, ValueError) as err:
                problems.append(f"calibration {text!r}: {err}")
        if problems:
            raise ValueError("The sweep cannot start:\n  - " + "\n  - ".join(problems))
        return points


def sweep_points(config: SweepConfig) -> list[EvalConfig]:
    """The configurations of a sweep (see :meth:`SweepConfig.points`)."""
    return config.points()


@dataclass
class PointOutcome:
    """What happened to one point of a sweep."""

    config: EvalConfig
    status: str  # "stored" (already complete), "done" (run now) or "failed"
    notebook: Path | None  # the executed chapter (or the failed one, as its log)
    log: Path | None = None  # the error's text, for a failed point (a job's: its stderr)
    error: str = ""  # its last line
    job_id: str | None = None  # the job that ran it (local or slurm executor)
    report_error: str = ""  # why chapter 4's report of a stored result failed, if it did

    def to_dict(self) -> dict:
        return {
            "label": self.config.label,
            "model": self.config.model,
            "config_id": self.config.config_id,
            "status": self.status,
            "notebook": str(self.notebook) if self.notebook else None,
            "log": str(self.log) if self.log else None,
            "error": self.error,
            "job_id": self.job_id,
            "report_error": self.report_error,
        }


def _notebook_name(config: EvalConfig) -> str:
    model = Path(config.model).name.replace(".", "-") or "model"
    return f"{model}_{config.label}_{config.config_id}.ipynb"


def _append_history(folder: Path, entry: dict) -> None:
    path = folder / "sweep.json"
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError):
        record = {}
    history = record.get("history", [])
    if "config" in record:  # a single earlier entry
        history = [{"config": record["config"], "provenance": record.get("provenance")}]
    history.append(entry)
    tmp = path.with_name(f".sweep.json.{os.getpid()}.tmp")
    tmp.write_text(json.dumps({"history": history}, indent=2, default=str) + "\n")
    os.replace(tmp, path)


def run_sweep(
    config: SweepConfig,
    *,
    notebooks: str | os.PathLike = "notebooks",
    out_dir: str | os.PathLike = "book/generated/sweep",
    results_dir: str | os.PathLike = "results",
    cwd: str | os.PathLike = ".",
    executor: ExecutorConfig | None = None,
    reports: bool = True,
) -> list[PointOutcome]:
    """Evaluate every point of ``config`` that the store does not hold complete.

    Args:
        executor: where the points run (default: inline, one after another in this process,
            the model loaded once); local and slurm jobs log under ``<out_dir>/<run>/logs/``.
        reports: execute chapter 4 on each stored point (its report); a point whose result is
            stored but whose report is missing gets its report written.

    Returns:
        One :class:`PointOutcome` per point, in sweep order. The run's ``sweep.json`` gains one
        history entry (settings, provenance, outcomes); earlier entries are kept.

    Raises:
        ValueError: the sweep's inputs are invalid, or jobs of an earlier sweep of the same run
            are still queued or running (nothing was run).
    """
    from . import store

    executor = executor or ExecutorConfig()
    points = config.validate(check_device=executor.kind != "slurm")
    executor = executor.resolved({p.device for p in points})
    source = (Path(notebooks) / f"{EVALUATION_CHAPTER}.ipynb").resolve()
    if reports and not source.is_file():
        raise ValueError(
            f"No chapter {EVALUATION_CHAPTER} at {source} to report each configuration: sweep "
            "from the checkout's root (where notebooks/ is), or pass --no-reports to store the "
            "results alone"
        )
    folder = Path(out_dir) / config.run
    record = jobs.JobsRecord(folder / "jobs.json")
    record.check_idle()
    folder.mkdir(parents=True, exist_ok=True)
    remove_partials(folder)
    started = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    entries, tasks = [], []
    for point in points:
        key = point.config_id
        output = folder / _notebook_name(point)
        result = store.result_folder(point, config.run, results_dir)
        done = store.is_complete(result) and (output.exists() or not reports)
        entry = dict(
            config_id=key,
            label=point.label,
            model=point.model,
            result=str(result.resolve()),
            notebook=str(output.resolve()),
            state="done" if done else "queued",
        )
        entries.append(entry)
        if not done:
            paths = dict(source=str(source), output=entry["notebook"], cwd=str(Path(cwd).resolve()))
            paths["report"] = reports
            paths["results_dir"] = str(Path(results_dir).resolve())
            # jobs on other hosts check they compute the same id; inline needs no check
            check = key if executor.kind != "inline" else None
            args = (dataclasses.asdict(point), config.run, paths, check)
            tasks.append(JobTask(key, point.label, *args))
    record.start(config.run, executor.kind, entries, results_dir)
    stored = len(points) - len(tasks)
    with tqdm(total=len(points), initial=stored, desc=f"sweep {config.run}", unit="config") as bar:
        ran = run_jobs(tasks, executor, (folder / "logs").resolve(), record, bar)
    outcomes = []
    for point, entry in zip(points, entries, strict=True):
        output = Path(entry["notebook"])
        job = ran.get(entry["config_id"], {"state": "stored"})
        if not output.exists():
            failed = output.with_name(f"{output.stem}.failed.ipynb")
            output = failed if failed.exists() else None
        log = Path(job["log"]) if job["state"] == "failed" and job.get("log") else None
        args = (job["state"], output, log, job.get("error", ""), job.get("job_id"))
        outcomes.append(PointOutcome(point, *args, report_error=job.get("report_error", "")))
    _append_history(
        folder,
        {
            "config": dataclasses.asdict(config),
            "executor": dataclasses.asdict(executor),
            "provenance": provenance(),
            "started": started,
            "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "points": [o.to_dict() for o in outcomes],
        },
    )
    return outcomes
