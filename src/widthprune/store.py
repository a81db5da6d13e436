"""The results store: one folder per configuration, written atomically, reused when complete.

Layout: ``<root>/<run>/<config id>/`` holds ``config.json`` (everything that determines the
result), ``summary.csv``, ``samples.jsonl.gz`` (lm-eval's items with the model's outputs),
``provenance.json`` (versions, git commit, device, durations, lm-eval's task details) and
``COMPLETE``, written last, with the SHA-256 of the other four. A folder without a valid
``COMPLETE`` (a killed run, a damaged file) is redone. Results are built in a temporary folder
that is renamed into place, under a per-configuration lock, so two processes never interleave.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import json
import os
import shutil
import sys
import tempfile
import warnings
from pathlib import Path

import pandas as pd

from .config import EvalConfig
from .evaluation.harness import EvalResult
from .evaluation.metrics import tidy_samples

__all__ = ["load_results", "load_samples", "result_folder"]

_FILES = ("config.json", "summary.csv", "samples.jsonl.gz", "provenance.json")
_MARKER = "COMPLETE"


def result_folder(config: EvalConfig, run: str = "default", root: str | os.PathLike = "results"):
    """Where ``config``'s result lives."""
    return Path(root) / run / config.config_id


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _is_complete(folder: Path) -> bool:
    """The marker exists and every file matches the checksum it recorded."""
    try:
        sums = json.loads((folder / _MARKER).read_text())
        return all(_sha256(folder / name) == sums[name] for name in _FILES)
    except (OSError, ValueError, KeyError):
        return False


@contextlib.contextmanager
def _locked(path: Path):
    """An exclusive lock on ``path`` that the OS releases if the process dies."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a+b") as fh:
        if os.name == "nt":
            import msvcrt

            while True:
                try:
                    msvcrt.locking(fh.fileno(), msvcrt.LK_LOCK, 1)
                    break
                except OSError:  # LK_LOCK gives up after 10 s; keep waiting
                    continue
        else:
            import fcntl

            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                print(f"waiting for another process holding {path}", file=sys.stderr)
                fcntl.flock(fh, fcntl.LOCK_EX)
        yield


def _write(folder: Path, config: EvalConfig, result: EvalResult, provenance: dict) -> None:
    """Build the folder under a temporary name, checksum it, then rename it into place."""
    tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{folder.name}-", dir=folder.parent))
    identity = {"id": config.config_id, "label": config.label, **config.identity()}
    (tmp / "config.json").write_text(json.dumps(identity, indent=2, default=str) + "\n")
    result.summary.to_csv(tmp / "summary.csv", index=False)
    with gzip.open(tmp / "samples.jsonl.gz", "wt", encoding="utf-8") as fh:
        for record in result.records:
            fh.write(json.dumps(record, ensure_ascii=False) + "\n")
    (tmp / "provenance.json").write_text(json.dumps(provenance, indent=2, default=str) + "\n")
    for name in _FILES:
        with (tmp / name).open("rb") as fh:
            os.fsync(fh.fileno())
    sums = {name: _sha256(tmp / name) for name in _FILES}
    (tmp / _MARKER).write_text(json.dumps(sums, indent=2) + "\n")
    if folder.exists():
        shutil.rmtree(folder)
    os.replace(tmp, folder)


def _read(folder: Path) -> EvalResult:
    with gzip.open(folder / "samples.jsonl.gz", "rt", encoding="utf-8") as fh:
        records = [json.loads(line) for line in fh]
    details = json.loads((folder / "provenance.json").read_text())["lm_eval"]
    summary = pd.read_csv(folder / "summary.csv", keep_default_na=False, na_values=[""])
    return EvalResult(summary, tidy_samples(records), records, details)


def _complete_folders(run: str, root: str | os.PathLike) -> list[Path]:
    base = Path(root) / run
    if not base.is_dir():
        raise FileNotFoundError(f"No run {run!r} under {Path(root).resolve()}")
    folders = sorted(p for p in base.iterdir() if p.is_dir() and not p.name.startswith("."))
    done = [p for p in folders if _is_complete(p)]
    if len(done) < len(folders):
        skipped = [p.name for p in folders if p not in done]
        warnings.warn(f"Skipped incomplete results in {base}: {skipped}", stacklevel=3)
    return done


def _config_columns(folder: Path) -> dict:
    identity = json.loads((folder / "config.json").read_text())
    provenance = json.loads((folder / "provenance.json").read_text())
    columns = {"config_id": identity["id"], "label": identity["label"]}
    for key, value in identity["config"].items():
        columns[key] = json.dumps(value) if isinstance(value, list | dict) else value
    hidden = provenance["hidden_size"]
    columns.update(final_width=provenance["width"], final_ratio=provenance["width"] / hidden)
    return columns


def load_results(run: str = "default", root: str | os.PathLike = "results") -> pd.DataFrame:
    """One tidy frame over a run's complete configurations.

    Returns:
        Columns config_id, label, every :class:`EvalConfig` field (lists as JSON text),
        final_width, final_ratio, then task, metric, filter, value, stderr, n, chance.
    """
    frames = []
    for folder in _complete_folders(run, root):
        summary = pd.read_csv(folder / "summary.csv", keep_default_na=False, na_values=[""])
        for key, value in reversed(_config_columns(folder).items()):
            summary.insert(0, key, [value] * len(summary))
        frames.append(summary)
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def load_samples(run: str = "default", root: str | os.PathLike = "results") -> pd.DataFrame:
    """Per-item rows of every complete configuration of a run.

    Returns:
        Columns config_id, label, task, doc_id, filter, metric, value, weight.
    """
    frames = []
    for folder in _complete_folders(run, root):
        samples = _read(folder).samples
        columns = _config_columns(folder)
        samples.insert(0, "label", columns["label"])
        samples.insert(0, "config_id", columns["config_id"])
        frames.append(samples)
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
