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


def add_evaluate(sub) -> None:
    p = sub.add_parser(
        "evaluate",
        help="evaluate a model (optionally pruned first) with lm-eval and store the result",
        description="Load a model, prune it if a criterion and target are given, run lm-eval "
        "and store summary, per-item samples and provenance under ROOT/RUN/<config id>/. "
        "A configuration already stored complete is not run again.",
    )
    p.add_argument("model", help='"toy", a local checkpoint folder or a Hugging Face id')
    p.add_argument("--tasks", default="toy", help='"toy", "paper" or comma-separated names')
    p.add_argument("--num-fewshot", type=int, default=None, help="shots for every task")
    p.add_argument("--limit", type=float, default=None, help="items per task (or fraction < 1)")
    p.add_argument("--run", dest="run_name", default="default", help="name of the run folder")
    p.add_argument("--root", type=Path, default=Path("results"), help="results folder")
    p.add_argument("--criterion", default=None, help="scoring rule; omit for the baseline")
    target = p.add_mutually_exclusive_group()
    target.add_argument("--ratio", type=float, help="target expansion ratio (width / hidden)")
    target.add_argument("--pct", type=float, help="percentage of neurons removed per layer")
    target.add_argument("--width", type=int, help="explicit MLP width")
    p.add_argument("--round-to", type=int, default=None, help="align the width to a multiple")
    p.add_argument("--rounding", choices=["floor", "nearest"], default="floor")
    p.add_argument("--calibration", default=None, help='"toy" or a text file')
    p.add_argument("--calibration-samples", type=int, default=64)
    p.add_argument("--seq-len", type=int, default=256)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--dtype", choices=sorted(_DTYPES), default="float32")
    p.add_argument("--device", default="cpu")
    p.add_argument("--batch-size", default="auto", help='int or "auto"')
    p.add_argument("--include-path", action="append", default=[], help="extra task folder")
    p.set_defaults(run=run_evaluate)


def run_evaluate(args) -> int:
    from .experiment import EvalConfig
    from .store import evaluate_config, result_folder

    tasks = args.tasks if "," not in args.tasks else tuple(args.tasks.split(","))
    limit = args.limit
    if limit is not None and limit >= 1:
        limit = int(limit)
    try:
        config = EvalConfig(
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
            tasks=tasks,
            num_fewshot=args.num_fewshot,
            limit=limit,
            seed=args.seed,
            dtype=args.dtype,
            device=args.device,
            batch_size=int(args.batch_size) if args.batch_size.isdigit() else args.batch_size,
            include_path=tuple(args.include_path),
        )
        result = evaluate_config(config, run=args.run_name, root=args.root)
    except (ValueError, FileNotFoundError) as err:
        raise SystemExit(f"error: {err}") from err
    print(result.summary.to_string(index=False))
    print(f"stored in {result_folder(config, args.run_name, args.root)}", file=sys.stderr)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="widthprune", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    add_prune(sub)
    add_evaluate(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
