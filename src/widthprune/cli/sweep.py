"""``widthprune sweep``: a sweep of configurations, run inline, locally or on Slurm; its status."""

from __future__ import annotations

from pathlib import Path

from ..runs.config import DEFAULT_BATCH_SIZE, DTYPES, STUDY_PCTS
from .arguments import _add_task_arguments, _batch_size, _limit


def add_sweep(sub) -> None:
    p = sub.add_parser(
        "sweep",
        help="evaluate every (model, criterion, pct or ratio) and store its result",
        description="Evaluate each configuration (in one process with the inline executor, "
        "which loads each model once), store its result under RESULTS_DIR/<run>/, then "
        "write chapter 4's report of it under book/generated/sweep/<run>/ (unless "
        "--no-reports). Every input is checked first; each model's unpruned "
        "baseline is always included; what the store holds complete is not run again; a "
        "failing configuration is reported and the others still run (exit status 1).",
    )
    p.add_argument("--models", "--model", nargs="+", default=["toy"], help="models (default: toy)")
    p.add_argument("--criteria", nargs="+", default=["ppm", "wanda"], help="scoring rules")
    target = p.add_mutually_exclusive_group()
    target.add_argument(
        "--pcts", nargs="+", type=float, help=f"pruning percentages (default: {STUDY_PCTS})"
    )
    target.add_argument("--ratios", nargs="+", type=float, help="expansion ratios")
    p.add_argument("--round-to", type=int, default=None, help="align widths to a multiple")
    _add_task_arguments(p)
    p.add_argument("--run", default=None, help="results run name (default: toy-sweep)")
    p.add_argument("--results-dir", type=Path, default=Path("results"), help="results store")
    p.add_argument("--dtype", choices=DTYPES, default="auto")
    p.add_argument("--device", default="cpu")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--seeds",
        nargs="+",
        type=int,
        help="evaluate each pruned configuration once per seed (the random criterion's floor); "
        "the baseline runs with --seed",
    )
    p.add_argument("--calibration", default=None, help="activation criteria's text")
    p.add_argument(
        "--recovery",
        default=None,
        help='also evaluate each pruned point distilled from the unpruned model: "kd" or '
        '"lora", with settings as "kd:steps=50,lr=1e-4,text=toy"',
    )
    p.add_argument("--batch-size", type=_batch_size, default=DEFAULT_BATCH_SIZE)
    p.add_argument(
        "--no-reports",
        dest="reports",
        action="store_false",
        help="store the results only, without chapter 4's report of each configuration "
        "(a configuration is done when its result is stored; the reports take a notebook "
        "kernel each)",
    )
    p.add_argument(
        "--status",
        metavar="RUN",
        help="list each configuration of RUN as done, running, queued or failed (with its log) "
        "and return at once",
    )
    g = p.add_argument_group("where the configurations run (one job each with local or slurm)")
    g.add_argument(
        "--executor",
        choices=["inline", "local", "slurm"],
        default="inline",
        help="inline: one after another here (default); local: subprocesses of this host; "
        "slurm: a Slurm job array (logs under book/generated/sweep/<run>/logs/)",
    )
    g.add_argument(
        "--gpus-per-job",
        type=int,
        help="GPUs of each job (default: 1 with --device cuda, else 0); local jobs are spread "
        "over the visible GPUs",
    )
    g.add_argument("--max-jobs", type=int, help="local: jobs at once (default: one per GPU, or 1)")
    g.add_argument("--cpus-per-job", type=int, help="slurm: --cpus-per-task; local: threads")
    g.add_argument("--mem", help='slurm: memory of each job, e.g. "32G"')
    g.add_argument("--time", default="24:00:00", help="time limit of each job (default: 24 h)")
    g.add_argument("--partition", help="slurm: the partition")
    g.add_argument("--array-parallelism", type=int, help="slurm: array tasks running at once")
    g.add_argument(
        "--slurm-option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="slurm: another sbatch option, e.g. account=myproject or qos=high (repeat)",
    )
    g.add_argument("--poll", type=float, default=5.0, help="seconds between looks at the jobs")
    p.set_defaults(run_command=run_sweep_command)


def _slurm_option(text: str) -> tuple[str, str | bool]:
    key, sep, value = text.partition("=")
    key = key.strip().lstrip("-")
    if not key:
        raise ValueError(f"--slurm-option {text!r} is not KEY=VALUE")
    return (key, value) if sep else (key, True)


def run_sweep_command(args) -> int:
    from ..runs.executors import ExecutorConfig
    from ..runs.jobs import log_tail, status_report
    from ..runs.sweep import DEFAULT_RUN, SweepConfig, run_sweep

    if args.status:
        print(status_report(Path("book/generated/sweep") / args.status / "jobs.json"))
        return 0
    executor = ExecutorConfig(
        kind=args.executor,
        gpus_per_job=args.gpus_per_job,
        max_jobs=args.max_jobs,
        cpus_per_job=args.cpus_per_job,
        mem=args.mem,
        time=args.time,
        partition=args.partition,
        array_parallelism=args.array_parallelism,
        slurm_options=tuple(_slurm_option(o) for o in args.slurm_option),
        poll_s=args.poll,
    )
    config = SweepConfig(
        models=tuple(args.models),
        criteria=tuple(args.criteria),
        pcts=tuple(args.pcts) if args.pcts else None,
        ratios=tuple(args.ratios) if args.ratios else None,
        round_to=args.round_to,
        tasks=args.tasks,
        num_fewshot=args.num_fewshot,
        limit=_limit(args.limit),
        chat_template=args.chat_template,
        run=args.run or DEFAULT_RUN,
        dtype=args.dtype,
        device=args.device,
        seed=args.seed,
        seeds=tuple(args.seeds) if args.seeds else None,
        calibration=args.calibration,
        batch_size=args.batch_size,
        engine=args.engine,
        recovery=args.recovery,
    )
    outcomes = run_sweep(
        config, results_dir=args.results_dir, executor=executor, reports=args.reports
    )
    failed = [o for o in outcomes if o.status == "failed"]
    counts = {s: sum(o.status == s for o in outcomes) for s in ("stored", "done", "failed")}
    print(
        f"sweep {config.run}: {len(outcomes)} configurations, {counts['stored']} already "
        f"stored, {counts['done']} run now, {counts['failed']} failed"
    )
    for o in failed:
        job = f" (job {o.job_id})" if o.job_id else ""
        print(f"  FAILED {o.config.model} {o.config.label}{job}: {o.error}\n    log: {o.log}")
        for line in log_tail(o.log, 8).splitlines():
            print(f"      | {line}")
    return 1 if failed else 0
