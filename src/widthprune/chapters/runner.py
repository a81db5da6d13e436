"""The book's driver: every chapter through papermill (:mod:`widthprune.runs.notebook`), in
reading order, every parameter checked before the first chapter runs."""

from __future__ import annotations

import os
import time
from pathlib import Path

from tqdm.auto import tqdm

from ..runs.notebook import EVALUATION_CHAPTER, check_parameters, run_notebook

__all__ = ["CHAPTERS", "EVALUATION_CHAPTER", "run_chapters"]

# Chapter notebooks in reading order; chapter 4 (EVALUATION_CHAPTER) also reports each sweep point.
CHAPTERS: tuple[str, ...] = (
    "01_anatomy",
    "02_scoring",
    "03_pruning",
    "04_evaluate",
    "05_capabilities",
    "06_correlation",
    "07_efficiency",
    "08_real_model",
    "09_evidence",
    "10_recovery",
    "11_across_models",
)


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
    strays = set(parameters or {}) - set(names)
    if strays:
        raise ValueError(f"Parameters given for chapters not being run: {sorted(strays)}")
    for name in names:  # every parameter checked before the first chapter runs
        check_parameters(Path(notebooks) / f"{name}.ipynb", (parameters or {}).get(name, {}))
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
