"""The ``widthprune`` command line: one sub-command per stage of the pipeline."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

_DTYPES = {
    "auto": None,
    "float32": torch.float32,
    "bfloat16": torch.bfloat16,
    "float16": torch.float16,
}


def _read_texts(path: Path) -> list[str]:
    """Documents of a text file, separated by blank lines."""
    if not path.is_file():
        raise SystemExit(f"error: no calibration file at {path}")
    docs = [d.strip() for d in path.read_text(encoding="utf-8").split("\n\n")]
    return [d for d in docs if d]


def add_prune(sub) -> None:
    p = sub.add_parser(
        "prune",
        help="prune a model's GLU-MLP layers and save a standard checkpoint",
        description="Score every MLP neuron, keep the best per layer, save the pruned model "
        "(loadable with AutoModelForCausalLM.from_pretrained), its tokenizer and a JSON report.",
    )
    p.add_argument("model", help='"toy", a local checkpoint folder or a Hugging Face id')
    target = p.add_mutually_exclusive_group(required=True)
    target.add_argument("--ratio", type=float, help="target expansion ratio (width / hidden)")
    target.add_argument("--pct", type=float, help="percentage of neurons removed per layer")
    p.add_argument("--criterion", default="ppm", help="scoring rule (default: ppm)")
    p.add_argument("--round-to", type=int, default=None, help="align the width to a multiple")
    p.add_argument("--rounding", choices=["floor", "nearest"], default="floor")
    p.add_argument("--calibration", type=Path, help="text file for activation-aware criteria")
    p.add_argument("--calibration-samples", type=int, default=64)
    p.add_argument("--seq-len", type=int, default=256)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--dtype", choices=sorted(_DTYPES), default="auto")
    p.add_argument("--device", default="cpu")
    p.add_argument("--out", type=Path, required=True, help="output folder")
    p.set_defaults(run=run_prune)


def run_prune(args) -> int:
    from . import calibration_batches, load, prune, save_pruned
    from .scoring import ACTIVATION_CRITERIA, CRITERIA

    if args.criterion not in CRITERIA:
        raise SystemExit(f"error: unknown criterion {args.criterion!r}; valid: {sorted(CRITERIA)}")
    model, tok = load(args.model, dtype=_DTYPES[args.dtype], device=args.device)
    batches = None
    if args.criterion in ACTIVATION_CRITERIA:
        if args.calibration is None:
            raise SystemExit(f"error: --criterion {args.criterion} needs --calibration FILE")
        batches = calibration_batches(
            tok,
            _read_texts(args.calibration),
            n_samples=args.calibration_samples,
            seq_len=args.seq_len,
            seed=args.seed,
        )
    try:
        report = prune(
            model,
            criterion=args.criterion,
            expansion_ratio=args.ratio,
            pruning_pct=args.pct,
            round_to=args.round_to,
            rounding=args.rounding,
            calibration=batches,
            seed=args.seed,
            progress=True,
        )
    except ValueError as err:
        raise SystemExit(f"error: {err}") from err
    save_pruned(model, args.out, tokenizer=tok, report=report)
    print(json.dumps(report.to_dict(), indent=2))
    print(f"saved to {args.out}", file=sys.stderr)
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
    t.set_defaults(run=run_toy)
    d = toy_sub.add_parser("tasks", help="write the task data of the toy world")
    d.add_argument("--out", type=Path, default=None, help="folder (default: bundled)")
    d.add_argument("--seed", type=int, default=0, help="seed of the world")
    d.set_defaults(run=run_toy)


def run_toy(args) -> int:
    import os
    from dataclasses import replace

    from .models import TOY_CHECKPOINT
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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="widthprune", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    add_prune(sub)
    add_toy(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
