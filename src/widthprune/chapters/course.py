"""The course around the book: how long each step of the book takes on a 2-core laptop.

The times are a recorded measurement (``benchmarks/bench_chapters.py`` writes them, package data
``chapters/data/chapter_times.csv``): every chapter run once with its default parameters, in
the order a student meets them, and the default sweep of chapter 4 that chapters 5 and 6 read.
A step's time is its CPU time, notebook kernels included: on an otherwise idle 2-core laptop it
takes about that long or less (less where both cores work at once), whereas its wall time on
the shared machine that recorded it also counts the other users.
"""

from __future__ import annotations

from importlib.resources import files

import pandas as pd

__all__ = ["TIMES_FILE", "chapter_seconds", "chapter_times"]

TIMES_FILE = files("widthprune.chapters") / "data" / "chapter_times.csv"


def chapter_times() -> pd.DataFrame:
    """The recorded run times of the book's steps.

    Returns:
        One row per step, in the order they ran: ``step`` (a chapter such as ``01_anatomy``,
        or ``sweep`` for chapter 4 once per configuration of the default sweep),
        ``cpu_seconds``, ``wall_seconds``, ``command`` (what a student types for it), ``cpus``,
        ``load`` (the machine's one-minute load average when the step started), ``machine`` and
        ``date``.
    """
    with TIMES_FILE.open() as f:
        return pd.read_csv(f)


def chapter_seconds(step: str) -> float:
    """CPU seconds of the recorded run of ``step`` (a chapter name or ``"sweep"``).

    Raises:
        KeyError: no such step; the message lists the recorded ones.
    """
    times = chapter_times().set_index("step")["cpu_seconds"]
    if step not in times.index:
        raise KeyError(f"No recorded time for {step!r}; recorded: {list(times.index)}")
    return float(times[step])
