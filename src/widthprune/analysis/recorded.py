"""Sweeps recorded in the package: results and per-item scores, with their provenance.

A sweep too large for a laptop (the real small model with a thousand items a task, on a GPU)
runs once and is kept as four files in ``analysis/data/recorded/<name>/``:

- ``results.csv``: the run's results as :func:`widthprune.runs.store.load_results` gives them;
- ``samples.csv.gz``: every per-item score of every task, metric and filter, as
  :func:`widthprune.runs.store.load_samples` gives them (config_id, task, doc_id, filter, metric,
  value, weight): the paired tests' input;
- ``responses.csv.gz``: what each score was computed from, one row per configuration, task and
  item (the per-choice log-likelihoods with the choices' lengths and the gold index, the
  generated text with each filter's answer and the target, a text's log-likelihood with its
  word and byte counts; layout in :mod:`widthprune.analysis.responses`), so every number of
  the other two files can be recomputed item by item;
- ``provenance.json``: the command, commit, package versions, device and date of the run.

:func:`export_run` writes them from a results store; :func:`recorded_run` reads results and
samples back in the form :func:`widthprune.analysis.claims.load_toy` gives for a live run, so a
chapter treats both alike and says which numbers come from where; :func:`recorded_responses`
reads the responses. Runs exported before responses were kept (and before every metric was:
their samples hold only each catalogued task's analysed metrics) read as before, without
responses.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import pandas as pd

from ..filemodes import ordinary_modes
from .claims import pair_run
from .responses import read_responses, tidy_responses, write_responses

__all__ = [
    "RECORDED_DIR",
    "export_run",
    "recorded_provenance",
    "recorded_responses",
    "recorded_results",
    "recorded_run",
    "recorded_runs",
]

RECORDED_DIR = Path(__file__).parent / "data" / "recorded"
FILES = ("results.csv", "samples.csv.gz", "provenance.json")  # what every recorded run has
RESPONSES = "responses.csv.gz"  # runs exported before it was kept lack it


def export_run(
    run: str, root: str | os.PathLike, out: str | os.PathLike, *, provenance: dict
) -> Path:
    """Write a stored run's results, per-item scores, responses and provenance to ``out``.

    Args:
        run: the run folder under ``root``.
        root: the results store.
        out: the folder to write (made; its four files replaced atomically one by one). The
            tasks' definitions must be at hand (as when the run was evaluated): the choices of
            multiple-choice items are read from them.
        provenance: what produced the run (command, commit, device, ...); the configurations'
            own provenance (versions, times) is added under ``configurations``.

    Returns:
        ``out`` as a Path.

    Raises:
        FileNotFoundError: the store holds no complete configuration of ``run``.
    """
    from ..runs.store import complete_folders, load_results, load_samples, read

    folders = complete_folders(run, root)
    if not folders:
        raise FileNotFoundError(f"no complete configuration of run {run!r} under {root}")
    results = load_results(run, root)
    samples = load_samples(run, root).drop(columns=["label"])
    configurations, responses = {}, []
    for folder in folders:
        stored = json.loads((folder / "provenance.json").read_text())
        configurations[folder.name] = {k: v for k, v in stored.items() if k != "lm_eval"}
        include = json.loads((folder / "config.json").read_text())["request"]["include_path"]
        rows = tidy_responses(read(folder).records, stored["lm_eval"]["configs"], tuple(include))
        responses.append(rows.assign(config_id=folder.name)[["config_id", *rows.columns]])
    responses = pd.concat(responses, ignore_index=True)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    record = {**provenance, "run": run, "configurations": configurations}
    _atomic(out / "results.csv", lambda p: results.to_csv(p, index=False))
    _atomic(out / "samples.csv.gz", lambda p: samples.to_csv(p, index=False, compression="gzip"))
    _atomic(out / RESPONSES, lambda p: write_responses(responses, p))
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


def recorded_results(name: str | os.PathLike) -> pd.DataFrame:
    """A recorded run's results as :func:`~widthprune.runs.store.load_results` gives them (one
    row per configuration and metric, ``config_id``), for the analyses that take a store's
    results (:func:`~widthprune.analysis.capabilities.sweep_capabilities`)."""
    return pd.read_csv(_folder(name) / "results.csv", keep_default_na=False, na_values=[""])


def recorded_run(
    name: str | os.PathLike, *, vary: tuple[str, ...] = ()
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A recorded run's (results, samples), as :func:`~widthprune.analysis.claims.pair_run`.

    Args:
        name: a recorded run of the package (:func:`recorded_runs`) or a folder that
            :func:`export_run` wrote.
        vary: fields the run varies on purpose, e.g. ``("chat_template",)``.
    """
    results = recorded_results(name)
    samples = pd.read_csv(_folder(name) / "samples.csv.gz", keep_default_na=False, na_values=[""])
    return pair_run(results, samples, f"recorded run {str(name)!r}", vary=vary)


def recorded_responses(name: str | os.PathLike) -> pd.DataFrame:
    """A recorded run's per-item responses, one row per configuration, task and item.

    Args:
        name: as :func:`recorded_run`.

    Returns:
        config_id, then the columns of :data:`~widthprune.analysis.responses.RESPONSE_COLUMNS`
        (JSON columns decoded; layout in :mod:`widthprune.analysis.responses`).

    Raises:
        FileNotFoundError: the run was exported before responses were kept (re-export it from
            its results store with :func:`export_run` to have them).
    """
    folder = _folder(name)
    if not (folder / RESPONSES).is_file():
        raise FileNotFoundError(
            f"recorded run {str(name)!r} has no {RESPONSES} (it was exported before per-item "
            f"responses were kept, in {folder}); export_run writes it from the run's results store"
        )
    return read_responses(folder / RESPONSES)


def recorded_provenance(name: str | os.PathLike) -> dict:
    """The provenance of a recorded run (see :func:`export_run`)."""
    return json.loads((_folder(name) / "provenance.json").read_text())
