"""Grading a student's executed chapter: the self-checks' PASS or FAIL, one line per exercise.

A chapter's exercises that ask for code end with a self-check cell (tagged ``self-check``) that
prints ``PASS ...`` or ``FAIL ...`` (:mod:`widthprune.chapters.selfcheck`). Grading reads those
printed lines back from the executed notebook: nothing is run again, so the grade is what the
student's own run showed. A self-check cell that printed neither (not run, or stopped by an
error) is a FAIL too. ``widthprune check-exercises CHAPTER`` prints the grade and exits 0 when
every check passed, 1 otherwise.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["find_notebook", "grade_notebook"]

_RESULT = re.compile(r"^(PASS|FAIL) (.*)$", re.M)
_EXERCISE = re.compile(r"^(\d+)\. ★", re.M)


def find_notebook(chapter: str | os.PathLike) -> Path:
    """The executed notebook of ``chapter``: a path as given, else ``<chapter>.ipynb`` here,
    else the book's ``book/generated/<chapter>.ipynb``.

    Raises:
        FileNotFoundError: none of them exists; the message names where it looked.
    """
    given = Path(chapter)
    tried = [given, Path(f"{chapter}.ipynb"), Path("book/generated") / f"{chapter}.ipynb"]
    for path in tried:
        if path.suffix == ".ipynb" and path.is_file():
            return path
    raise FileNotFoundError(
        f"No executed notebook for {chapter!s}; looked at {', '.join(map(str, tried[1:]))}"
    )


def _text(cell) -> str:
    out = []
    for o in cell.get("outputs", []):
        if o.get("output_type") == "stream":
            out.append(o.get("text", ""))
        elif o.get("output_type") == "error":
            out.append(f"ERROR {o.get('ename')}: {o.get('evalue')}\n")
    return "".join(out)


def grade_notebook(path: str | os.PathLike) -> pd.DataFrame:
    """The grade of each self-checked exercise of an executed chapter.

    Returns:
        One row per self-check cell, in order: exercise (its number in the chapter's list, the
        last one announced above the cell), check (what was compared), passed, detail.

    Raises:
        ValueError: the notebook has no self-check cell (nothing to grade).
    """
    import nbformat
    import pandas as pd

    cells = nbformat.read(path, as_version=4).cells
    rows, exercise = [], None
    for cell in cells:
        if cell.cell_type == "markdown":
            numbers = _EXERCISE.findall(cell.source)
            exercise = int(numbers[-1]) if numbers else exercise
            continue
        if "self-check" not in cell.metadata.get("tags", []):
            continue
        text = _text(cell)
        found = _RESULT.findall(text)
        if found:
            verdict, message = found[-1]
            check, _, detail = message.partition(": ")
            rows.append((exercise, check, verdict == "PASS", detail))
        else:
            reason = text.strip().splitlines()[-1] if text.strip() else "the cell was not run"
            rows.append((exercise, "self-check", False, f"no PASS or FAIL printed ({reason})"))
    if not rows:
        raise ValueError(f"{path} has no self-checked exercise to grade")
    return pd.DataFrame(rows, columns=["exercise", "check", "passed", "detail"])
