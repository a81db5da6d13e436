"""``widthprune recover``: a pruned checkpoint distilled from its unpruned teacher, saved."""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

from ..runs.config import DTYPES


def add_recover(sub) -> None:
    p = sub.add_parser(
        "recover",
        help="distil a pruned checkpoint from the unpruned model and save it",
        description="Train a pruned model (a folder `widthprune prune` wrote) on the unpruned "
        "model's next-token distributions over a text, every parameter (kd) or through LoRA "
        "adapters merged back (lora); save it as a plain checkpoint with recovery.json.",
    )
    p.add_argument("student", type=Path, help="the pruned checkpoint folder")
    p.add_argument(
        "--teacher", required=True, help='the unpruned model: "toy", a packaged name or a folder'
    )
    p.add_argument(
        "--text", default="toy", help='"toy", "lambada" (real text) or a text file (default: toy)'
    )
    p.add_argument("--method", choices=["kd", "lora"], default="kd")
    p.add_argument("--steps", type=int, default=200)
    p.add_argument("--lr", type=float, default=1e-4)
    p.add_argument("--temperature", type=float, default=1.0)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--seq-len", type=int, default=128)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cpu")
    p.add_argument("--dtype", choices=DTYPES, default="auto")
    p.add_argument("--out", type=Path, required=True, help="output folder")
    p.add_argument("--overwrite", action="store_true", help="replace a non-empty --out folder")
    p.set_defaults(run_command=run_recover)


def run_recover(args) -> int:
    import torch

    from ..models.loading import check_checkpoint_folder, load
    from ..pruning.recovery import recover, recovery_texts
    from ..pruning.surgery import check_output_folder, save_pruned
    from ..runs.fingerprint import checkpoint_folder

    if args.steps < 1 or args.batch_size < 1 or args.seq_len < 2:
        raise ValueError("--steps and --batch-size must be >= 1 and --seq-len >= 2")
    check_checkpoint_folder(args.student)
    check_output_folder(args.out, overwrite=args.overwrite, source=args.student)
    teacher_source = checkpoint_folder(args.teacher)
    if teacher_source is not None:
        check_output_folder(args.out, overwrite=args.overwrite, source=teacher_source)
    texts = recovery_texts(args.text)  # a missing file fails before any model loads
    dtype = None if args.dtype == "auto" else getattr(torch, args.dtype)
    student, tokenizer = load(args.student, dtype=dtype, device=args.device)
    teacher, _ = load(args.teacher, dtype=dtype, device=args.device)
    recovered, report = recover(
        student,
        teacher,
        texts,
        tokenizer=tokenizer,
        steps=args.steps,
        lr=args.lr,
        seed=args.seed,
        method=args.method,
        temperature=args.temperature,
        batch_size=args.batch_size,
        seq_len=args.seq_len,
    )
    save_pruned(recovered, args.out, tokenizer=tokenizer, overwrite=args.overwrite)
    record = {
        "student": str(args.student),
        "teacher": args.teacher,
        "text": args.text,
        "text_digest": hashlib.sha256("\0".join(texts).encode()).hexdigest(),
        "text_documents": len(texts),
        **report.to_dict(),
    }
    (Path(args.out) / "recovery.json").write_text(json.dumps(record, indent=2) + "\n")
    first, last = report.losses[0], report.losses[-1]
    print(
        f"{args.method}: {report.steps} steps, {report.tokens:,} tokens, {report.seconds:.1f} s; "
        f"loss {first:.4f} -> {last:.4f}"
    )
    print(f"saved to {args.out}", file=sys.stderr)
    return 0
