"""The results store: write, read, lock and verify; it never runs anything.

Layout: ``<root>/<run>/<config id>/`` holds ``config.json`` (the configuration and everything
its id hashes), ``summary.csv``, ``samples.jsonl.gz`` (lm-eval's items with the model's outputs),
``provenance.json`` (versions, git commit, device, durations, lm-eval's task details) and
``COMPLETE``, written last, with the SHA-256 of the other four. A folder is served only if it
proves it is the configuration asked for: its name is the id recorded in its ``config.json``,
that id is the hash of the identity recorded beside it, the marker parses and every checksum
matches. Anything else (a killed run, a damaged file, a folder copied or renamed by hand) is
skipped with one warning naming it, and recomputed when asked for. Results are built in a
temporary folder renamed into place, under a per-configuration lock.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import shutil
import tempfile
import warnings
from pathlib import Path

import pandas as pd

from ..evaluation.harness import EvalResult
from ..evaluation.metrics import tidy_samples
from ..filemodes import ordinary_modes
from ..locking import lock
from .config import EvalConfig, identity_id

__all__ = [
    "load_results",
    "load_samples",
    "lock",
    "read",
    "result_folder",
    "verify",
    "write",
]

FILES = ("config.json", "summary.csv", "samples.jsonl.gz", "provenance.json")
MARKER = "COMPLETE"


def result_folder(config: EvalConfig, run: str = "default", root: str | os.PathLike = "results"):
    """Where ``config``'s result lives."""
    return Path(root) / run / config.config_id


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def verify(folder: Path) -> str | None:
    """Why ``folder`` cannot be served, or None if it is a complete, self-consistent result."""
    marker = folder / MARKER
    if not marker.is_file():
        return "incomplete (no COMPLETE marker)"
    try:
        sums = json.loads(marker.read_text())
    except (OSError, ValueError) as err:
        return f"its COMPLETE marker does not parse ({err})"
    if not isinstance(sums, dict) or not all(isinstance(sums.get(n), str) for n in FILES):
        return "its COMPLETE marker does not list a checksum for each file"
    for name in FILES:
        try:
            if _sha256(folder / name) != sums[name]:
                return f"{name} does not match its checksum"
        except OSError:
            return f"{name} is missing"
    try:
        stored = json.loads((folder / "config.json").read_text())
        identity = {k: stored[k] for k in ("config", "tasks_data", "versions", "model_fingerprint")}
    except (ValueError, KeyError, TypeError) as err:
        return f"its config.json lacks the identity ({err})"
    if stored.get("id") != folder.name:
        return f"its name is not the id {stored.get('id')!r} recorded in its config.json"
    if identity_id(identity) != folder.name:
        return "its config.json does not hash to its id (edited by hand?)"
    return None


def is_complete(folder: Path) -> bool:
    """Whether ``folder`` holds a complete, self-consistent result."""
    return folder.is_dir() and verify(folder) is None


def lock_path(folder: Path) -> Path:
    """The lock file that serialises the writers of one result folder."""
    return folder.parent / ".locks" / f"{folder.name}.lock"


def clear_stale(folder: Path) -> None:
    """Remove temporary folders a killed writer left for ``folder`` (call under its lock)."""
    for stale in folder.parent.glob(f".tmp-{folder.name}-*"):
        shutil.rmtree(stale, ignore_errors=True)


def write(folder: Path, identity: dict, result: EvalResult, provenance: dict) -> None:
    """Build the folder under a temporary name, checksum it, then rename it into place.

    Args:
        folder: ``result_folder(config, ...)``; its name must be the identity's id.
        identity: ``{"id", "label", **config.identity()}``.
    """
    if identity["id"] != folder.name:
        raise ValueError(f"Result folder {folder} is not named by its id {identity['id']}")
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{folder.name}-", dir=folder.parent))
    (tmp / "config.json").write_text(json.dumps(identity, indent=2, default=str) + "\n")
    result.summary.to_csv(tmp / "summary.csv", index=False)
    with gzip.open(tmp / "samples.jsonl.gz", "wt", encoding="utf-8") as fh:
        for record in result.records:
            fh.write(json.dumps(record, ensure_ascii=False) + "\n")
    (tmp / "provenance.json").write_text(json.dumps(provenance, indent=2, default=str) + "\n")
    for name in FILES:
        with (tmp / name).open("rb") as fh:
            os.fsync(fh.fileno())
    sums = {name: _sha256(tmp / name) for name in FILES}
    (tmp / MARKER).write_text(json.dumps(sums, indent=2) + "\n")
    ordinary_modes(tmp)  # readable by others as the umask allows, not mkdtemp's 0700
    if folder.exists():
        shutil.rmtree(folder)
    os.replace(tmp, folder)


def read(folder: Path) -> EvalResult:
    """The :class:`EvalResult` stored in a (verified) folder."""
    with gzip.open(folder / "samples.jsonl.gz", "rt", encoding="utf-8") as fh:
        records = [json.loads(line) for line in fh]
    details = json.loads((folder / "provenance.json").read_text())["lm_eval"]
    summary = pd.read_csv(folder / "summary.csv", keep_default_na=False, na_values=[""])
    return EvalResult(summary, tidy_samples(records), records, details)


def complete_folders(run: str, root: str | os.PathLike) -> list[Path]:
    """The run's folders that :func:`verify` accepts; one warning for each one it does not."""
    base = Path(root) / run
    if not base.is_dir():
        raise FileNotFoundError(f"No run {run!r} under {Path(root).resolve()}")
    done = []
    for folder in sorted(p for p in base.iterdir() if p.is_dir() and not p.name.startswith(".")):
        problem = verify(folder)
        if problem is None:
            done.append(folder)
        else:
            warnings.warn(f"Skipped {folder}: {problem}", stacklevel=3)
    return done


def _config_columns(folder: Path) -> dict:
    identity = json.loads((folder / "config.json").read_text())
    provenance = json.loads((folder / "provenance.json").read_text())
    columns = {"config_id": identity["id"], "label": identity["label"]}
    for key, value in identity["request"].items():
        columns[key] = json.dumps(value) if isinstance(value, list | dict) else value
    hidden, width = provenance["hidden_size"], provenance["width"]
    columns.update(
        final_width=width,
        final_ratio=width / hidden,
        removed_pct=100 * (1 - width / provenance["original_width"]),
        model_fingerprint=identity["model_fingerprint"],
        versions=json.dumps(identity["versions"], sort_keys=True),
        tasks_data=json.dumps(identity["tasks_data"], sort_keys=True),
        calibration_digest=identity["config"]["calibration"],
        resolved_dtype=identity["config"]["dtype"],
    )
    return columns


def load_results(run: str = "default", root: str | os.PathLike = "results") -> pd.DataFrame:
    """One tidy frame over a run's complete configurations, each loaded once.

    Returns:
        Columns config_id, label, every :class:`EvalConfig` field as requested (lists as JSON
        text), final_width, final_ratio, removed_pct, model_fingerprint, versions, tasks_data,
        calibration_digest, resolved_dtype, then task, metric, filter, value, stderr, n, chance.
    """
    frames = []
    for folder in complete_folders(run, root):
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
    for folder in complete_folders(run, root):
        samples = read(folder).samples
        columns = _config_columns(folder)
        samples.insert(0, "label", columns["label"])
        samples.insert(0, "config_id", columns["config_id"])
        frames.append(samples)
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
