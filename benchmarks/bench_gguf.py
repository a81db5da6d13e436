"""GGUF size and llama.cpp speed against the MLP width, on this machine's CPU.

For the unpruned model, the study's percentages (floor rule) and each one's widths aligned down
to multiples of --round-to, the model is pruned (ppm), exported to F16 through llama.cpp's
converter, quantized with llama.cpp's quantizer, and timed in llama.cpp: prefill of a
--prompt-tokens prompt in one batch and decode of --new-tokens tokens, --repeats times after a
warm-up. One CSV row per (width, quantization, repeat), rewritten atomically after each width
(a killed run keeps what it measured; --resume skips widths already there), and a provenance
JSON beside it (command, commit, versions, machine, load averages).

    python benchmarks/bench_gguf.py --model smollm2-135m-instruct
    python benchmarks/bench_gguf.py --shape llama-3.2-1b --sizes-only --quants Q4_K_M \\
        --out benchmarks/results/gguf_llama-3.2-1b_sizes.csv

--shape builds random weights of a named shape (speed and size do not depend on the values)
with SmolLM2's tokenizer, whose vocabulary the converter pads to the shape's.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd
import torch
from tqdm.auto import tqdm

import widthprune as wp
from widthprune.deployment.widths import measure_width, planned_widths
from widthprune.models.loading import REGISTERED
from widthprune.runs.config import STUDY_PCTS, cpu_name, git_commit, package_version

ROOT = Path(__file__).resolve().parents[1]
TOKENIZER_MODEL = "smollm2-135m-instruct"  # the tokenizer random shapes are written with


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    source = p.add_mutually_exclusive_group()
    source.add_argument("--model", default=None, help="a packaged model or checkpoint folder")
    source.add_argument("--shape", default=None, help="random weights of a named shape")
    p.add_argument("--pcts", nargs="+", type=float, default=[p for p in STUDY_PCTS if p > 0])
    p.add_argument("--round-to", nargs="+", type=int, default=[32, 64, 128, 256])
    p.add_argument("--widths", nargs="+", type=int, default=None, help="only these widths")
    p.add_argument("--quants", nargs="+", default=["F16", "Q8_0", "Q4_K_M"])
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--prompt-tokens", type=int, default=128)
    p.add_argument("--new-tokens", type=int, default=32)
    p.add_argument(
        "--threads",
        type=int,
        default=1,
        help="llama.cpp threads (1: on two cores shared with other work, two threads wait on "
        "each other at every step: 4x slower and 20x the spread, measured)",
    )
    p.add_argument("--sizes-only", action="store_true", help="export and measure size only")
    p.add_argument("--out", type=Path, default=None, help="CSV (default: benchmarks/results/)")
    p.add_argument("--resume", action="store_true", help="keep widths already in --out")
    args = p.parse_args(argv)
    if args.model is None and args.shape is None:
        args.model = "smollm2-135m-instruct"
    name = args.model or args.shape
    if args.out is None:
        args.out = ROOT / "benchmarks" / "results" / f"gguf_{Path(name).name}_cpu.csv"
    return args


def source_model(args):
    """(model in float32, tokenizer) of --model or --shape."""
    if args.shape:
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(REGISTERED[TOKENIZER_MODEL].checkpoint())
        return wp.random_model(args.shape, dtype=torch.float16), tokenizer
    return wp.load(args.model, dtype=torch.float32)


def provenance(args) -> dict:
    commit = git_commit() or ""
    versions = {
        d: package_version(d)
        for d in ("widthprune", "llama-cpp-python", "gguf", "torch", "transformers")
    }
    return {
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "git_commit": commit.removesuffix("-dirty"),
        "git_dirty": commit.endswith("-dirty"),
        "versions": versions,
        "python": platform.python_version(),
        "machine": {"cpu": cpu_name(), "cores": os.cpu_count(), "system": platform.platform()},
        "started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "load_average_start": os.getloadavg(),
        "settings": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
    }


def write_atomic(frame: pd.DataFrame, info: dict, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    for target, text in (
        (path, frame.to_csv(index=False)),
        (path.with_suffix(".json"), json.dumps(info, indent=2) + "\n"),
    ):
        tmp = target.with_name(f".tmp-{target.name}")
        tmp.write_text(text)
        os.replace(tmp, target)


def main(argv=None) -> int:
    args = parse_args(argv)
    info = provenance(args)
    model, tokenizer = source_model(args)
    rows = planned_widths(model.config, args.pcts, args.round_to)
    if args.widths:
        rows = [r for r in rows if r["width"] in set(args.widths)]
    done = pd.read_csv(args.out) if args.resume and args.out.exists() else pd.DataFrame()
    have = set(done["width"]) if len(done) else set()
    frames = [done] if len(done) else []
    start = time.perf_counter()
    work = Path(tempfile.mkdtemp(prefix="bench-gguf-"))
    try:
        for row in tqdm([r for r in rows if r["width"] not in have], desc="widths"):
            row = {"model": args.model or args.shape, **row}
            frames.append(
                measure_width(
                    model,
                    tokenizer,
                    row,
                    work,
                    quants=args.quants,
                    sizes_only=args.sizes_only,
                    prompt_tokens=args.prompt_tokens,
                    new_tokens=args.new_tokens,
                    repeats=args.repeats,
                    threads=args.threads,
                )
            )
            info.update(load_average_now=os.getloadavg(), seconds=time.perf_counter() - start)
            write_atomic(pd.concat(frames, ignore_index=True), info, args.out)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    info.update(finished=True, seconds=round(time.perf_counter() - start, 1))
    write_atomic(pd.concat(frames, ignore_index=True), info, args.out)
    print(f"wrote {args.out} in {info['seconds']} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except (ValueError, FileNotFoundError) as err:
        print(f"bench_gguf: error: {err}", file=sys.stderr)
        sys.exit(2)
