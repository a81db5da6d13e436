"""Executors of a sweep: where each configuration's chapter 4 runs.

``inline`` runs the configurations one after another in the sweep's own process. ``local`` and
``slurm`` hand each configuration to submitit as one job: subprocesses of this host (one slot of
``gpus_per_job`` visible GPUs each, submitit setting the job's ``CUDA_VISIBLE_DEVICES``, or at most
``max_jobs`` CPU jobs at once), or one Slurm job array. Every job runs :func:`run_job`
(:func:`run_point`, stopping when the job is cancelled), a module-level function of plain data that
pickles by reference; jobs share nothing but the results store and its per-configuration lock, so a
filesystem shared by the nodes is assumed. While the jobs run, the sweep shows a progress bar over
finished configurations and keeps each job's id and state in the run's ``jobs.json``.
"""

from __future__ import annotations

import math
import os
import platform
import re
import shutil
import signal
import time
import traceback
from dataclasses import dataclass, replace
from pathlib import Path

from . import engines, jobs

__all__ = [
    "EXECUTORS",
    "ExecutorConfig",
    "JobTask",
    "parse_minutes",
    "run_job",
    "run_jobs",
    "run_point",
]

EXECUTORS = ("inline", "local", "slurm")
SLURM_ONLY = ("partition", "mem", "array_parallelism", "slurm_options")


def parse_minutes(text: str | int) -> int:
    """Slurm's time formats (``MM``, ``MM:SS``, ``HH:MM:SS``, ``D-HH[:MM[:SS]]``) in minutes."""
    value = str(text).strip()
    match = re.fullmatch(r"(?:(\d+)-)?(\d+)(?::(\d+))?(?::(\d+))?", value)
    if not match:
        raise ValueError(f"time must be minutes, HH:MM:SS or D-HH:MM:SS, got {text!r}")
    days, a, b, c = (int(g) if g else 0 for g in match.groups())
    if match.group(1):  # D-HH[:MM[:SS]]
        seconds = ((days * 24 + a) * 60 + b) * 60 + c
    elif match.group(4):  # HH:MM:SS
        seconds = (a * 60 + b) * 60 + c
    else:  # MM[:SS]
        seconds = a * 60 + b
    if seconds <= 0:
        raise ValueError(f"time must be positive, got {text!r}")
    return math.ceil(seconds / 60)


@dataclass(frozen=True)
class ExecutorConfig:
    """Where a sweep's configurations run, and with what each job may use."""

    kind: str = "inline"  # inline (this process), local (submitit subprocesses), slurm
    gpus_per_job: int | None = None  # None: one GPU per job when the sweep's device is cuda
    max_jobs: int | None = None  # local: jobs at once (default: one per GPU slot, else 1)
    cpus_per_job: int | None = None  # slurm: --cpus-per-task; local CPU jobs: their threads
    mem: str | None = None  # slurm: --mem of each job, e.g. "16G"
    time: str = "24:00:00"  # each job's time limit (minutes, HH:MM:SS or D-HH:MM:SS)
    partition: str | None = None  # slurm: the partition
    array_parallelism: int | None = None  # slurm: array tasks running at once
    slurm_options: tuple[tuple[str, str | bool], ...] = ()  # slurm: more sbatch (key, value)
    poll_s: float = 5.0  # seconds between looks at the jobs' states

    def __post_init__(self):
        if self.kind not in EXECUTORS:
            raise ValueError(f"executor must be one of {EXECUTORS}, got {self.kind!r}")
        for name in ("gpus_per_job", "max_jobs", "cpus_per_job", "array_parallelism"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or int(value) != value or value < 0):
                raise ValueError(f"{name} must be a whole number >= 0, got {value!r}")
        if self.max_jobs == 0 or self.cpus_per_job == 0 or self.array_parallelism == 0:
            raise ValueError("max_jobs, cpus_per_job and array_parallelism must be >= 1")
        if not self.poll_s > 0:
            raise ValueError(f"poll_s must be > 0, got {self.poll_s!r}")
        options = self.slurm_options
        options = options.items() if isinstance(options, dict) else options
        object.__setattr__(self, "slurm_options", tuple((str(k), v) for k, v in options))
        parse_minutes(self.time)
        if self.kind != "slurm":
            given = [n for n in SLURM_ONLY if getattr(self, n)]
            if given:
                raise ValueError(f"{given} apply to the slurm executor only")
        if self.kind == "inline":
            given = [n for n in ("gpus_per_job", "max_jobs", "cpus_per_job") if getattr(self, n)]
            if given:
                raise ValueError(f"{given} apply to the local and slurm executors only")

    @property
    def minutes(self) -> int:
        return parse_minutes(self.time)

    def resolved(self, devices: set[str]) -> ExecutorConfig:
        """Check the executor against the sweep's devices; fill in the GPUs of each job.

        Raises:
            ValueError: a device a job cannot address, GPUs asked for a CPU sweep, no sbatch.
        """
        if self.kind == "inline":
            return self
        cuda = {d for d in devices if d.startswith("cuda")}
        if cuda - {"cuda", "cuda:0"}:
            raise ValueError(
                f"device {sorted(cuda)}: each job sees only its own GPUs, numbered from 0; "
                "use --device cuda"
            )
        gpus = self.gpus_per_job if self.gpus_per_job is not None else (1 if cuda else 0)
        if gpus and not cuda:
            raise ValueError(f"{gpus} GPU(s) per job, but the sweep's device is {devices}")
        if cuda and not gpus:
            raise ValueError("a cuda sweep needs --gpus-per-job 1 or more")
        if self.kind == "slurm" and shutil.which("sbatch") is None:
            raise ValueError("Slurm's sbatch is not on PATH: is this a Slurm login node?")
        if self.kind == "local" and gpus:
            seen = engines.visible_gpus()
            if len(seen) < gpus:
                raise ValueError(f"{gpus} GPU(s) per job, but this host shows {len(seen)}")
        return replace(self, gpus_per_job=gpus)


def run_point(point: dict, run: str, paths: dict, config_id: str | None = None) -> dict:
    """Evaluate one configuration into the shared results store, then report it: every job.

    The configuration is done when its result is stored (:func:`~widthprune.runs.experiment.
    evaluate_config`, in this process, keeping the unpruned model for the next point); chapter
    4's report of it (``paths["output"]``) comes after, and its failure is returned as
    ``report_error``, never raised.

    Args:
        point: the :class:`~widthprune.runs.config.EvalConfig` as a dict of plain values.
        run: the results run (``<results_dir>/<run>/<config id>/``).
        paths: ``source`` (the chapter), ``output`` (its report), ``report`` (whether to
            write it; default yes), ``results_dir``, ``cwd`` and optionally ``threads`` (CPU
            threads of this job).
        config_id: the id the sweep computed; a host that computes another one (other package
            versions, other model files) refuses to run rather than store it elsewhere.

    Returns:
        ``notebook``, ``report_error``, ``host``, ``gpus`` (the job's CUDA_VISIBLE_DEVICES)
        and ``seconds``.
    """
    import json

    from .config import EvalConfig
    from .experiment import evaluate_config
    from .notebook import run_notebook

    t0 = time.perf_counter()
    config = EvalConfig(**point)
    if config_id is not None and config.config_id != config_id:
        raise RuntimeError(
            f"{platform.node()} computes another id than {config_id} for this configuration: "
            "its package versions or model files differ from the submitting host's"
        )
    threads = os.environ.get("SLURM_CPUS_PER_TASK") or paths.get("threads")
    if threads and "OMP_NUM_THREADS" not in os.environ:  # the kernel inherits it
        os.environ["OMP_NUM_THREADS"] = str(threads)
        _set_threads(int(threads))
    evaluate_config(config, run, paths["results_dir"], keep_model=True)
    report_error = ""
    if paths.get("report", True):
        # papermill writes parameters as Python literals but turns tuples into strings
        parameters = json.loads(json.dumps({**point, "run": run}))
        parameters["results_dir"] = str(paths["results_dir"])
        try:
            run_notebook(paths["source"], paths["output"], parameters, cwd=paths["cwd"])
        except Exception as err:  # the result is stored: the report alone failed
            report_error = (str(err).strip().splitlines() or [type(err).__name__])[-1]
    return {
        "notebook": paths["output"] if paths.get("report", True) else None,
        "report_error": report_error,
        "host": platform.node(),
        "gpus": os.environ.get("CUDA_VISIBLE_DEVICES"),
        "seconds": time.perf_counter() - t0,
    }


def _cancelled(signum, frame):
    raise SystemExit(f"the job was cancelled (signal {signum}): stopped before storing a result")


def run_job(point: dict, run: str, paths: dict, config_id: str | None = None) -> dict:
    """:func:`run_point` as a submitted job, which stops when it is cancelled.

    ``scancel`` (and Slurm's end of a time limit) sends SIGTERM, then SIGKILL ``KillWait``
    seconds later; submitit only logs SIGTERM, so a job would compute on for those seconds and
    might store its result after the sweep has recorded it as cancelled. Here SIGTERM stops the
    job at once, unless submitit was told to use SIGTERM for its own checkpoint and requeue.
    """
    current = signal.getsignal(signal.SIGTERM)
    if current in (signal.SIG_DFL, None) or getattr(current, "__name__", "") == "bypass":
        signal.signal(signal.SIGTERM, _cancelled)
    return run_point(point, run, paths, config_id)


def _set_threads(threads: int) -> None:
    """This process's torch threads, where torch is already imported (the job's own process)."""
    import sys

    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_num_threads(threads)


@dataclass(frozen=True)
class JobTask:
    """One job: the record's key (the configuration id) and :func:`run_point`'s arguments."""

    key: str
    label: str
    point: dict
    run: str
    paths: dict
    config_id: str | None

    @property
    def args(self) -> tuple:
        return (self.point, self.run, self.paths, self.config_id)


def run_inline(tasks: list[JobTask], record: jobs.JobsRecord, bar) -> dict[str, dict]:
    """Run each task in this process, one after another; a failure is logged, not raised."""
    outcomes = {}
    for task in tasks:
        record.update(task.key, state="running", submitted=jobs.now())
        output = Path(task.paths["output"])
        try:
            done = run_point(*task.args)
        except Exception as err:  # the point failed: keep going, say so at the end
            log = output.with_name(f"{output.stem}.error.txt")
            log.write_text("".join(traceback.format_exception(err)))
            last = (str(err).strip().splitlines() or [type(err).__name__])[-1]
            outcomes[task.key] = {"state": "failed", "error": last, "log": str(log)}
        else:
            report = done["report_error"]
            outcomes[task.key] = {"state": "done", "error": "", "log": None}
            outcomes[task.key]["report_error"] = report
        record.update(task.key, **outcomes[task.key], finished=jobs.now())
        bar.update(1)
    return outcomes


def run_jobs(
    tasks: list[JobTask],
    executor: ExecutorConfig,
    logs: Path,
    record: jobs.JobsRecord,
    bar,
    *,
    visible: tuple[int, ...] | None = None,
) -> dict[str, dict]:
    """Run every task with ``executor`` and wait for all of them.

    Args:
        tasks: the jobs; their keys are entries of ``record``.
        executor: :meth:`ExecutorConfig.resolved`.
        logs: submitit's folder of each job's pickles and logs (``<job id>_0_log.err``).
        record: the run's jobs.json, updated as jobs are submitted and end.
        bar: a tqdm bar, advanced by one per finished task.
        visible: the GPUs of local jobs (None: those this host shows).

    Returns:
        ``{key: {"state": "done" | "failed", "error", "log", "job_id"}}``; a failed task does
        not stop the others.
    """
    if not tasks:
        return {}
    if executor.kind == "inline":
        return run_inline(tasks, record, bar)
    logs.mkdir(parents=True, exist_ok=True)
    if executor.kind == "slurm":
        return engines.run_slurm(run_job, tasks, executor, logs, record, bar)
    return engines.run_local(run_job, tasks, executor, logs, record, bar, visible)
