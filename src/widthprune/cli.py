"""The ``widthprune`` command line: one sub-command per stage of the pipeline.

A user's mistake (a bad value, a missing file, an unknown name) ends with one line on stderr
and exit status 2, never a traceback; set ``WIDTHPRUNE_DEBUG=1`` to see the traceback anyway.
Heavy packages are imported inside the commands, so ``--help`` answers at once.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from pathlib import Path

from .runs.config import DEFAULT_BATCH_SIZE, DTYPES, STUDY_PCTS

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


def add_prune(sub) -> None:
    p = sub.add_parser(
        "prune",
        help="prune a model's GLU-MLP layers and save a standard checkpoint",
        description="Score every MLP neuron, keep the best per layer, save the pruned model "
        "(loadable with AutoModelForCausalLM.from_pretrained), its tokenizer and a JSON report.",
    )
    p.add_argument("model", help='"toy", a packaged model name, a local folder or a hub id')
    p.add_argument("--criterion", default="ppm", help="scoring rule (default: ppm)")
    _add_pruning_arguments(p, required=True)
    p.add_argument("--dtype", choices=DTYPES, default="auto")
    p.add_argument("--out", type=Path, required=True, help="output folder")
    p.add_argument("--overwrite", action="store_true", help="replace a non-empty --out folder")
    p.set_defaults(run_command=run_prune)


def run_prune(args) -> int:
    from .models.loading import load
    from .pruning.surgery import check_output_folder, save_pruned
    from .runs.config import EvalConfig
    from .runs.experiment import prune_as_configured
    from .runs.fingerprint import checkpoint_folder, original_width

    config = EvalConfig(
        model=args.model,
        criterion=args.criterion,
        pruning_pct=args.pct,
        expansion_ratio=args.ratio,
        round_to=args.round_to,
        rounding=args.rounding,
        calibration=args.calibration,
        calibration_samples=args.calibration_samples,
        seq_len=args.seq_len,
        seed=args.seed,
        dtype=args.dtype,
        device=args.device,
    )
    if config.criterion is None:
        raise ValueError("--pct 0 keeps every neuron: there is nothing to prune")
    source = checkpoint_folder(args.model)
    check_output_folder(args.out, overwrite=args.overwrite, source=source)
    _check_calibration(config)
    width = config.resolved_width()  # bad targets fail here, before the model loads
    if width == original_width(config.model):
        target = f"--pct {args.pct:g}" if args.pct is not None else f"--ratio {args.ratio:g}"
        raise ValueError(
            f"{target} keeps every neuron (width {width} of {width}): there is nothing to prune; "
            "choose a larger percentage or a smaller ratio"
        )
    model, tok = load(config.model, dtype=config.torch_dtype, device=config.device)
    report = prune_as_configured(model, tok, config)
    assert model.config.intermediate_size == width
    save_pruned(model, args.out, tokenizer=tok, report=report, overwrite=args.overwrite)
    print(json.dumps(report.to_dict(), indent=2))
    print(f"saved to {args.out}", file=sys.stderr)
    return 0


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
    from .runs.executors import ExecutorConfig
    from .runs.jobs import log_tail, status_report
    from .runs.sweep import DEFAULT_RUN, SweepConfig, run_sweep

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


def _limit(value: float | None) -> int | float | None:
    whole = value is not None and math.isfinite(value) and value >= 1 and value == int(value)
    return int(value) if whole else value


def _check_calibration(config) -> None:
    """A calibration text file that is not there fails before the model loads."""
    from .runs.config import NAMED_CALIBRATIONS

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


def add_chapters(sub) -> None:
    p = sub.add_parser(
        "chapters",
        help="execute the chapter notebooks into book/generated/",
        description="Execute chapters with papermill (in reading order) into book/generated/.",
    )
    p.add_argument("names", nargs="*", help="chapters to run (default: all), e.g. 02_scoring")
    p.add_argument(
        "-p",
        "--parameter",
        action="append",
        default=[],
        metavar="CHAPTER:NAME=VALUE",
        help="override a chapter parameter (JSON value), e.g. 04_evaluate:limit=20",
    )
    p.set_defaults(run_command=run_chapters_command)


def _chapter_refusal(err: Exception, names) -> ValueError | None:
    """A chapter that stopped on a user error (a cell's ValueError, say) as that one error."""
    ename = getattr(err, "ename", None)  # papermill's PapermillExecutionError
    if ename not in {e.__name__ for e in USER_ERRORS}:
        return None
    generated = Path("book/generated")
    failed = [generated / f"{n}.failed.ipynb" for n in names]
    failed = max((p for p in failed if p.is_file()), key=lambda p: p.stat().st_mtime, default=None)
    chapter = failed.name.split(".")[0] if failed else "a chapter"
    reason = (str(err.evalue).strip().splitlines() or [ename])[0]
    kept = f" (its output so far: {failed})" if failed else ""
    return ValueError(f"{chapter} stopped at cell [{err.exec_count}]: {ename}: {reason}{kept}")


def run_chapters_command(args) -> int:
    from .chapters.runner import CHAPTERS, run_chapters

    names = tuple(args.names) or CHAPTERS
    parameters: dict[str, dict] = {}
    for text in args.parameter:
        chapter, name, value = _parse_parameter(text)
        parameters.setdefault(chapter, {})[name] = value
    try:
        seconds = run_chapters(names, parameters=parameters)
    except Exception as err:
        raise _chapter_refusal(err, names) or err from None
    for name, s in seconds.items():
        print(f"{name}: {s:.1f} s")
    return 0


def add_check_book(sub) -> None:
    p = sub.add_parser(
        "check-book",
        help="open every page of the built book in headless Chromium and report problems",
    )
    p.add_argument("html", nargs="?", default="_build/html", type=Path)
    p.add_argument("--screenshots", default="_build/screenshots", type=Path)
    p.set_defaults(run_command=run_check_book)


def run_check_book(args) -> int:
    from .chapters.browser import check_pages

    report = check_pages(args.html, screenshots=args.screenshots)
    bad = report[~report.ok]
    print(
        f"{len(report)} pages opened, {len(bad)} with problems; screenshots in {args.screenshots}"
    )
    for row in bad.itertuples():
        print(
            f"  {row.page}: console errors {row.console_errors}, failed requests "
            f"{row.failed_requests}, broken images {row.broken_images}, missing icon "
            f"{row.missing_icon}, empty figures "
            f"{row.empty_figures}, error outputs {row.error_outputs}"
        )
    return 1 if len(bad) else 0


def add_evaluate(sub) -> None:
    p = sub.add_parser(
        "evaluate",
        help="evaluate a model (optionally pruned first) with lm-eval and store the result",
        description="Load a model, prune it if a criterion and target are given, run lm-eval "
        "and store summary, per-item samples and provenance under ROOT/RUN/<config id>/. "
        "A configuration already stored complete is not run again.",
    )
    p.add_argument("model", help='"toy", a packaged model name, a local folder or a hub id')
    _add_task_arguments(p)
    p.add_argument("--run", dest="run_name", default="default", help="name of the run folder")
    p.add_argument("--root", type=Path, default=Path("results"), help="results folder")
    p.add_argument("--criterion", default=None, help="scoring rule; omit for the baseline")
    _add_pruning_arguments(p, required=False, width=True)
    p.add_argument("--dtype", choices=DTYPES, default="auto")
    p.add_argument("--batch-size", type=_batch_size, default=DEFAULT_BATCH_SIZE)
    p.add_argument("--include-path", action="append", default=[], help="extra task folder")
    p.set_defaults(run_command=run_evaluate)


def evaluate_config_from(args):
    """The :class:`~widthprune.runs.config.EvalConfig` that ``widthprune evaluate`` runs."""
    from .runs.config import EvalConfig

    return EvalConfig(
        model=args.model,
        criterion=args.criterion,
        pruning_pct=args.pct,
        expansion_ratio=args.ratio,
        width=args.width,
        round_to=args.round_to,
        rounding=args.rounding,
        calibration=args.calibration,
        calibration_samples=args.calibration_samples,
        seq_len=args.seq_len,
        tasks=args.tasks,
        num_fewshot=args.num_fewshot,
        limit=_limit(args.limit),
        chat_template=args.chat_template,
        seed=args.seed,
        dtype=args.dtype,
        device=args.device,
        batch_size=args.batch_size,
        include_path=tuple(args.include_path),
        engine=args.engine,
    )


def run_evaluate(args) -> int:
    from .models.loading import check_device
    from .runs.experiment import evaluate_config
    from .runs.store import result_folder

    config = evaluate_config_from(args)
    check_device(config.device)
    _check_calibration(config)
    config.resolved_width()  # an impossible target fails before anything loads
    result = evaluate_config(config, run=args.run_name, root=args.root)
    print(result.summary.to_string(index=False))
    print(f"stored in {result_folder(config, args.run_name, args.root)}", file=sys.stderr)
    return 0


def add_toy(sub) -> None:
    p = sub.add_parser(
        "toy",
        help="train the bundled toy model, or write its task data",
        description="The toy model and its world: `toy train` generates the world, trains the "
        "model deterministically and saves a checkpoint with its training log and task data; "
        "`toy tasks` writes only the task data.",
    )
    toy_sub = p.add_subparsers(dest="toy_command", required=True)
    t = toy_sub.add_parser("train", help="generate the world and train the toy model")
    t.add_argument("--device", default="cpu", help="cpu or cuda (default: cpu)")
    t.add_argument("--out", type=Path, default=None, help="checkpoint folder (default: bundled)")
    t.add_argument(
        "--tasks-out", type=Path, default=None, help="task data folder (default: bundled)"
    )
    t.add_argument("--steps", type=int, default=None, help="optimiser steps (default: 4800)")
    t.add_argument("--batch-size", type=int, default=None, help="rows per step (default: 128)")
    t.add_argument("--seed", type=int, default=0, help="seed of the world and of training")
    t.add_argument("--workers", type=int, default=None, help="processes generating text")
    t.set_defaults(run_command=run_toy)
    d = toy_sub.add_parser("tasks", help="write the task data of the toy world")
    d.add_argument("--out", type=Path, default=None, help="folder (default: bundled)")
    d.add_argument("--seed", type=int, default=0, help="seed of the world")
    d.set_defaults(run_command=run_toy)


def run_toy(args) -> int:
    import os
    from dataclasses import replace

    from .models.loading import TOY_CHECKPOINT
    from .toy import TASK_DATA, TrainConfig, WorldConfig, build_world, train, write_tasks

    world = WorldConfig(seed=args.seed)
    if args.toy_command == "tasks":
        paths = write_tasks(build_world(world), args.out or TASK_DATA)
        print("\n".join(str(p) for p in paths.values()))
        return 0
    changes = {"seed": args.seed, "workers": args.workers or os.cpu_count() or 1}
    if args.steps is not None:
        changes["steps"] = args.steps
    if args.batch_size is not None:
        changes["batch_size"] = args.batch_size
    if any(v is not None and v < 1 for v in (args.steps, args.batch_size, args.workers)):
        raise SystemExit("error: --steps, --batch-size and --workers must be positive")
    config = replace(TrainConfig(), **changes)
    paths = write_tasks(build_world(world), args.tasks_out or TASK_DATA)
    out = args.out or TOY_CHECKPOINT
    log = train(out, world=world, config=config, device=args.device)
    last = log[-1]
    print(f"trained {last['step']} steps in {last['seconds']} s, final loss {last['loss']}")
    print(f"saved to {out}; task data in {paths['knowledge'].parent}", file=sys.stderr)
    return 0


def add_published(sub) -> None:
    p = sub.add_parser(
        "published",
        help="print the published Llama-3.2 results as CSV, or rebuild the package's tables",
        description="Print one of the published tables (benchmarks, efficiency, criteria) as "
        "CSV, or rebuild all of them from the study's result files with --rebuild.",
    )
    p.add_argument("--kind", default="benchmarks", help="benchmarks, efficiency or criteria")
    p.add_argument(
        "--rebuild", type=Path, metavar="REFERENCE_DIR", help="folder holding paper-repo-data/"
    )
    p.add_argument(
        "--out", type=Path, default=None, help="where --rebuild writes (default: package)"
    )
    p.set_defaults(run_command=run_published)


def run_published(args) -> int:
    from .analysis.published import published, write_published_tables

    if args.rebuild is not None:
        for path in write_published_tables(args.rebuild, args.out):
            print(f"wrote {path}", file=sys.stderr)
        return 0
    published(args.kind).to_csv(sys.stdout, index=False)
    return 0


def add_export_gguf(sub) -> None:
    p = sub.add_parser(
        "export-gguf",
        help="write a (pruned) checkpoint as a GGUF file for llama.cpp",
        description="Convert a checkpoint with llama.cpp's converter (F16) and quantize it with "
        "llama.cpp's quantizer; report what each tensor type became, the file size and bits per "
        "weight. Needs `make deploy`.",
    )
    p.add_argument("model", help='a checkpoint folder or a packaged model name ("toy" too)')
    p.add_argument("--out", type=Path, required=True, help="the GGUF file to write")
    p.add_argument("--quant", default="Q4_K_M", help="F16, Q8_0, Q4_0, Q4_K_M, Q5_K_M or Q6_K")
    p.add_argument("--strict", action="store_true", help="refuse a width not fully quantized")
    p.add_argument("--check", action="store_true", help="compare llama.cpp (F16) with PyTorch")
    p.add_argument("--threads", type=int, default=0, help="quantizer threads (0: all cores)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --out file")
    p.set_defaults(run_command=run_export_gguf)


def run_export_gguf(args) -> int:
    import tempfile
    import warnings

    import pandas as pd

    from .deployment import export
    from .deployment.tensors import WidthWarning

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", WidthWarning)  # others keep their filters
        check_dir = tempfile.TemporaryDirectory(prefix="gguf-check-") if args.check else None
        f16 = Path(check_dir.name, "check-f16.gguf") if check_dir else None
        try:
            result = export.export_gguf(
                args.model,
                args.out,
                quant=args.quant,
                strict=args.strict,
                keep_f16=f16,
                overwrite=args.overwrite,
                threads=args.threads,
            )
        except RuntimeError as err:  # llama.cpp's own failure, said in its words
            print(f"widthprune export-gguf: {err}", file=sys.stderr)
            return 1
        finally:
            for w in caught:  # the export's own advice, in its words; the rest as Python shows it
                if issubclass(w.category, WidthWarning):
                    print(f"widthprune export-gguf: warning: {w.message}", file=sys.stderr)
                else:
                    warnings.showwarning(w.message, w.category, w.filename, w.lineno)
    print(pd.DataFrame(result.tensors).to_string(index=False))
    print(
        f"{result.path}: {result.quant}, width {result.width}, {result.mib:.1f} MiB, "
        f"{result.bits_per_weight:.2f} bits per weight, vocabulary {result.vocabulary!r}"
    )
    if check_dir is None:
        return 0
    from .deployment.equivalence import check_gguf
    from .models.loading import load

    model, tok = load(str(args.model))
    verdict = check_gguf(f16 if f16.exists() else result.path, model, tok)
    check_dir.cleanup()
    print(json.dumps(verdict, indent=2))
    return 0 if verdict["passed"] else 1


from .chapters.grading import add_check_exercises  # noqa: E402


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="widthprune", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    add_prune(sub)
    add_sweep(sub)
    add_chapters(sub)
    add_check_book(sub)
    add_evaluate(sub)
    add_toy(sub)
    add_published(sub)
    add_export_gguf(sub)
    add_check_exercises(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.run_command(args)
    except KeyboardInterrupt:
        print(f"widthprune {args.command}: interrupted", file=sys.stderr)
        return 130
    except USER_ERRORS as err:
        if os.environ.get("WIDTHPRUNE_DEBUG"):
            raise
        message = err.args[0] if isinstance(err, KeyError) and err.args else err
        print(f"widthprune {args.command}: error: {message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
