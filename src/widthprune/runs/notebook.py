"""A parameterized notebook run through papermill, atomically, with its parameters folded: a
chapter of the book, or the report of one configuration of a sweep; and where a run happened."""

from __future__ import annotations

import os
import platform
import time
from pathlib import Path

from .config import git_commit, package_version

__all__ = [
    "EVALUATION_CHAPTER",
    "check_parameters",
    "notebook_parameters",
    "provenance",
    "remove_partials",
    "run_notebook",
]

EVALUATION_CHAPTER = "04_evaluate"  # the chapter that reports one configuration


def run_notebook(
    source: str | os.PathLike,
    output: str | os.PathLike,
    parameters: dict | None = None,
    *,
    cwd: str | os.PathLike = ".",
    progress: bool = False,
) -> Path:
    """Execute ``source`` with papermill into ``output``, atomically.

    papermill writes into a temporary file beside ``output``, renamed once the run finished
    without error, so ``output`` exists only for complete runs. A failing notebook raises
    papermill's ``PapermillExecutionError`` naming the failing cell; its partial output is kept
    as ``<output>.failed.ipynb`` for inspection, until a later run succeeds.
    """
    import papermill as pm

    source, output = Path(source), Path(output)
    if not source.is_file():
        raise FileNotFoundError(f"No notebook at {source}")
    check_parameters(source, parameters or {})
    output.parent.mkdir(parents=True, exist_ok=True)
    partial = output.with_name(f".{output.stem}.{os.getpid()}.partial.ipynb")
    try:
        pm.execute_notebook(
            str(source),
            str(partial),
            parameters=parameters or {},
            cwd=str(cwd),
            kernel_name="python3",
            progress_bar=progress,
        )
    except BaseException:
        if partial.exists():  # kept as the failure's record; an earlier output stays valid
            partial.replace(output.with_name(f"{output.stem}.failed.ipynb"))
        raise
    _fold_parameters(partial)
    partial.replace(output)
    output.with_name(f"{output.stem}.failed.ipynb").unlink(missing_ok=True)  # superseded
    return output


def notebook_parameters(source: str | os.PathLike) -> dict[str, dict]:
    """A notebook's parameters as papermill reads them: ``{name: {default, inferred_type_name,
    help}}``."""
    import papermill as pm

    return dict(pm.inspect_notebook(str(source)))


def check_parameters(source: str | os.PathLike, parameters: dict) -> None:
    """Raise a ValueError naming any parameter the notebook does not declare."""
    import difflib

    known = notebook_parameters(source)
    unknown = [name for name in parameters if name not in known]
    if unknown:
        hints = {n: difflib.get_close_matches(n, known, n=1) for n in unknown}
        hints = {n: h[0] for n, h in hints.items() if h}
        raise ValueError(
            f"{Path(source).stem} has no parameter(s) {unknown}"
            + (f" (did you mean {hints}?)" if hints else "")
            + f"; its parameters are {sorted(known)}"
        )


def remove_partials(folder: Path) -> list[Path]:
    """Delete partial notebooks of writers that are no longer running; return them."""
    removed = []
    for path in folder.glob(".*.partial.ipynb"):
        pid = path.name.rsplit(".partial.ipynb", 1)[0].rsplit(".", 1)[-1]
        alive = False
        if pid.isdigit() and int(pid) != os.getpid():
            try:
                os.kill(int(pid), 0)
                alive = True
            except (ProcessLookupError, PermissionError, OSError):
                alive = False
        if not alive:
            path.unlink(missing_ok=True)
            removed.append(path)
    return removed


def _fold_parameters(path: Path) -> None:
    """Fold the parameter cells (defaults and papermill's injected values) in the book."""
    import nbformat

    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        tags = cell.metadata.get("tags", [])
        if {"parameters", "injected-parameters"} & set(tags) and "hide-cell" not in tags:
            cell.metadata["tags"] = [*tags, "hide-cell"]
    nbformat.write(nb, path)


def provenance() -> dict:
    """Where and with what a run happened: versions, commit, machine, time."""
    return {
        "versions": {
            name: package_version(name)
            for name in ("widthprune", "torch", "transformers", "lm_eval", "papermill")
        },
        "git_commit": git_commit(),
        "python": platform.python_version(),
        "machine": platform.platform(),
        "cpus": os.cpu_count(),
        "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
