"""The course around the book: how long each step of the book takes on a 2-core machine.

The times are recorded measurements (package data ``chapters/data/chapter_times.csv``, written
by ``benchmarks/bench_chapters.py`` on an otherwise idle 2-core machine): every chapter run once
with its default parameters, in the order a student meets them. A step's time is its wall time
there, what a student waits; its CPU time (notebook kernels included) is recorded beside it.
Where a row holds no wall time, the step was not measured and its time is NaN (the book says
"not measured").

A sweep runs chapter 4 once per configuration. Its time is the recorded sweep's, run after
chapter 4 as a student runs it; with no sweep recorded it is not measured (NaN), never chapter
4's time multiplied out.

Each exercise's computing time is measured too (``chapters/data/exercise_times.csv``, by the
same benchmark): the commands its text asks for (the ``bash`` blocks under it, run as written),
plus the cells a student fills in and runs (its solution and self-check cells, as long as the
book's own run of them took). A question without a command or a cell takes no computing; the
time to think and write is the student's and is not measured.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from importlib.resources import files
from pathlib import Path

import pandas as pd

__all__ = [
    "EXERCISE_TIMES_FILE",
    "TIMES_FILE",
    "Exercise",
    "cell_seconds",
    "describe_exercises",
    "exercise_seconds",
    "exercise_times",
    "exercises",
    "chapter_seconds",
    "chapter_times",
    "configuration_seconds",
    "describe_time",
    "sweep_configurations",
]

TIMES_FILE = files("widthprune.chapters") / "data" / "chapter_times.csv"
EXERCISE_TIMES_FILE = files("widthprune.chapters") / "data" / "exercise_times.csv"

_ITEM = re.compile(r"^(\d+)\. (★+)", re.M)
_BLOCK = re.compile(r"```bash\n(.*?)```", re.S)
_STUDENT_TAGS = {"solution", "self-check"}


@dataclass
class Exercise:
    """One exercise of a chapter, as its notebook states it.

    Attributes:
        number: its number in the chapter's list.
        stars: 1 (warm-up), 2 (core) or 3 (stretch).
        commands: the shell commands of its ``bash`` blocks, in order.
        cells: indices of the code cells the student fills in and runs (solution, self-check).
    """

    number: int
    stars: int
    commands: list[str] = field(default_factory=list)
    cells: list[int] = field(default_factory=list)

    @property
    def kind(self) -> str:
        """ "command", "code", "command and code" or "question" (nothing to compute)."""
        kinds = [k for k, v in (("command", self.commands), ("code", self.cells)) if v]
        return " and ".join(kinds) or "question"


def exercises(notebook: str | Path) -> list[Exercise]:
    """The exercises of a chapter notebook, read from its "Exercises" section.

    An exercise is a numbered item starred ★ to ★★★ of a markdown cell; its commands are the
    lines of the ``bash`` blocks inside the item (a line ending in a backslash continues);
    its cells are the code cells tagged ``solution`` or ``self-check`` after it and before the
    next item.
    """
    import nbformat

    cells = nbformat.read(str(notebook), as_version=4).cells
    found: dict[int, Exercise] = {}
    current = None
    inside = False
    for index, cell in enumerate(cells):
        if cell.cell_type == "markdown":
            if re.search(r"^#+ Exercises\s*$", cell.source, re.M):
                inside = True
            if not inside or cell.source.lstrip().startswith(":::"):
                continue  # the folded solutions quote the items' numbers too
            starts = list(_ITEM.finditer(cell.source))
            for at, match in enumerate(starts):
                end = starts[at + 1].start() if at + 1 < len(starts) else len(cell.source)
                current = Exercise(int(match.group(1)), len(match.group(2)))
                current.commands = _commands(cell.source[match.start() : end])
                found[current.number] = current
        elif inside and current is not None:
            if _STUDENT_TAGS & set(cell.metadata.get("tags", [])):
                current.cells.append(index)
    return [found[n] for n in sorted(found)]


def _commands(text: str) -> list[str]:
    out = []
    for block in _BLOCK.findall(text):
        joined = re.sub(r"\s*\\\n\s*", " ", block)
        out += [line.strip() for line in joined.splitlines() if line.strip()]
    return out


def cell_seconds(executed: str | Path, indices: list[int]) -> float:
    """Seconds papermill recorded for running the given code cells of an executed notebook.

    Raises:
        ValueError: one of the cells carries no recorded duration (not run by papermill).
    """
    import nbformat

    cells = nbformat.read(str(executed), as_version=4).cells
    total = 0.0
    for index in indices:
        duration = cells[index].metadata.get("papermill", {}).get("duration")
        if duration is None:
            raise ValueError(f"{executed}: cell {index} has no recorded duration")
        total += float(duration)
    return total


def exercise_times() -> pd.DataFrame:
    """The measured computing time of every exercise (empty before the benchmark ran).

    Returns:
        One row per exercise: ``chapter``, ``exercise``, ``stars``, ``kind``,
        ``cells_seconds`` (its solution and self-check cells), ``command_seconds`` (wall time
        of its commands), ``seconds`` (their sum), ``commands``, ``load``, ``machine``, ``date``.
    """
    if not EXERCISE_TIMES_FILE.is_file():
        return pd.DataFrame(columns=["chapter", "exercise", "seconds"])
    with EXERCISE_TIMES_FILE.open() as f:
        return pd.read_csv(f)


def exercise_seconds(chapter: str) -> float:
    """The computing time of all of a chapter's exercises together (NaN: not measured)."""
    times = exercise_times()
    rows = times[times.chapter == chapter]
    return float(rows.seconds.sum()) if not rows.empty else float("nan")


def describe_exercises(chapter: str) -> str:
    """A chapter's exercises with their computing time, as the course page writes them:
    "1: none · 3: 12 s · 4: under 1 s", or "not measured"."""
    times = exercise_times()
    rows = times[times.chapter == chapter]
    if rows.empty:
        return "not measured"

    def one(row) -> str:
        if row.kind == "question":
            return f"{row.exercise}: none"
        seconds = float(row.seconds)
        if seconds < 1:
            return f"{row.exercise}: under 1 s"
        return f"{row.exercise}: " + (
            f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.1f} min"
        )

    return " · ".join(one(row) for row in rows.itertuples())


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
    """The step's wall time on the idle machine; NaN: not measured."""
    return float(row["wall_seconds"])


def configuration_seconds() -> float:
    """Seconds of one evaluation of a default configuration of the bundled model."""
    times = chapter_times().set_index("step")
    if "sweep" in times.index:
        return _seconds(times.loc["sweep"]) / int(times.loc["sweep", "configurations"])
    return _seconds(times.loc["04_evaluate"])


def chapter_seconds(step: str) -> float:
    """Seconds of ``step``: a chapter, a sweep (``"sweep"``: ``make sweep`` after chapter 4,
    which stored one of its configurations; ``"real_sweep"``: ``make book``'s sweep of the real
    small model), as recorded.

    Raises:
        KeyError: no such step; the message lists the chapters recorded.
    """
    times = chapter_times().set_index("step")
    if step == "sweep" and "sweep" not in times.index:
        return float("nan")  # not measured: an estimate from chapter 4 would be extrapolated
    if step not in times.index:
        raise KeyError(f"No recorded time for {step!r}; recorded: {list(times.index)}")
    return _seconds(times.loc[step])


def describe_time(step: str) -> str:
    """A step's time as the book writes it: "about 38 s", "about 19 min" or "not measured"."""
    seconds = chapter_seconds(step)
    if seconds != seconds:  # NaN
        return "not measured on an idle machine"
    return f"about {seconds:.0f} s" if seconds < 120 else f"about {seconds / 60:.0f} min"
