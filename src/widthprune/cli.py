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
    p.set_defaults(run=run_published)


def run_published(args) -> int:
    from .published import published, write_published_tables

    try:
        if args.rebuild is not None:
            for path in write_published_tables(args.rebuild, args.out):
                print(f"wrote {path}", file=sys.stderr)
            return 0
        published(args.kind).to_csv(sys.stdout, index=False)
    except (ValueError, FileNotFoundError) as err:
        raise SystemExit(f"error: {err}") from err
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="widthprune", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    add_prune(sub)
    add_published(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
