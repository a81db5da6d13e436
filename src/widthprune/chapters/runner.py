"""The book's driver: every chapter through papermill, atomically, with its parameters folded."""

from __future__ import annotations

import os
import platform
import time
from pathlib import Path

from tqdm.auto import tqdm

from ..config import git_commit, package_version

__all__ = ["CHAPTERS", "EVALUATION_CHAPTER", "provenance", "run_chapters", "run_notebook"]

# Chapter notebooks in reading order; chapter 4 also runs once per sweep point.
CHAPTERS: tuple[str, ...] = (
    "01_anatomy",
    "02_scoring",
    "03_pruning",
    "04_evaluate",
    "05_capabilities",
    "06_correlation",
    "07_efficiency",
)
EVALUATION_CHAPTER = "04_evaluate"


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
    as ``<output>.failed.ipynb`` for inspection.
    """
    import papermill as pm

    source, output = Path(source), Path(output)
    if not source.is_file():
        raise FileNotFoundError(f"No notebook at {source}")
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
        if partial.exists():
            partial.replace(output.with_name(f"{output.stem}.failed.ipynb"))
        raise
    _fold_parameters(partial)
    partial.replace(output)
    return output


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


def run_chapters(
    names: tuple[str, ...] = CHAPTERS,
    *,
    parameters: dict[str, dict] | None = None,
    notebooks: str | os.PathLike = "notebooks",
    out_dir: str | os.PathLike = "book/generated",
    cwd: str | os.PathLike = ".",
) -> dict[str, float]:
    """Execute chapters into ``out_dir`` with optional per-chapter parameters.

    Returns:
        Seconds per chapter, in order.
    """
    unknown = [n for n in names if not (Path(notebooks) / f"{n}.ipynb").is_file()]
    if unknown:
        raise FileNotFoundError(f"No chapter notebooks {unknown} in {notebooks}")
    seconds = {}
    for name in tqdm(names, desc="chapters", unit="chapter"):
        t0 = time.perf_counter()
        run_notebook(
            Path(notebooks) / f"{name}.ipynb",
            Path(out_dir) / f"{name}.ipynb",
            (parameters or {}).get(name, {}),
            cwd=cwd,
        )
        seconds[name] = time.perf_counter() - t0
    return seconds
