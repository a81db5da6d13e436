"""A pruned (or unpruned) checkpoint to a GGUF file for llama.cpp, with what each tensor became.

:func:`export_gguf` plans first, from the model's shape alone: which tensors llama.cpp will
quantize as asked, which fall back to a 32-block type, and which stay F16 because their rows
fit no block (:func:`widthprune.deployment.llamacpp.row_status`). When the MLP width is one
the scheme cannot quantize fully, it warns (:class:`WidthWarning`) before any work, naming the
tensors, what the nearest widths of the scheme's block would quantize and which tensor kinds
fall short at any width (rows of the hidden size), or, with ``strict=True``, refuses. Then
llama.cpp's converter writes an F16 GGUF, llama.cpp's quantizer writes the scheme, and the
report reads back every tensor's type from the file written (:func:`read_tensor_types`).

A word-level tokenizer (the toy's), which the converter cannot read, is carried as llama.cpp's
WordPiece vocabulary with the same ids (:mod:`widthprune.deployment.vocab`).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..filemodes import ordinary_modes
from .llamacpp import Scheme, convert_to_f16, converter_dir, get_scheme, quantize, row_status
from .tensors import WIDTH_TENSOR, WidthWarning, check_plan, plan_tensors, read_tensor_types
from .vocab import WordVocab, word_vocab, write_sentencepiece_stand_in, write_wordpiece_vocab

__all__ = ["GGUFExport", "WidthWarning", "export_gguf", "quantize_gguf"]


@dataclass(frozen=True)
class GGUFExport:
    """What one export wrote."""

    path: str  # the GGUF file
    quant: str  # scheme name, e.g. "Q4_K_M"
    width: int  # MLP width (intermediate_size)
    file_bytes: int  # size of the file
    weights: int  # elements of all tensors
    bits_per_weight: float  # 8 * tensor bytes / weights
    tensors: list[dict]  # per (tensor kind, GGML type): tensors, row, elements, bytes, status
    plan: list[dict] = field(default_factory=list)  # the prediction made before any work
    seconds: dict = field(default_factory=dict)  # wall time of convert and quantize
    # the file's vocabulary (tokenizer.ggml.model): "gpt2" (BPE), "llama" (SentencePiece) or
    # "bert" (WordPiece, as a word-level tokenizer is carried)
    vocabulary: str = ""

    @property
    def mib(self) -> float:
        """File size in MiB."""
        return self.file_bytes / 2**20

    def to_dict(self) -> dict:
        return asdict(self)


def check_threads(threads: int) -> None:
    """Refuse a thread count llama.cpp's quantizer cannot take (0 is one per core)."""
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 0:
        raise ValueError(f"threads must be a whole number >= 0 (0: every core), got {threads!r}")


def _config(folder: Path) -> dict:
    return json.loads((folder / "config.json").read_text())


def _check_tokenizer(folder: Path) -> WordVocab | None:
    """The word-level vocabulary to carry past the converter, ``None`` where the converter
    writes the tokenizer itself; a tokenizer neither can carry is refused before any work."""
    if (folder / "tokenizer.model").is_file():
        return None
    path = folder / "tokenizer.json"
    if not path.is_file():
        raise FileNotFoundError(f"{folder} holds no tokenizer (tokenizer.json or .model)")
    kind = json.loads(path.read_text()).get("model", {}).get("type")
    if kind == "WordLevel":
        return word_vocab(folder)
    if kind != "BPE":
        raise ValueError(
            f"the model's tokenizer is a {kind} tokenizer ({path}); llama.cpp's converter writes "
            "SentencePiece (tokenizer.model) and BPE tokenizers, and widthprune word-level ones, "
            "so this model cannot become a GGUF file"
        )
    return None


# what the converter reads of a checkpoint whose vocabulary is written afterwards
_WEIGHTS = ("config.json", "generation_config.json", "*.safetensors", "*.safetensors.index.json")


def _converter_input(folder: Path, vocab: WordVocab, work: Path) -> Path:
    """A folder of links to the checkpoint's weights, with a stand-in SentencePiece file."""
    staged = work / "converter-input"
    staged.mkdir()
    for pattern in _WEIGHTS:
        for path in folder.glob(pattern):
            (staged / path.name).symlink_to(path.resolve())
    write_sentencepiece_stand_in(vocab, staged / "tokenizer.model")
    return staged


def _named_folder(name: str | os.PathLike) -> Path:
    """The checkpoint folder of a name (``"toy"``, a packaged model) or a folder path."""
    from ..models.loading import REGISTERED, TOY_CHECKPOINT

    name = str(name)
    if name == "toy":
        return TOY_CHECKPOINT
    if name in REGISTERED:
        return REGISTERED[name].checkpoint()
    folder = Path(name).expanduser()
    if not (folder / "config.json").is_file():
        raise FileNotFoundError(f"{name} is not a checkpoint folder (no config.json)")
    return folder


def export_gguf(
    model_or_folder,
    out: str | os.PathLike,
    *,
    quant: str = "Q4_K_M",
    tokenizer=None,
    strict: bool = False,
    keep_f16: str | os.PathLike | None = None,
    overwrite: bool = False,
    threads: int = 0,
) -> GGUFExport:
    """Write a model as a GGUF file through llama.cpp's converter and quantizer.

    Args:
        model_or_folder: a checkpoint folder, a name (``"toy"``, a packaged model) or an
            in-memory model (then ``tokenizer`` is needed).
        out: the GGUF file to write (written under a temporary name, then renamed).
        quant: a scheme of :data:`widthprune.deployment.llamacpp.SCHEMES`.
        tokenizer: the tokenizer of an in-memory model.
        strict: refuse, instead of warning, a width the scheme cannot quantize fully.
        keep_f16: also keep the converter's F16 file here.
        overwrite: replace an existing ``out``.
        threads: quantizer threads (0: one per core).

    Raises:
        ValueError: ``out`` is or lies inside the source checkpoint folder; unknown scheme; a
            tokenizer llama.cpp cannot carry (SentencePiece, BPE and word-level tokenizers are
            carried); strict refusal.
        FileExistsError: ``out`` exists and ``overwrite`` is False.
        IsADirectoryError: ``out`` is a folder.
        FileNotFoundError: no checkpoint there; llama.cpp not installed (``make deploy``).
        RuntimeError: llama.cpp's converter or quantizer failed.
    """
    scheme = get_scheme(quant)
    check_threads(threads)
    out = Path(out).expanduser()
    for target in (out, keep_f16):
        if target is not None and Path(target).is_dir():
            raise IsADirectoryError(f"--out {target} is a folder; name the GGUF file to write")
        if target is not None and Path(target).exists() and not overwrite:
            raise FileExistsError(f"{target} exists; pass overwrite=True (--overwrite)")
    vocab = None
    if isinstance(model_or_folder, (str, os.PathLike)):
        from ..pruning.surgery import check_apart_from_source

        folder = _named_folder(model_or_folder)
        for target in (out, keep_f16):
            if target is not None:
                check_apart_from_source(target, folder)
        config = _config(folder)
        vocab = _check_tokenizer(folder)
    elif tokenizer is None:
        raise ValueError("export_gguf(model, ...) needs tokenizer= to write the GGUF's vocabulary")
    else:
        folder, config = None, model_or_folder.config.to_dict()
    plan = plan_tensors(config, scheme)
    check_plan(plan, scheme, config["intermediate_size"], strict)
    converter_dir()  # llama.cpp present, before any work
    out.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".tmp-{out.name}-", dir=out.parent))
    try:
        if folder is None:  # an in-memory model: saved for the converter
            folder = work / "checkpoint"
            model_or_folder.save_pretrained(folder)
            tokenizer.save_pretrained(folder)
            vocab = _check_tokenizer(folder)
        t0 = time.perf_counter()
        f16 = work / "model-f16.gguf"
        if vocab is None:
            convert_to_f16(folder, f16)
        else:
            converted = work / "model-f16-converter.gguf"
            convert_to_f16(_converter_input(folder, vocab, work), converted)
            write_wordpiece_vocab(converted, f16, vocab)
            converted.unlink()
        t1 = time.perf_counter()
        written = f16
        if scheme.ftype is not None:
            written = work / f"model-{scheme.name}.gguf"
            quantize(f16, written, scheme, threads=threads)
        t2 = time.perf_counter()
        seconds = {"convert": round(t1 - t0, 3), "quantize": round(t2 - t1, 3)}
        result = _describe(written, scheme, out, plan, seconds)
        if keep_f16 is not None and written != f16:
            shutil.move(ordinary_modes(f16), keep_f16)
        os.replace(ordinary_modes(written), out)
        return result
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _describe(written: Path, scheme: Scheme, out: Path, plan: list[dict], seconds: dict):
    """The :class:`GGUFExport` of a written file, before it is renamed to ``out``."""
    from gguf import GGUFReader

    reader = GGUFReader(written)  # parsed once: its tensors and its vocabulary's model
    tensors = read_tensor_types(reader, scheme)
    model_field = reader.fields.get("tokenizer.ggml.model")
    weights = sum(g["elements"] for g in tensors)
    width = next(g["row"] for g in tensors if g["kind"] == WIDTH_TENSOR)
    return GGUFExport(
        path=str(out),
        quant=scheme.name,
        width=width,
        file_bytes=written.stat().st_size,
        weights=weights,
        bits_per_weight=round(8 * sum(g["bytes"] for g in tensors) / weights, 4),
        tensors=tensors,
        plan=plan,
        seconds=seconds,
        vocabulary=model_field.contents() if model_field is not None else "",
    )


def quantize_gguf(
    f16: str | os.PathLike,
    out: str | os.PathLike,
    *,
    quant: str = "Q4_K_M",
    strict: bool = False,
    overwrite: bool = False,
    threads: int = 0,
) -> GGUFExport:
    """Quantize an F16 GGUF file (from :func:`export_gguf`) to another scheme.

    The plan is read from the F16 file's own tensors; warnings, ``strict`` and the report are
    those of :func:`export_gguf`.
    """
    scheme = get_scheme(quant)
    if scheme.ftype is None:
        raise ValueError("quantize_gguf needs a quantizing scheme, not F16")
    check_threads(threads)
    out = Path(out).expanduser()
    if out.exists() and not overwrite:
        raise FileExistsError(f"{out} exists; pass overwrite=True (--overwrite)")
    rows = [g for g in read_tensor_types(f16, get_scheme("F16")) if g["status"] != "F32 (1-D)"]
    plan = []
    for g in rows:
        status, reason = row_status(g["row"], scheme)
        plan.append(dict(kind=g["kind"], tensors=g["tensors"], row=g["row"], status=status))
        plan[-1]["reason"] = reason
    width = next(g["row"] for g in rows if g["kind"] == WIDTH_TENSOR)
    check_plan(plan, scheme, width, strict)
    tmp = out.with_name(f".tmp-{out.name}")
    try:
        t0 = time.perf_counter()
        quantize(f16, tmp, scheme, threads=threads)
        seconds = {"convert": 0.0, "quantize": round(time.perf_counter() - t0, 3)}
        result = _describe(tmp, scheme, out, plan, seconds)
        os.replace(ordinary_modes(tmp), out)
        return result
    finally:
        tmp.unlink(missing_ok=True)
