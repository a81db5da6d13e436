"""The student edition: every chapter with its solutions taken out (``make student``).

The teacher's book keeps the solutions folded under each chapter's exercises. The student
edition is the same notebooks with:

- each solution code cell (tagged ``solution``) replaced by a stub that keeps the function's
  signature and docstring and raises :class:`~widthprune.chapters.selfcheck.SolutionNotWritten`,
  so the self-check after it runs and prints FAIL until the student writes the function;
- the folded "Solutions" admonition replaced by a line saying the solutions are the teacher's.

The hidden cells that glue the solutions' numbers stay: the chapter's header quotes some of
them (its time on a laptop), and they print nothing.
"""

from __future__ import annotations

import ast
import os
import re
from pathlib import Path

__all__ = ["STUB_NOTE", "stub_solution", "student_notebook", "write_student_edition"]

STUB_NOTE = "Solutions are not part of the student edition; your teacher has them."
# the folded solutions: from their admonition's opening fence to its closing one
_SOLUTIONS = re.compile(r"^:::\{admonition\} Solutions\n.*?^:::[ \t]*$", re.M | re.S)


def stub_solution(source: str) -> str:
    """A solution cell's functions as stubs: same imports, signature and docstring.

    Raises:
        ValueError: the cell defines no function (a solution cell must).
    """
    tree = ast.parse(source)
    lines = source.splitlines()
    out = [
        ast.get_source_segment(source, n)
        for n in tree.body
        if isinstance(n, ast.Import | ast.ImportFrom)
    ] + ["from widthprune.chapters.selfcheck import SolutionNotWritten"]
    funcs = [n for n in tree.body if isinstance(n, ast.FunctionDef)]
    if not funcs:
        raise ValueError("a solution cell defines no function to stub")
    for fn in funcs:
        header = "\n".join(lines[fn.lineno - 1 : fn.body[0].lineno - 1])
        doc = ast.get_docstring(fn)
        body = f'    """{doc}"""\n' if doc else ""
        out += [
            "",
            "",
            header + "\n" + body + '    raise SolutionNotWritten("write your solution here")',
        ]
    return "\n".join(out).strip() + "\n"


def student_notebook(nb):
    """A copy of a chapter notebook (nbformat) without its solutions."""
    import copy

    nb = copy.deepcopy(nb)
    for cell in nb.cells:
        tags = cell.metadata.get("tags", [])
        if cell.cell_type == "code" and "solution" in tags:
            cell.source = stub_solution(cell.source)
            cell.metadata["tags"] = [t for t in tags if t not in ("solution", "hide-cell")]
        elif cell.cell_type == "markdown":
            cell.source = _SOLUTIONS.sub(f"*{STUB_NOTE}*", cell.source)
    return nb


def write_student_edition(
    notebooks: str | os.PathLike = "notebooks", out: str | os.PathLike = "student"
) -> list[Path]:
    """Write every chapter of ``notebooks`` without its solutions into ``out``.

    Returns:
        The notebooks written, in order.

    Raises:
        FileNotFoundError: ``notebooks`` holds no chapter.
    """
    import nbformat

    sources = sorted(Path(notebooks).glob("*.ipynb"))
    if not sources:
        raise FileNotFoundError(f"No chapter notebooks in {notebooks}")
    Path(out).mkdir(parents=True, exist_ok=True)
    written = []
    for path in sources:
        target = Path(out) / path.name
        nbformat.write(student_notebook(nbformat.read(path, as_version=4)), target)
        written.append(target)
    return written


if __name__ == "__main__":
    import sys

    for path in write_student_edition(*sys.argv[1:3]):
        print(path)
