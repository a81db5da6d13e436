"""``widthprune check-exercises``: PASS or FAIL per self-checked exercise of an executed chapter."""

from __future__ import annotations

from ..chapters.grading import find_notebook, grade_notebook


def add_check_exercises(sub) -> None:
    """The ``widthprune check-exercises`` sub-command."""
    p = sub.add_parser(
        "check-exercises",
        help="grade a student's executed chapter: PASS or FAIL per self-checked exercise",
    )
    p.add_argument("chapter", help="a chapter name (e.g. 06_correlation) or an executed .ipynb")
    p.set_defaults(run_command=run_check_exercises)


def run_check_exercises(args) -> int:
    path = find_notebook(args.chapter)
    grades = grade_notebook(path)
    for row in grades.itertuples():
        verdict = "PASS" if row.passed else "FAIL"
        print(f"exercise {row.exercise}: {verdict} {row.check}: {row.detail}")
    passed = int(grades["passed"].sum())
    print(f"{path}: {passed} of {len(grades)} self-checked exercises pass")
    return 0 if passed == len(grades) else 1
