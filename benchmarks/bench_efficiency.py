"""Time, memory and energy of Llama-3.2 shapes at the study's MLP widths and aligned neighbours.

Random weights of the exact shapes (efficiency does not depend on weight values), bf16, greedy
generation of exactly --new-tokens tokens after a --prompt-len prompt, on three paths (see
widthprune.efficiency). Writes a tidy CSV (rewritten atomically after every measurement, so a
run that dies keeps what it measured) and a provenance JSON beside it.

The whole set of measurements is repeated --rounds times, each round in its own random order
(--seed), so no width owes its figure to its place in the run; the spread across rounds is
printed at the end. A throw-away model of the first shape warms the process up first, and each
measurement runs --warmup untimed requests of its batch and path before its timed ones.

    python benchmarks/bench_efficiency.py --out benchmarks/results/efficiency_h100.csv
    python benchmarks/bench_efficiency.py --quick --rounds 2 --out /tmp/eff.csv  # CPU, seconds

The rounds of chapter 7 (1B shape, the study's widths and 7373's aligned neighbours, graph path
at batch 1 and 8, three rounds; about 4 minutes on one H100, never past the 420 s deadline):

    python benchmarks/bench_efficiency.py --shapes llama-3.2-1b --neighbours 7296 7424 \
        --paths static_cudagraph --batches 1 8 --rounds 3 --deadline 420 \
        --out benchmarks/results/efficiency_h200_rounds.csv
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import sys
import time
from dataclasses import asdict, replace
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd
import torch
from tqdm.auto import tqdm

import widthprune as wp
from widthprune.efficiency.energy import EnergyMeter
from widthprune.efficiency.roofline import aligned_neighbours, copy_bandwidth
from widthprune.efficiency.rounds import (
    measured_keys,
    order_rounds,
    plan_measurements,
    summarise_rounds,
)
from widthprune.efficiency.timing import COLUMNS, PATHS, BenchSettings, load_measurements, measure

STUDY_WIDTHS = [8192, 7373, 6554, 5735, 4916, 4096, 3277]  # 0..60 % of 8192, floor rule


def neighbour_widths(widths: list[int], multiple: int = 128) -> list[int]:
    """The aligned widths just below and above each unaligned one."""
    out = []
    for w in widths:
        low, high = aligned_neighbours(w, multiple)
        out += [] if low == high else [low, high]
    return out


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ints, some_ints = {"nargs": "+", "type": int}, {"nargs": "+", "type": int, "default": None}
    p.add_argument("--shapes", nargs="+", default=["llama-3.2-1b", "llama-3.2-3b"])
    p.add_argument("--widths", **ints, default=STUDY_WIDTHS, help="timed on every path")
    p.add_argument(
        "--neighbours",
        **{**some_ints, "nargs": "*"},
        help="timed on the graph paths only (default: the 128-aligned neighbours of the "
        "unaligned --widths)",
    )
    p.add_argument("--batches", **ints, default=[1, 8, 32])
    p.add_argument("--plain-batches", **some_ints, help="of hf_generate (default: --batches)")
    p.add_argument("--compiled-batches", **some_ints, help="of compiled_cudagraph (the same)")
    p.add_argument("--paths", nargs="+", default=list(PATHS[1:3] + PATHS[:1]), choices=PATHS[:3])
    p.add_argument("--resume", type=Path, help="an earlier run's CSV: what it measured is kept")
    p.add_argument(
        "--redo",
        nargs="*",
        default=[],
        metavar="SHAPE:WIDTH:PATH",
        help="measurements of the --resume CSV to drop and measure again (in every round)",
    )
    p.add_argument("--prompt-len", type=int, default=512)
    p.add_argument("--new-tokens", type=int, default=128)
    p.add_argument("--min-runs", type=int, default=3, help="timed requests per measurement")
    p.add_argument("--plain-min-runs", type=int, default=2, help="the same for hf_generate")
    p.add_argument("--warmup", type=int, default=2, help="untimed requests before each timing")
    p.add_argument("--rounds", type=int, default=1, help="repetitions of the whole plan")
    p.add_argument("--seed", type=int, default=0, help="seed of the order within each round")
    p.add_argument("--min-window", type=float, default=1.0, help="energy window, seconds")
    p.add_argument("--idle-seconds", type=float, default=3.0, help="idle power window")
    p.add_argument("--deadline", type=float, default=float("inf"), help="seconds; then no new one")
    p.add_argument("--git-commit", default="", help="recorded in the provenance")
    p.add_argument("--quick", action="store_true", help="tiny shape on the CPU, seconds")
    p.add_argument("--out", type=Path, required=True, help="CSV path; the JSON goes beside it")
    args = p.parse_args(argv)
    if args.rounds < 1 or args.warmup < 0:
        p.error(f"need --rounds >= 1 and --warmup >= 0, got {args.rounds} and {args.warmup}")
    return args


def tiny_shape(width: int):
    """A 2-layer miniature of the 1B shape for smoke runs."""
    heads = {"num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 16}
    tokens = {"vocab_size": 256, "rope_scaling": None, "bos_token_id": 1, "eos_token_id": 2}
    base = wp.get_shape("llama-3.2-1b")
    sizes = {"hidden_size": 64, "intermediate_size": width, "num_hidden_layers": 2}
    return replace(base, name="tiny", **sizes, **heads, **tokens)


def build(shape: str, width: int, device: torch.device, quick: bool):
    if quick:
        from transformers import LlamaForCausalLM

        torch.manual_seed(0)
        return LlamaForCausalLM(wp.llama_config(tiny_shape(width))).eval().to(device)
    return wp.random_model(shape, dtype=torch.bfloat16, intermediate_size=width, device=device)


def device_rows(device: str, gb_s: float, idle_w: float, reason: str) -> pd.DataFrame:
    """The run's copy bandwidth and idle power, as rows of the results table."""
    base = {"device": device, "path": "", "n": 1, "reason": ""}
    rows = [
        {**base, "metric": "copy_bandwidth", "value": gb_s, "unit": "GB/s", "n": 20},
        {**base, "metric": "idle_power", "value": idle_w, "unit": "W", "reason": reason},
    ]
    return pd.DataFrame(rows, columns=COLUMNS)


def write_provenance(provenance: dict, csv_path: Path) -> None:
    """The provenance JSON beside the CSV (NaN written as null)."""
    clean = json.loads(json.dumps(provenance), parse_constant=lambda _: None)
    tmp = csv_path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(clean, indent=2) + "\n")
    os.replace(tmp, csv_path.with_suffix(".json"))


def write_atomic(frame: pd.DataFrame, path: Path) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    frame.to_csv(tmp, index=False)
    os.replace(tmp, path)


def warm_up(plan, settings: BenchSettings, meter: EnergyMeter, args, device) -> float:
    """Measure a throw-away model of the first planned shape once per planned batch and path.

    The first measurements of a process run slowest (kernels load, libraries pick algorithms,
    torch.compile compiles); this takes that cost before anything is timed. Returns seconds.
    """
    start, shape = time.perf_counter(), plan[0][1][0]
    model = build(shape, max(args.widths), device, args.quick)
    brief = replace(settings, min_runs=1, min_window_s=0.0, warmup=1)
    for batch, path in dict.fromkeys((b, p) for _, (_, _, b, p) in plan):
        measure(model, shape=shape, batch=batch, path=path, settings=brief, meter=meter)
    del model
    gc.collect()
    torch.cuda.empty_cache() if device.type == "cuda" else None
    return time.perf_counter() - start


def print_spread(frame: pd.DataFrame) -> None:
    """Median and range across rounds of TPOT (ms) and energy per token (J/token)."""
    spread = summarise_rounds(frame).drop(columns=["q1", "q3"])
    if not spread.empty:
        print(
            "spread across rounds:\n" + spread.to_string(index=False, float_format="{:.4g}".format)
        )


def main(argv=None) -> None:
    args = parse_args(argv)
    start = time.perf_counter()
    device = torch.device("cuda" if torch.cuda.is_available() and not args.quick else "cpu")
    if args.quick:
        args.shapes, args.widths = ["tiny"], [256, 230]
        args.neighbours = [128, 256] if args.neighbours is None else args.neighbours
        args.batches, args.prompt_len, args.new_tokens = [1, 2], 32, 8
        args.min_window, args.idle_seconds, args.min_runs = 0.05, 0.1, 2
    neighbours = neighbour_widths(args.widths) if args.neighbours is None else args.neighbours
    settings = BenchSettings(
        args.prompt_len, args.new_tokens, args.min_runs, args.min_window, warmup=args.warmup
    )
    plain_settings = replace(settings, min_runs=args.plain_min_runs)
    args.out.parent.mkdir(parents=True, exist_ok=True)

    meter = EnergyMeter(device.index or 0 if device.type == "cuda" else None)
    gb_s = copy_bandwidth(device, nbytes=(1 << 31) if device.type == "cuda" else 1 << 26) / 1e9
    idle_w = meter.idle_power(args.idle_seconds)
    dev_name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    print(
        f"device {dev_name}: copy bandwidth {gb_s:.0f} GB/s, idle power {idle_w:.1f} W "
        f"({meter.reason or 'NVML ok'})",
        flush=True,
    )
    frames, done = [], set()
    if args.resume:  # keep the earlier successes; failed measurements are tried again
        old = load_measurements(args.resume)
        redo = [(sh, int(w), p) for sh, w, p in (r.split(":") for r in args.redo)]
        done = measured_keys(old, redo)
        group = old["path"].replace({"static_eager": "static_cudagraph"})
        keys = zip(old["shape"], old["width"], old["batch"], group, old["round"], strict=True)
        keep = [pd.isna(w) or (s_, int(w), int(b), p, int(r)) in done for s_, w, b, p, r in keys]
        frames.append(old[keep])
    frames.append(device_rows(dev_name, gb_s, idle_w, meter.reason))
    batches_of = {"static_cudagraph": args.batches}
    batches_of["compiled_cudagraph"] = args.compiled_batches or args.batches
    batches_of["hf_generate"] = args.plain_batches or args.batches
    items = plan_measurements(args.shapes, args.widths, neighbours, batches_of, args.paths)
    plan = [(r, m) for r, m in order_rounds(items, args.rounds, args.seed) if (*m, r) not in done]
    previous = None
    if args.resume and args.resume.with_suffix(".json").exists():
        previous = json.loads(args.resume.with_suffix(".json").read_text())
    provenance = {
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "date_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "git_commit": args.git_commit,
        "device": dev_name,
        "driver": meter.driver,
        "nvml": meter.reason or "ok",
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "transformers": __import__("transformers").__version__,
        "widthprune": wp.__version__,
        "python": platform.python_version(),
        "copy_bandwidth_gb_s": gb_s,
        "idle_power_w": idle_w,
        "settings": asdict(settings),
        "plain_min_runs": args.plain_min_runs,
        "widths": args.widths,
        "neighbours": neighbours,
        "batches": args.batches,
        "batches_by_path": batches_of,
        "rounds": args.rounds,
        "seed": args.seed,  # each round's order: widthprune.efficiency.rounds.order_rounds
        "resumed_from": str(args.resume) if args.resume else None,
        "previous_run": previous,
        "finished": False,  # True once every planned measurement ran or was skipped
        "warm_up_seconds": None,
        "skipped_after_deadline": [],
        "seconds": None,
    }
    write_provenance(provenance, args.out)
    if plan:
        provenance["warm_up_seconds"] = round(warm_up(plan, settings, meter, args, device), 1)
        print(f"process warm-up: {provenance['warm_up_seconds']} s", flush=True)
    skipped, model, built = [], None, None
    for r, (shape, width, batch, path) in tqdm(plan, desc="measurements"):
        if time.perf_counter() - start > args.deadline:
            skipped.append([shape, width, batch, path, r])
            continue
        if built != (shape, width):
            model = None
            gc.collect()
            torch.cuda.empty_cache() if device.type == "cuda" else None
            model, built = build(shape, width, device, args.quick), (shape, width)
        s = plain_settings if path == "hf_generate" else settings
        frame = measure(
            model,
            shape=shape,
            batch=batch,
            path=path,
            settings=s,
            meter=meter,
            idle_watts=idle_w,
            round_index=r,
        )
        frames.append(frame)
        write_atomic(pd.concat(frames, ignore_index=True), args.out)
        for name, g in frame.groupby("path", sort=False):
            v = g.set_index("metric")["value"]
            tqdm.write(
                f"round {r} {shape} w={width} b={batch} {name}: ttft {v['ttft']:.2f} ms, "
                f"tpot {v['tpot']:.3f} ms, {v['energy_per_token']:.4f} J/token "
                f"[{time.perf_counter() - start:.0f} s]"
            )
    results = pd.concat(frames, ignore_index=True)
    write_atomic(results, args.out)
    provenance.update(finished=True, skipped_after_deadline=skipped)
    provenance["seconds"] = round(time.perf_counter() - start, 1)
    write_provenance(provenance, args.out)
    print_spread(results)
    print(
        f"wrote {args.out} ({len(results)} rows) in {provenance['seconds']} s; "
        f"{len(skipped)} measurements skipped after the deadline",
        flush=True,
    )


if __name__ == "__main__":
    main()
