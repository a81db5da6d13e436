"""The course kit: the student edition (``make student``) and ``widthprune check-exercises``."""

import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from widthprune.chapters import selfcheck
from widthprune.chapters.grading import grade_notebook
from widthprune.chapters.student import STUB_NOTE, stub_solution, write_student_edition
from widthprune.cli import main
from widthprune.runs.notebook import run_notebook

ROOT = Path(__file__).resolve().parents[1]


def test_the_student_edition_keeps_the_exercises_and_drops_every_solution(tmp_path):
    written = write_student_edition(ROOT / "notebooks", tmp_path)
    assert [p.name for p in written] == sorted(p.name for p in (ROOT / "notebooks").glob("*.ipynb"))
    for path in written:
        cells = nbformat.read(path, as_version=4).cells
        text = "\n".join(c.source for c in cells if c.cell_type == "markdown")
        assert "{admonition} Solutions" not in text and STUB_NOTE in text, path.stem
        assert "## Exercises" in text and "★" in text, path.stem
        assert not [c for c in cells if "solution" in c.metadata.get("tags", [])], path.stem
    # chapter 6's Holm exercise: a stub that keeps the signature, and its check fails
    cells = nbformat.read(tmp_path / "06_correlation.ipynb", as_version=4).cells
    stub = next(c.source for c in cells if "def holm_by_hand" in c.source)
    assert "raise SolutionNotWritten" in stub and "np.argsort" not in stub
    namespace = {}
    exec(stub, namespace)
    result = selfcheck.check_statistic(namespace["holm_by_hand"], "holm")
    assert not result and "SolutionNotWritten" in result.detail
    with pytest.raises(ValueError, match="no function"):
        stub_solution("x = 1\n")
    with pytest.raises(FileNotFoundError, match="No chapter notebooks"):
        write_student_edition(tmp_path / "empty", tmp_path / "out")


RIGHT = '''import numpy as np


def holm_by_hand(p):
    """Holm's step-down adjusted p-values."""
    p = np.asarray(p, dtype=float)
    order = np.argsort(p, kind="stable")
    steps = (len(p) - np.arange(len(p))) * p[order]
    out = np.empty(len(p))
    out[order] = np.minimum(1.0, np.maximum.accumulate(steps))
    return out
'''
WRONG = '''import numpy as np


def holm_by_hand(p):
    """Bonferroni's step, not Holm's."""
    return np.minimum(1.0, len(p) * np.asarray(p))
'''


def _student_run(tmp_path: Path, answer: str, name: str) -> Path:
    """A two-exercise chapter as a student executes it, with ``answer`` to exercise 2."""
    nb = nbformat.v4.new_notebook()
    param = nbformat.v4.new_code_cell("seed: int = 0  # unused")
    param.metadata["tags"] = ["parameters"]
    check = nbformat.v4.new_code_cell(
        "from widthprune.chapters import selfcheck\n\n"
        'result = selfcheck.check_statistic(holm_by_hand, "holm")'
    )
    check.metadata["tags"] = ["self-check"]
    nb.cells = [
        param,
        nbformat.v4.new_markdown_cell("## Exercises\n\n1. ★ Read.\n2. ★★★ Write Holm's step."),
        nbformat.v4.new_code_cell(answer),
        check,
    ]
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    source = tmp_path / f"{name}-source.ipynb"
    nbformat.write(nb, source)
    return run_notebook(source, tmp_path / f"{name}.ipynb")


def test_check_exercises_grades_a_right_and_a_wrong_answer(tmp_path, capsys):
    right, wrong = _student_run(tmp_path, RIGHT, "right"), _student_run(tmp_path, WRONG, "wrong")
    graded = grade_notebook(right)
    assert graded[["exercise", "check", "passed"]].values.tolist() == [
        [2, "statistic 'holm'", True]
    ]
    assert grade_notebook(wrong).passed.tolist() == [False]
    assert main(["check-exercises", str(right)]) == 0
    assert main(["check-exercises", str(wrong)]) == 1
    out = capsys.readouterr().out
    assert "exercise 2: PASS statistic 'holm': matches widthprune.analysis on 3 cases" in out
    assert re.search(r"exercise 2: FAIL statistic 'holm': on 8 uniform p-values: value \[\d\]", out)
    assert "0 of 1 self-checked exercises pass" in out
    # an unexecuted chapter: the check printed nothing, which is a FAIL, not a pass
    unrun = grade_notebook(tmp_path / "right-source.ipynb")
    assert not unrun.passed.any() and "the cell was not run" in unrun.detail.iloc[0]


def test_check_exercises_user_errors_are_one_line():
    done = subprocess.run(
        [sys.executable, "-m", "widthprune.cli", "check-exercises", "99_nothing"],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "widthprune check-exercises: error: No executed notebook for 99_nothing; looked at "
        "99_nothing.ipynb, book/generated/99_nothing.ipynb"
    ]
