"""``widthprune evaluate``: one configuration evaluated and stored."""

from __future__ import annotations

import sys
from pathlib import Path

from ..runs.config import DEFAULT_BATCH_SIZE, DTYPES
from .arguments import (
    _add_pruning_arguments,
    _add_task_arguments,
    _batch_size,
    _check_calibration,
    _limit,
)


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
    from ..runs.config import EvalConfig

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
    from ..models.loading import check_device
    from ..runs.experiment import evaluate_config
    from ..runs.store import result_folder

    config = evaluate_config_from(args)
    check_device(config.device)
    _check_calibration(config)
    config.resolved_width()  # an impossible target fails before anything loads
    result = evaluate_config(config, run=args.run_name, root=args.root)
    print(result.summary.to_string(index=False))
    print(f"stored in {result_folder(config, args.run_name, args.root)}", file=sys.stderr)
    return 0
