"""llama.cpp as the project uses it: its converter, its quantizer, and its quantization rules.

``make deploy`` builds llama-cpp-python (the ``deploy`` extra) and copies the converter of the
same llama.cpp source, ``convert_hf_to_gguf.py`` with its ``conversion`` and ``gguf-py``
folders, from the package's source archive to ``<venv>/share/llama.cpp`` (or the folder named
by ``WIDTHPRUNE_LLAMA_CPP``), with a ``VERSION`` file naming the llama-cpp-python it came with.

A quantization scheme asks for block-quantized types whose blocks run along a matrix row
(GGML's ``ne[0]``, the input dimension): the K-quants (Q4_K, Q5_K, Q6_K) need rows that are a
multiple of ``QK_K`` = 256, Q8_0, Q5_0 and Q4_0 a multiple of 32. Where a row does not fit,
llama.cpp's quantizer (``tensor_type_fallback`` in ``src/llama-quant.cpp``) falls back to a
32-block type (Q4_K -> Q5_0, Q5_K -> Q5_1, Q6_K -> Q8_0), and where that does not fit either,
keeps the tensor in F16. The rows of ``ffn_down`` are as long as the MLP width, so the width
decides how its largest matrices are stored.
"""

from __future__ import annotations

import ctypes
import importlib.metadata as metadata
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "LLAMA_CPP_PYTHON",
    "SCHEMES",
    "Scheme",
    "convert_to_f16",
    "converter_dir",
    "get_scheme",
    "import_llama_cpp",
    "quantize",
    "row_status",
]

LLAMA_CPP_PYTHON = "0.3.36"  # the llama-cpp-python release the project is tested with
_INSTALL_HINT = "run `make deploy` (builds llama-cpp-python and installs llama.cpp's converter)"
QK_K = 256  # block of the K-quants (ggml-common.h)
QK_32 = 32  # block of Q4_0, Q5_0, Q5_1, Q8_0 (ggml-common.h)


@dataclass(frozen=True)
class Scheme:
    """A GGUF quantization as llama.cpp's quantizer names it."""

    name: str  # e.g. "Q4_K_M"
    ftype: int | None  # llama_ftype of llama.h; None: the converter's F16 file is the result
    block: int  # row length (multiple of) that the scheme's own types need
    types: tuple[str, ...]  # GGML types the scheme asks for (1-D tensors stay F32 in all)
    fallback: tuple[str, ...]  # 32-block types llama.cpp uses for rows that miss `block`


SCHEMES: dict[str, Scheme] = {
    s.name: s
    for s in (
        Scheme("F16", None, 1, ("F16",), ()),
        Scheme("Q8_0", 7, QK_32, ("Q8_0",), ()),
        Scheme("Q4_0", 2, QK_32, ("Q4_0", "Q6_K", "Q8_0"), ()),
        Scheme("Q4_K_M", 15, QK_K, ("Q4_K", "Q6_K"), ("Q5_0", "Q8_0")),
        Scheme("Q5_K_M", 17, QK_K, ("Q5_K", "Q6_K"), ("Q5_1", "Q8_0")),
        Scheme("Q6_K", 18, QK_K, ("Q6_K",), ("Q8_0",)),
    )
}


def get_scheme(name: str) -> Scheme:
    """The scheme of a name (case-insensitive).

    Raises:
        ValueError: an unknown name; the message lists the known ones.
    """
    scheme = SCHEMES.get(name.upper())
    if scheme is None:
        raise ValueError(f"unknown quantization {name!r}; known: {', '.join(SCHEMES)}")
    return scheme


def row_status(row: int, scheme: Scheme) -> tuple[str, str]:
    """``(status, reason)`` of a 2-D tensor whose rows hold ``row`` weights, under ``scheme``.

    status is ``"as asked"``, ``"fallback"`` (a 32-block type instead of a K-quant) or
    ``"F16"`` (left unquantized), following llama.cpp's ``tensor_type_fallback``.
    """
    if scheme.ftype is None or row % scheme.block == 0:
        return "as asked", ""
    if scheme.block > QK_32 and row % QK_32 == 0:
        return "fallback", f"row length {row} is not a multiple of {scheme.block}"
    return "F16", f"row length {row} is not a multiple of {QK_32}"


def import_llama_cpp():
    """The ``llama_cpp`` module, with llama.cpp's logging silenced.

    Raises:
        FileNotFoundError: llama-cpp-python is not installed.
    """
    try:
        import llama_cpp
    except ImportError:
        raise FileNotFoundError(f"llama-cpp-python is not installed: {_INSTALL_HINT}") from None
    return llama_cpp


def converter_dir() -> Path:
    """The folder holding llama.cpp's ``convert_hf_to_gguf.py`` (same source as llama_cpp).

    Raises:
        FileNotFoundError: no converter, or one from another llama-cpp-python version.
    """
    folder = Path(os.environ.get("WIDTHPRUNE_LLAMA_CPP") or Path(sys.prefix, "share", "llama.cpp"))
    script = folder / "convert_hf_to_gguf.py"
    if not script.is_file():
        raise FileNotFoundError(f"llama.cpp's converter is not at {script}: {_INSTALL_HINT}")
    try:
        installed = metadata.version("llama-cpp-python")
    except metadata.PackageNotFoundError:
        raise FileNotFoundError(f"llama-cpp-python is not installed: {_INSTALL_HINT}") from None
    stated = (folder / "VERSION").read_text().strip() if (folder / "VERSION").is_file() else "?"
    if stated != installed:
        raise FileNotFoundError(
            f"the converter at {folder} comes from llama-cpp-python {stated}, but "
            f"{installed} is installed: {_INSTALL_HINT}"
        )
    return folder


def convert_to_f16(checkpoint: str | os.PathLike, out: str | os.PathLike) -> None:
    """Run llama.cpp's converter on a Hugging Face checkpoint folder, writing an F16 GGUF.

    Raises:
        RuntimeError: the converter failed; the message ends with its last output lines.
    """
    script = converter_dir() / "convert_hf_to_gguf.py"
    command = [sys.executable, str(script), str(checkpoint), "--outfile", str(out)]
    done = subprocess.run(
        [*command, "--outtype", "f16"],
        capture_output=True,
        text=True,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )
    if done.returncode != 0:
        tail = "\n".join((done.stderr or done.stdout).strip().splitlines()[-5:])
        raise RuntimeError(f"llama.cpp's converter failed on {checkpoint}:\n{tail}")


def quantize(
    f16: str | os.PathLike, out: str | os.PathLike, scheme: Scheme, *, threads: int = 0
) -> None:
    """Quantize an F16 GGUF with llama.cpp's own quantizer (``llama_model_quantize``).

    Args:
        f16: the converter's F16 file.
        out: the file to write.
        scheme: a quantizing scheme (not F16).
        threads: quantizer threads; 0: one per core.

    Raises:
        ValueError: ``scheme`` does not quantize.
        RuntimeError: llama.cpp reported a failure.
    """
    if scheme.ftype is None:
        raise ValueError(f"{scheme.name} is the converter's own output; nothing to quantize")
    llama_cpp = import_llama_cpp()
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = scheme.ftype
    params.nthread = threads
    # llama.cpp logs every tensor: kept here, and shown only if it fails (the export's report
    # says what each tensor became)
    lines: list[str] = []

    @llama_cpp.llama_log_callback
    def keep(level, text, user_data):
        lines.append(text.decode("utf-8", errors="replace"))

    llama_cpp.llama_log_set(keep, ctypes.c_void_p(0))
    try:
        status = llama_cpp.llama_model_quantize(
            os.fsencode(f16), os.fsencode(out), ctypes.byref(params)
        )
    finally:
        from llama_cpp import _logger  # the binding's own logger, as before

        llama_cpp.llama_log_set(_logger.llama_log_callback, ctypes.c_void_p(0))
    if status != 0:
        tail = "; ".join("".join(lines).strip().splitlines()[-3:])
        raise RuntimeError(f"llama.cpp could not quantize {f16} to {scheme.name}: {tail}")
