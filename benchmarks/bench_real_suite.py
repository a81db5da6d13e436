"""The real task suite's time per configuration of SmolLM2-135M-Instruct, task by task, on a CPU.

Usage: python benchmarks/bench_real_suite.py [--tasks real-laptop] [--limit 16] [--pct 40]

Loads the model (from its converted cache), prunes it by ``ppm`` to --pct (0: unpruned) and
evaluates each task of the preset on its own at --limit items, the way one configuration of a
sweep does (the CPU batch rule of ``wp.evaluate``), timing each with the clock on the wall.
The header is the run's provenance (command, commit, versions, machine, load average); the
last lines give the total. Loading a task (building its prompts from the whole split) is a
fixed cost, so the time does not scale with --limit.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import sys
import time

import torch

import widthprune as wp
from widthprune.evaluation.catalogue import PRESETS, preset_tasks
from widthprune.runs.config import git_commit, package_version

NAME = "smollm2-135m-instruct"
PACKAGES = ("torch", "transformers", "lm_eval", "widthprune")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", default="real-laptop", help="a preset or comma-separated tasks")
    parser.add_argument("--limit", type=int, default=16)
    parser.add_argument("--pct", type=float, default=40.0, help="share of neurons pruned (ppm)")
    args = parser.parse_args()
    names = preset_tasks(args.tasks)
    shots = PRESETS.get(args.tasks, {})
    print(f"# {' '.join(sys.argv)}")
    print(f"# commit {git_commit()}, {datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC")
    print(f"# {', '.join(f'{p} {package_version(p)}' for p in PACKAGES)}")
    print(
        f"# {platform.machine()} {platform.system()}, {os.cpu_count()} CPUs, torch threads "
        f"{torch.get_num_threads()}, load average {os.getloadavg()[0]:.1f}"
    )
    t0 = time.perf_counter()
    model, tok = wp.load(NAME)
    if args.pct:
        wp.prune(model, criterion="ppm", pruning_pct=args.pct)
    print(f"load and prune: {time.perf_counter() - t0:.1f} s")
    total = 0.0
    for name in names:
        t = time.perf_counter()
        fewshot = {name: shots[name]} if shots.get(name) is not None else None
        result = wp.evaluate(model, tok, [name], num_fewshot=fewshot, limit=args.limit)
        seconds = time.perf_counter() - t
        n = int(result.summary["n"].max())
        total += seconds
        print(f"{name}: {seconds:.1f} s for {n} items", flush=True)
    print(f"total: {total:.1f} s for one configuration at --limit {args.limit}")
    print(f"load average at the end {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
