"""How long each step of the book takes: every chapter, and the sweep, as a student runs them.

Usage: python benchmarks/bench_chapters.py [--out CSV] [--workdir DIR] [--steps STEP ...]

In a fresh working folder (an empty results store), the chapters run with their default
parameters in reading order, with the default sweep of chapter 4 (`make sweep`) between chapter
4 and chapter 5, exactly as `make book` and a student working through the book would run them.
Chapter 4 comes first on its own, so its time is that of one evaluation; the sweep then reuses
that configuration from the store.

Each step's CPU time (this process and the notebook kernels it ran) is what the chapters
announce: a step cannot take longer than that on an otherwise idle 2-core laptop, while its wall
time on a shared machine measures the other users too. The sweep's row also counts the
configurations it evaluated, so that a resumed sweep (`--steps sweep` after an interruption:
the store keeps what was done) still gives the time of one evaluation. Rows are written, with
the machine's load average, to the CSV the chapters read; with `--steps`, the rows of the steps
run replace their earlier rows there and the others are kept.
"""

from __future__ import annotations

import argparse
import csv
import os
import platform
import resource
import tempfile
import time
from pathlib import Path

from widthprune.chapters.runner import CHAPTERS, run_chapters
from widthprune.runs.sweep import SweepConfig, run_sweep

ROOT = Path(__file__).resolve().parents[1]
SWEEP = SweepConfig()  # the default: the toy, ppm and wanda, the study's seven percentages
COLUMNS = [
    "step",
    "cpu_seconds",
    "wall_seconds",
    "configurations",
    "command",
    "cpus",
    "load",
    "machine",
    "date",
]


def steps() -> list[tuple[str, str]]:
    """(step, the command a student types for it), in the order they run."""
    out = []
    for name in CHAPTERS:
        out.append((name, f"widthprune chapters {name}"))
        if name == "04_evaluate":
            out.append(("sweep", "make sweep"))
    return out


def run_step(step: str, work: Path) -> int | None:
    """Run one step in ``work``, whose ``notebooks`` and ``benchmarks`` are the repository's.

    Returns:
        For the sweep, how many configurations it evaluated now (not read back); else None.
    """
    if step == "sweep":
        outcomes = run_sweep(
            SWEEP,
            notebooks=work / "notebooks",
            out_dir=work / "book/generated/sweep",
            results_dir=work / "results",
            cwd=work,
        )
        failed = [o for o in outcomes if o.status == "failed"]
        if failed:
            raise RuntimeError(f"{len(failed)} sweep points failed, the first: {failed[0].error}")
        return sum(o.status == "done" for o in outcomes)
    else:
        run_chapters(
            (step,), notebooks=work / "notebooks", out_dir=work / "book/generated", cwd=work
        )
    return None


def cpu_seconds() -> float:
    """User and system time of this process and of every child it has waited for."""
    own, children = (
        resource.getrusage(resource.RUSAGE_SELF),
        resource.getrusage(resource.RUSAGE_CHILDREN),
    )
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--out", type=Path, default=ROOT / "src/widthprune/chapters/data/chapter_times.csv"
    )
    parser.add_argument(
        "--workdir",
        type=Path,
        help="run in this folder (the repository root, say, so that `make book` reuses the sweep) "
        "instead of a fresh temporary one; its results store must not hold the sweep yet",
    )
    parser.add_argument(
        "--steps",
        nargs="+",
        choices=[step for step, _ in steps()],
        help="run only these steps (default: all), keeping the other rows of --out",
    )
    args = parser.parse_args()
    chosen = [(step, command) for step, command in steps() if step in (args.steps or [step])]
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-chapters-") as tmp:
        work = args.workdir or Path(tmp)
        for folder in ("notebooks", "benchmarks"):  # chapter 7 reads benchmarks/results
            if not (work / folder).exists():
                (work / folder).symlink_to(ROOT / folder)
        if args.steps is None and (work / "results" / SWEEP.run).exists():
            parser.error(f"{work / 'results' / SWEEP.run} exists: the sweep would be read back")
        for step, command in chosen:
            load = os.getloadavg()[0]
            t0, c0 = time.perf_counter(), cpu_seconds()
            configurations = run_step(step, work)
            wall, cpu = time.perf_counter() - t0, cpu_seconds() - c0
            print(f"{step:16s} cpu {cpu:7.1f} s  wall {wall:7.1f} s  (load {load:.1f})", flush=True)
            rows.append(
                {
                    "step": step,
                    "cpu_seconds": round(cpu, 1),
                    "wall_seconds": round(wall, 1),
                    "configurations": configurations,
                    "command": command,
                    "cpus": os.cpu_count(),
                    "load": round(load, 2),
                    "machine": f"{platform.machine()} {platform.system()}, Python "
                    f"{platform.python_version()}",
                    "date": time.strftime("%Y-%m-%d"),
                }
            )
    if args.steps and args.out.exists():  # keep the rows of the steps not run now
        with args.out.open(newline="") as f:
            kept = {r["step"]: r for r in csv.DictReader(f)}
        kept.update({r["step"]: r for r in rows})
        rows = [kept[step] for step, _ in steps() if step in kept]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    partial = args.out.with_suffix(".partial")
    with partial.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    partial.replace(args.out)
    print(f"{len(rows)} steps -> {args.out}")


if __name__ == "__main__":
    main()
