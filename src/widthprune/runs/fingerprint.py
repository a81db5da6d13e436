"""Fingerprints: what a configuration's result depends on, reduced to content hashes.

A model is fingerprinted by the SHA-256 of every byte of every file of its checkpoint (folder
order and names included), so an edit anywhere in the weights changes it. Hashing runs at disk
speed on two threads; the result is remembered per file (path, size, modification and change
time, inode) in memory and in a small JSON cache, so an unchanged checkpoint is hashed once.
Calibration texts and local task suites are fingerprinted by content, never by path.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from ..models.cache import cache_dir

__all__ = [
    "cache_dir",
    "calibration_digest",
    "checkpoint_config",
    "checkpoint_folder",
    "file_digest",
    "folder_digest",
    "model_fingerprint",
    "resolved_dtype",
    "resolved_width",
    "tasks_digest",
]

_PACKAGE = Path(__file__).parent.parent
TOY_CHECKPOINT = _PACKAGE / "toy" / "checkpoint"
TASKS_DIR = _PACKAGE / "evaluation" / "tasks"
_BLOCK = 8 << 20  # bytes read per update: large enough for hashlib to release the GIL
_PIECE = 64 << 20  # bytes per independently hashed piece of a file
_memo: dict[tuple, str] = {}
_lock = threading.Lock()


def _stat_key(path: Path) -> tuple:
    st = path.stat()
    return (str(path.resolve()), st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino)


def _disk_memo() -> Path:
    return cache_dir() / "file-digests.json"


def _load_disk_memo() -> dict:
    try:
        return json.loads(_disk_memo().read_text())
    except (OSError, ValueError):
        return {}


def _save_disk_memo(entries: dict) -> None:
    path = _disk_memo()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(entries))
        os.replace(tmp, path)
    except OSError:  # a read-only home only costs rehashing next time
        pass


def _chunk_digest(path: Path, offset: int, size: int) -> bytes:
    digest = hashlib.sha256()
    fd = os.open(path, os.O_RDONLY)
    try:
        done = 0
        while done < size:
            block = os.pread(fd, min(_BLOCK, size - done), offset + done)
            if not block:
                raise OSError(f"{path} shrank while it was read")
            digest.update(block)
            done += len(block)
    finally:
        os.close(fd)
    return digest.digest()


def file_digest(path: str | os.PathLike) -> str:
    """SHA-256 tree hash of a file's bytes (hex), remembered while the file's stat is unchanged.

    The file is cut into pieces of 64 MiB hashed on parallel threads (hashlib releases the GIL);
    the digest is the SHA-256 of the size and the pieces' digests, so every byte counts once.
    """
    path = Path(path)
    key = _stat_key(path)
    with _lock:
        if key in _memo:
            return _memo[key]
    size = key[1]
    offsets = list(range(0, size, _PIECE)) or [0]
    workers = max(1, min(len(offsets), os.cpu_count() or 1))
    with ThreadPoolExecutor(workers) as pool:
        pieces = pool.map(lambda o: _chunk_digest(path, o, min(_PIECE, size - o)), offsets)
        top = hashlib.sha256(f"{size}\0".encode())
        for piece in pieces:
            top.update(piece)
    value = top.hexdigest()
    with _lock:
        _memo[key] = value
    return value


def folder_digest(folder: Path, *, skip_hidden: bool = True) -> str:
    """SHA-256 over the relative names and byte digests of every file under ``folder``."""
    files = sorted(
        p
        for p in folder.rglob("*")
        if p.is_file()
        and not (skip_hidden and any(part.startswith(".") for part in p.relative_to(folder).parts))
        and "__pycache__" not in p.parts
    )
    disk = _load_disk_memo()
    todo = [p for p in files if json.dumps(_stat_key(p)) not in disk]
    if todo:
        for p in todo:  # each file's pieces are hashed in parallel
            disk[json.dumps(_stat_key(p))] = file_digest(p)
        if sum(p.stat().st_size for p in todo) > (64 << 20):
            _save_disk_memo(disk)  # only worth keeping for large checkpoints
    digest = hashlib.sha256()
    for p in files:
        digest.update(f"{p.relative_to(folder).as_posix()}\0".encode())
        digest.update(disk[json.dumps(_stat_key(p))].encode())
    return digest.hexdigest()


def _looks_like_path(model: str) -> bool:
    return model.startswith((".", "/", "~")) or model.endswith(("/", os.sep)) or os.sep in model[:1]


def checkpoint_folder(model: str) -> Path | None:
    """The local folder holding ``model``'s files, or None for a hub id that is not cached.

    Raises:
        FileNotFoundError: ``model`` is written as a path and no such folder exists.
        ValueError: ``model`` is a bare name that is neither known nor a folder here.
    """
    if model == "toy":
        return TOY_CHECKPOINT
    from ..models.registry import check_model_name, registered_source

    check_model_name(model)

    source = registered_source(model)
    if source is not None:
        return source
    path = Path(model).expanduser()
    if path.is_dir():
        return path.resolve()
    if _looks_like_path(model) or path.exists():
        raise FileNotFoundError(f"No checkpoint folder at {model}")
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(model, local_files_only=True))
    except Exception:  # not cached, or not a valid repo id: the id alone names it
        return None


def model_fingerprint(model: str) -> str:
    """Hash of every byte of the model's local files; ``id:<model>`` for an uncached hub id."""
    folder = checkpoint_folder(model)
    if folder is None:
        return f"id:{model}"
    if folder.is_file():  # a single-file source (a GGUF that is converted on load)
        return file_digest(folder)[:32]
    return folder_digest(folder)[:32]


def checkpoint_config(model: str) -> dict:
    """The model's ``config.json`` as a dict (from the hub cache or the hub for an id)."""
    from ..models.registry import registered_config

    known = registered_config(model)
    if known is not None:
        return known
    folder = checkpoint_folder(model)
    if folder is not None and (folder / "config.json").is_file():
        return json.loads((folder / "config.json").read_text())
    try:
        from transformers import AutoConfig

        return AutoConfig.from_pretrained(model).to_dict()
    except OSError as err:
        raise FileNotFoundError(
            f"Could not read the configuration of {model!r}: it is neither a local folder nor "
            "a Hugging Face id in the local cache, and the hub could not be reached. Download "
            f"it where there is network (`huggingface-cli download {model} --local-dir DIR`) "
            "and pass DIR."
        ) from err


def original_width(model: str) -> int:
    """The MLP width of the model as stored."""
    return int(checkpoint_config(model)["intermediate_size"])


def resolved_width(config) -> int:
    """The MLP width an :class:`~widthprune.runs.config.EvalConfig` evaluates."""
    from types import SimpleNamespace

    from ..pruning.selection import target_width

    data = checkpoint_config(config.model)
    shape = SimpleNamespace(
        hidden_size=data["hidden_size"], intermediate_size=data["intermediate_size"]
    )
    if config.criterion is None:
        return int(shape.intermediate_size)
    if config.width is not None:
        if not 1 <= config.width <= shape.intermediate_size:
            raise ValueError(
                f"width {config.width} is outside [1, {shape.intermediate_size}] for "
                f"{config.model!r} (intermediate size {shape.intermediate_size})"
            )
        width = config.width
        if config.round_to is not None:
            width = max(config.round_to, width // config.round_to * config.round_to)
        return int(width)
    return int(
        target_width(
            shape,
            expansion_ratio=config.expansion_ratio,
            pruning_pct=config.pruning_pct,
            round_to=config.round_to,
            rounding=config.rounding,
        )
    )


def resolved_dtype(model: str, dtype: str) -> str:
    """``dtype``, or for ``"auto"`` the dtype the checkpoint loads with (float32 for the toy)."""
    if dtype != "auto":
        return dtype
    if model == "toy":
        return "float32"
    data = checkpoint_config(model)
    return str(data.get("dtype") or data.get("torch_dtype") or "float32").removeprefix("torch.")


def calibration_digest(calibration: str | None) -> str | None:
    """SHA-256 of the calibration texts' content (None without calibration)."""
    if calibration is None:
        return None
    from ..pruning.calibration import calibration_texts

    return _texts_digest("calibration", calibration, calibration_texts)


def recovery_digest(source: str) -> str:
    """SHA-256 of a recovery text's content (``"toy"``, ``"lambada"`` or a text file)."""
    from ..pruning.recovery import recovery_texts

    return _texts_digest("recovery", source, recovery_texts)


def _texts_digest(kind: str, source: str, read) -> str:
    """SHA-256 of the texts ``read(source)`` gives, once a process for a named source and once
    per file version (size and modification time) for a file."""
    key = (kind, source)
    if source not in ("toy", "lambada"):
        key = (*key, *_stat_key(Path(source)))
    with _lock:
        if key in _memo:
            return _memo[key]
    digest = hashlib.sha256()
    for text in read(source):
        digest.update(text.encode("utf-8"))
        digest.update(b"\0")
    value = digest.hexdigest()[:32]
    with _lock:
        _memo[key] = value
    return value


def _suite_names(folder: Path) -> set[str]:
    """Task and group names that a folder's YAMLs define (``task:`` / ``group:`` lines)."""
    names = set()
    for yml in folder.rglob("*.yaml"):
        for line in yml.read_text(encoding="utf-8").splitlines():
            for key in ("task:", "group:", "tag:"):
                if line.startswith(key) and line[len(key) :].strip():
                    names.add(line[len(key) :].strip().strip("'\""))
    return names


def tasks_digest(tasks, include_path=()) -> dict[str, str]:
    """Content hash of every bundled task suite that defines one of ``tasks``.

    Tasks from lm-eval's own registry are covered by lm-eval's and datasets' versions.
    """
    from ..evaluation.catalogue import preset_tasks

    names = set(preset_tasks(tasks))
    out = {}
    if TASKS_DIR.is_dir():
        for suite in sorted(p for p in TASKS_DIR.iterdir() if p.is_dir()):
            defined = _suite_names(suite)
            if suite.name == "real":  # it also renders the local_* tasks (mirrors.py)
                defined |= {n for n in names if n.startswith("local_")}
            if names & defined:
                out[suite.name] = folder_digest(suite)[:32]
    return out
