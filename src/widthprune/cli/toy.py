"""``widthprune toy``: the bundled toy's world and training."""

from __future__ import annotations

import os
import sys
from pathlib import Path


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
    from dataclasses import replace

    from ..models.loading import TOY_CHECKPOINT
    from ..toy import TASK_DATA, TrainConfig, WorldConfig, build_world, train, write_tasks

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
