"""Sweeps recorded in the package: results and per-item scores, with their provenance.

A sweep too large for a laptop (the real small model with a thousand items a task, on a GPU)
runs once and is kept as three files in ``analysis/data/recorded/<name>/``:

- ``results.csv``: the run's results as :func:`widthprune.store.load_results` gives them;
- ``samples.csv.gz``: the per-item scores of each task's catalogued metrics (every metric of a
  task the catalogue does not know): the paired tests' input;
- ``provenance.json``: the command, commit, package versions, device and date of the run.

:func:`export_run` writes them from a results store; :func:`recorded_run` reads them back in
the form :func:`widthprune.analysis.claims.load_toy` gives for a live run, so a chapter treats
both alike and says which numbers come from where.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import pandas as pd

from ..evaluation.catalogue import analysed_metrics
from ..filemodes import ordinary_modes
from .claims import pair_run

__all__ = ["RECORDED_DIR", "export_run", "recorded_provenance", "recorded_run", "recorded_runs"]

RECORDED_DIR = Path(__file__).parent / "data" / "recorded"
FILES = ("results.csv", "samples.csv.gz", "provenance.json")


def export_run(
    run: str, root: str | os.PathLike, out: str | os.PathLike, *, provenance: dict
) -> Path:
    """Write a stored run's results, catalogued per-item scores and provenance to ``out``.

    Args:
        run: the run folder under ``root``.
        root: the results store.
        out: the folder to write (made; its three files replaced atomically one by one).
        provenance: what produced the run (command, commit, device, ...); the configurations'
            own provenance (versions, times) is added under ``configurations``.

    Returns:
        ``out`` as a Path.

    Raises:
        FileNotFoundError: the store holds no complete configuration of ``run``.
    """
    from ..store import complete_folders, load_results, load_samples

    folders = complete_folders(run, root)
    if not folders:
        raise FileNotFoundError(f"no complete configuration of run {run!r} under {root}")
    results = load_results(run, root)
    samples = load_samples(run, root)
    keep = {(t, m, f) for t, m, f in analysed_metrics(results["task"].unique())}
    known = {t for t, _, _ in keep}  # tasks the catalogue does not know keep every metric
    keys = zip(samples["task"], samples["metric"], samples["filter"], strict=True)
    mask = [k in keep or k[0] not in known for k in keys]
    samples = samples[mask].drop(columns=["label", "weight"], errors="ignore")
    configurations = {}
    for folder in folders:
        stored = json.loads((folder / "provenance.json").read_text())
        configurations[folder.name] = {k: v for k, v in stored.items() if k != "lm_eval"}
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    record = {**provenance, "run": run, "configurations": configurations}
    _atomic(out / "results.csv", lambda p: results.to_csv(p, index=False))
    _atomic(out / "samples.csv.gz", lambda p: samples.to_csv(p, index=False, compression="gzip"))
    text = json.dumps(record, indent=2, default=str) + "\n"
    _atomic(out / "provenance.json", lambda p: Path(p).write_text(text))
    return out


def _atomic(path: Path, write) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        ordinary_modes(tmp)  # as an ordinary write would leave it, not mkstemp's 0600
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def recorded_runs() -> list[str]:
    """Names of the recorded runs the package holds."""
    if not RECORDED_DIR.is_dir():
        return []
    return sorted(p.name for p in RECORDED_DIR.iterdir() if (p / "results.csv").is_file())


def _folder(name: str | os.PathLike) -> Path:
    folder = Path(name)
    if not (folder / "results.csv").is_file():
        folder = RECORDED_DIR / str(name)
    if not all((folder / f).is_file() for f in FILES):
        raise FileNotFoundError(
            f"no recorded run {str(name)!r}: the package holds {recorded_runs()}; a folder of "
            f"your own needs {list(FILES)}"
        )
    return folder


def recorded_run(
    name: str | os.PathLike, *, vary: tuple[str, ...] = ()
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A recorded run's (results, samples), as :func:`~widthprune.analysis.claims.pair_run`.

    Args:
        name: a recorded run of the package (:func:`recorded_runs`) or a folder that
            :func:`export_run` wrote.
        vary: fields the run varies on purpose, e.g. ``("chat_template",)``.
    """
    folder = _folder(name)
    results = pd.read_csv(folder / "results.csv", keep_default_na=False, na_values=[""])
    samples = pd.read_csv(folder / "samples.csv.gz", keep_default_na=False, na_values=[""])
    return pair_run(results, samples, f"recorded run {str(name)!r}", vary=vary)


def recorded_provenance(name: str | os.PathLike) -> dict:
    """The provenance of a recorded run (see :func:`export_run`)."""
    return json.loads((_folder(name) / "provenance.json").read_text())
