"""How long each step of the book takes: every chapter, and the sweep, as a student runs them.

Usage: python benchmarks/bench_chapters.py [--out CSV] [--exercises-out CSV] [--workdir DIR]
                                           [--steps STEP ...] [--no-exercises]

Run it on an otherwise idle 2-core machine: the chapters announce each step's wall time, what
a student waits. In a fresh working folder (an empty results store), the chapters run with their
default parameters in reading order, with the default sweep of chapter 4 (`make sweep`) between
chapter 4 and chapter 5 and `make book`'s sweep of the real small model before chapter 8, as
`make book` and a student working through the book run them. Chapter 4 comes first on its own,
so its time is that of one evaluation; the sweep then reuses that configuration from the store.

Each row also holds the step's CPU time (this process and the notebook kernels it ran) and the
machine's one-minute load average when it started. A sweep's row counts the configurations it
evaluated, so that a resumed sweep (`--steps sweep` after an interruption: the store keeps what
was done) still gives the time of one evaluation. With `--steps`, the rows of the steps run
replace their earlier rows and the others are kept.

After each chapter, its exercises are timed as a student meets them (`exercises_out`, read by
`widthprune.chapters.course.exercise_times`): the commands of each exercise's `bash` blocks run
as written, in the working folder, one after another; the cells a student fills in (solution and
self-check) count with the time papermill recorded for them in the chapter's run. Both files are
rewritten after every step, so an interrupted run keeps what it measured.
"""

from __future__ import annotations

import argparse
import csv
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from widthprune.chapters.course import cell_seconds, exercises
from widthprune.chapters.runner import CHAPTERS, run_chapters
from widthprune.runs.sweep import SweepConfig, run_sweep

ROOT = Path(__file__).resolve().parents[1]
SWEEP = SweepConfig()  # the default: the toy, ppm and wanda, the study's seven percentages
# `make book`'s sweep of the real small model, which chapter 8 reads (the Makefile's REAL_ARGS)
REAL_SWEEP = SweepConfig(
    models=("smollm2-135m-instruct",),
    criteria=("ppm",),
    pcts=(0, 20, 40, 60),
    tasks="real-laptop",
    limit=8,
    run="smollm2-sweep",
)
REAL_COMMAND = (
    "widthprune sweep --models smollm2-135m-instruct --criteria ppm --pcts 0 20 40 60 "
    "--tasks real-laptop --limit 8 --run smollm2-sweep --no-reports"
)
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
EXERCISE_COLUMNS = [
    "chapter",
    "exercise",
    "stars",
    "kind",
    "cells_seconds",
    "command_seconds",
    "command_cpu_seconds",
    "seconds",
    "commands",
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
        if name == "07_efficiency":
            out.append(("real_sweep", REAL_COMMAND))
    return out


def run_step(step: str, work: Path) -> int | None:
    """Run one step in ``work``, whose ``notebooks`` and ``benchmarks`` are the repository's.

    Returns:
        For the sweep, how many configurations it evaluated now (not read back); else None.
    """
    if step in ("sweep", "real_sweep"):
        outcomes = run_sweep(
            SWEEP if step == "sweep" else REAL_SWEEP,
            notebooks=work / "notebooks",
            out_dir=work / "book/generated/sweep",
            results_dir=work / "results",
            cwd=work,
            reports=step == "sweep",  # `make sweep` reports; `make book`'s real sweep does not
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


def machine() -> str:
    return f"{platform.machine()} {platform.system()}, Python {platform.python_version()}"


def time_exercises(chapter: str, work: Path) -> list[dict]:
    """Run the exercises of ``chapter`` after the chapter ran in ``work``; one row each."""
    executed = work / "book/generated" / f"{chapter}.ipynb"
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    rows = []
    for exercise in exercises(ROOT / "notebooks" / f"{chapter}.ipynb"):
        load = os.getloadavg()[0]
        cells = cell_seconds(executed, exercise.cells)
        t0, c0 = time.perf_counter(), cpu_seconds()
        for command in exercise.commands:
            done = subprocess.run(command, shell=True, cwd=work, env=env, capture_output=True)
            if done.returncode != 0:
                tail = done.stderr.decode(errors="replace").strip().splitlines()[-3:]
                raise RuntimeError(
                    f"{chapter} exercise {exercise.number}: `{command}` failed: {tail}"
                )
        wall, cpu = time.perf_counter() - t0, cpu_seconds() - c0
        print(
            f"  exercise {exercise.number} ({exercise.kind}): cells {cells:6.1f} s, "
            f"commands {wall:6.1f} s wall, {cpu:6.1f} s cpu",
            flush=True,
        )
        rows.append(
            {
                "chapter": chapter,
                "exercise": exercise.number,
                "stars": exercise.stars,
                "kind": exercise.kind,
                "cells_seconds": round(cells, 1),
                "command_seconds": round(wall, 1),
                "command_cpu_seconds": round(cpu, 1),
                "seconds": round(cells + wall, 1),
                "commands": " && ".join(exercise.commands),
                "cpus": os.cpu_count(),
                "load": round(load, 2),
                "machine": machine(),
                "date": time.strftime("%Y-%m-%d"),
            }
        )
    return rows


def write_rows(path: Path, rows: list[dict], columns: list[str], key, order: list) -> None:
    """Write ``rows`` to ``path`` atomically, keeping its rows of other keys (in ``order``)."""
    kept = {}
    if path.exists():
        with path.open(newline="") as f:
            kept = {key(r): r for r in csv.DictReader(f)}
    kept.update({key(r): r for r in rows})
    ordered = sorted(kept.values(), key=lambda r: order.index(key(r)) if key(r) in order else 1e9)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial")
    with partial.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns)
        writer.writeheader()
        writer.writerows(ordered)
    partial.replace(path)


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
        "--exercises-out",
        type=Path,
        default=ROOT / "src/widthprune/chapters/data/exercise_times.csv",
    )
    parser.add_argument(
        "--steps",
        nargs="+",
        choices=[step for step, _ in steps()],
        help="run only these steps (default: all), keeping the other rows of --out",
    )
    parser.add_argument("--no-exercises", action="store_true", help="time the chapters only")
    args = parser.parse_args()
    chosen = [(step, command) for step, command in steps() if step in (args.steps or [step])]
    order = [step for step, _ in steps()]
    exercise_order = [
        (name, str(e.number))
        for name in CHAPTERS
        for e in exercises(ROOT / "notebooks" / f"{name}.ipynb")
    ]
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
            row = {
                "step": step,
                "cpu_seconds": round(cpu, 1),
                "wall_seconds": round(wall, 1),
                "configurations": configurations,
                "command": command,
                "cpus": os.cpu_count(),
                "load": round(load, 2),
                "machine": machine(),
                "date": time.strftime("%Y-%m-%d"),
            }
            write_rows(args.out, [row], COLUMNS, lambda r: r["step"], order)
            if step in CHAPTERS and not args.no_exercises:
                write_rows(
                    args.exercises_out,
                    time_exercises(step, work),
                    EXERCISE_COLUMNS,
                    lambda r: (r["chapter"], str(r["exercise"])),
                    exercise_order,
                )
    print(f"{len(chosen)} steps -> {args.out}, {args.exercises_out}")


if __name__ == "__main__":
    main()
