"""The course around the book: how long each step of the book takes on a 2-core laptop.

The times are recorded measurements (package data ``chapters/data/chapter_times.csv``, written
by ``benchmarks/bench_chapters.py``): every chapter run once with its default parameters, in the
order a student meets them. A step's time is its CPU time, notebook kernels included: on an
otherwise idle 2-core laptop it takes about that long or less (less where both cores work at
once), whereas its wall time on the shared machine that recorded it also counts the other
users. Where a row holds only a wall time, that time, an upper bound, is used; where it holds
neither, the step was not measured and its time is NaN (the book says "not measured").

A sweep runs chapter 4 once per configuration. Its time is a recorded sweep row's, scaled to
the configurations the default sweep holds; with no sweep recorded it is not measured (NaN),
never chapter 4's time multiplied out.
"""

from __future__ import annotations

from importlib.resources import files

import pandas as pd

__all__ = [
    "TIMES_FILE",
    "chapter_seconds",
    "chapter_times",
    "configuration_seconds",
    "describe_time",
    "sweep_configurations",
]

TIMES_FILE = files("widthprune.chapters") / "data" / "chapter_times.csv"


def chapter_times() -> pd.DataFrame:
    """The recorded run times of the book's steps.

    Returns:
        One row per step, in the order they ran: ``step`` (a chapter such as ``01_anatomy``,
        or ``sweep`` for chapter 4 once per configuration of the default sweep),
        ``cpu_seconds`` (empty where not recorded), ``wall_seconds``, ``configurations`` (for a
        sweep: how many it evaluated), ``command`` (what ran), ``cpus``, ``load`` (the
        machine's one-minute load average when the step started), ``machine`` and ``date``.
    """
    with TIMES_FILE.open() as f:
        return pd.read_csv(f)


def sweep_configurations() -> int:
    """How many configurations the default sweep (``make sweep``) evaluates."""
    from ..runs.sweep import SweepConfig

    return len(SweepConfig().points())


def _seconds(row: pd.Series) -> float:
    """The step's CPU time, else its wall time, else NaN: not measured."""
    return float(row["wall_seconds"] if pd.isna(row["cpu_seconds"]) else row["cpu_seconds"])


def configuration_seconds() -> float:
    """Seconds of one evaluation of a default configuration of the bundled model."""
    times = chapter_times().set_index("step")
    if "sweep" in times.index:
        return _seconds(times.loc["sweep"]) / int(times.loc["sweep", "configurations"])
    return _seconds(times.loc["04_evaluate"])


def chapter_seconds(step: str) -> float:
    """Seconds of ``step``: a chapter (its recorded CPU time, else its wall time), or
    ``"sweep"``, the whole default sweep.

    Raises:
        KeyError: no such step; the message lists the chapters recorded.
    """
    times = chapter_times().set_index("step")
    if step == "sweep":
        if "sweep" not in times.index:
            return float("nan")  # not measured: an estimate from chapter 4 would be extrapolated
        return configuration_seconds() * sweep_configurations()
    if step not in times.index:
        raise KeyError(f"No recorded time for {step!r}; recorded: {list(times.index)}")
    return _seconds(times.loc[step])


def describe_time(step: str) -> str:
    """A step's time as the book writes it: "about 38 s", "about 19 min" or "not measured"."""
    seconds = chapter_seconds(step)
    if seconds != seconds:  # NaN
        return "not measured on an idle machine"
    return f"about {seconds:.0f} s" if seconds < 120 else f"about {seconds / 60:.0f} min"
