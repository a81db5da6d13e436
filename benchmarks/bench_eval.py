"""One configuration evaluated through lm-eval's model class and through FastLM, task by task.

Usage (GPU; the CPU the same with --device cpu):

    python benchmarks/bench_eval.py --device cuda --tasks real --limit 1000 --out OUT

Loads SmolLM2-135M-Instruct once, prunes it (``--criterion`` at ``--pct``), and evaluates each
task of the preset on its own, first with ``--engines``' second engine (the new one), then the
first (the reference), timing each with the wall clock (after a warm-up that loads the task
machinery). The items each engine logged are kept under ``OUT/<engine>/<task>.jsonl.gz`` and
its time in ``OUT/times.json``, so a killed run resumes where it stopped (``--resume``). It
prints the seconds per task of both engines and their ratio, then the item-by-item agreement
(the same choice, the same text, the same rolling log-likelihood to 1e-4), and writes
``OUT/agreement.csv`` (per task) and ``OUT/differences.csv`` (each differing item with the
reference's margin between its two best choices). The header is the run's provenance.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import platform
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import torch

import widthprune as wp
from widthprune.evaluation.agreement import agreement_table, compare_records
from widthprune.evaluation.catalogue import PRESETS, preset_tasks
from widthprune.evaluation.harness import ENGINES
from widthprune.runs.config import cpu_name, git_commit, package_version

PACKAGES = ("torch", "transformers", "lm_eval", "widthprune")


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="smollm2-135m-instruct")
    p.add_argument("--criterion", default="ppm")
    p.add_argument("--pct", type=float, default=40.0, help="share of neurons pruned (0: none)")
    p.add_argument("--tasks", default="real", help="a preset or comma-separated task names")
    p.add_argument("--limit", type=int, default=1000)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"])
    p.add_argument("--engines", nargs=2, default=["lm-eval", "fast"], choices=ENGINES)
    p.add_argument("--batch-sizes", nargs=2, default=["64", "auto"],
                   help="each engine's batch size (the recorded GPU run used 64)")  # fmt: skip
    p.add_argument("--chat-template", action="store_true")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--commit", default=None, help="the commit to record (default: the checkout's)")
    p.add_argument("--resume", action="store_true", help="keep what OUT already holds")
    p.add_argument(
        "--deadline",
        type=float,
        default=None,
        help="start no task of the reference engine after S seconds (resume it later)",
    )
    return p.parse_args(argv)


def _batch(text: str):
    return int(text) if text.isdigit() else text


def _save(path: Path, records: list[dict]) -> None:
    tmp = path.with_suffix(".tmp")
    with gzip.open(tmp, "wt", encoding="utf-8") as fh:
        for r in records:
            fh.write(json.dumps(r, default=str) + "\n")
    os.replace(tmp, path)


def _load(path: Path) -> list[dict]:
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        return [json.loads(line) for line in fh]


def main(argv=None) -> None:
    args = parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    times_path = args.out / "times.json"
    times = json.loads(times_path.read_text()) if args.resume and times_path.exists() else {}
    names = preset_tasks(args.tasks)
    shots = PRESETS.get(args.tasks, {})
    device = torch.device(args.device)
    where = torch.cuda.get_device_name(device) if device.type == "cuda" else cpu_name()
    header = {
        "command": " ".join(sys.argv),
        "commit": args.commit or git_commit(),
        "date": f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        "versions": {p: package_version(p) for p in PACKAGES},
        "device": where,
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, torch threads "
        f"{torch.get_num_threads()}, load average {os.getloadavg()[0]:.1f}",
    }
    for key, value in header.items():
        print(f"# {key}: {value}", flush=True)
    t0 = time.perf_counter()
    model, tok = wp.load(args.model, dtype=getattr(torch, args.dtype), device=args.device)
    if args.pct:
        wp.prune(model, criterion=args.criterion, pruning_pct=args.pct)
    print(f"load and prune: {time.perf_counter() - t0:.1f} s", flush=True)
    start = time.perf_counter()
    # a warm-up that loads lm-eval's task machinery once, so the first task is not charged
    wp.evaluate(model, tok, ["real_capitals"], limit=1, engine=args.engines[1])
    # the new engine first: it is fast, and the reference's long tasks may need a later --resume
    for engine, batch in reversed(list(zip(args.engines, args.batch_sizes, strict=True))):
        folder = args.out / engine
        folder.mkdir(exist_ok=True)
        for name in names:
            key = f"{engine}/{name}"
            path = folder / f"{name}.jsonl.gz"
            if key in times and path.exists():
                continue
            late = args.deadline is not None and time.perf_counter() - start > args.deadline
            if engine == args.engines[0] and late:
                print(f"{key}: not started (deadline)", flush=True)
                continue
            fewshot = {name: shots[name]} if shots.get(name) is not None else None
            if device.type == "cuda":
                torch.cuda.synchronize()
            t = time.perf_counter()
            result = wp.evaluate(
                model,
                tok,
                [name],
                num_fewshot=fewshot,
                limit=args.limit,
                batch_size=_batch(batch),
                engine=engine,
                apply_chat_template=args.chat_template,
            )
            if device.type == "cuda":
                torch.cuda.synchronize()
            seconds = time.perf_counter() - t
            _save(path, result.records)
            times[key] = {"seconds": seconds, "items": len(result.records)}
            times_path.write_text(json.dumps({**times, "_provenance": header}, indent=1) + "\n")
            print(f"{key}: {seconds:.1f} s, {len(result.records)} items", flush=True)
    report(args, names, times)


def report(args, names, times) -> None:
    ref, new = args.engines
    rows, items = [], []
    for name in names:
        a, b = times.get(f"{ref}/{name}"), times.get(f"{new}/{name}")
        rows.append(
            {
                "task": name,
                f"{ref} s": a["seconds"] if a else float("nan"),
                f"{new} s": b["seconds"] if b else float("nan"),
            }
        )
        pa, pb = args.out / ref / f"{name}.jsonl.gz", args.out / new / f"{name}.jsonl.gz"
        if a and b and pa.exists() and pb.exists():
            items.append(compare_records(_load(pa), _load(pb)))
    table = pd.DataFrame(rows)
    table["ratio"] = table[f"{ref} s"] / table[f"{new} s"]
    both = table.dropna()
    total = both[[f"{ref} s", f"{new} s"]].sum()
    print("\nseconds per task\n" + table.to_string(index=False, float_format="%.2f"))
    print(
        f"total over the {len(both)} tasks both engines ran: {ref} {total.iloc[0]:.1f} s, "
        f"{new} {total.iloc[1]:.1f} s, ratio {total.iloc[0] / max(total.iloc[1], 1e-9):.1f}x"
    )
    if items:
        every = pd.concat(items, ignore_index=True)
        summary = agreement_table(every)
        summary.to_csv(args.out / "agreement.csv", index=False)
        every[~every["same"]].to_csv(args.out / "differences.csv", index=False)
        print("\nagreement item by item\n" + summary.to_string(index=False))


if __name__ == "__main__":
    main()
