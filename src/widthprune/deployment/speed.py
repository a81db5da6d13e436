"""Prefill and decode speed of a GGUF file in llama.cpp on this machine's CPU.

Prefill evaluates a prompt of ``prompt_tokens`` ids in one batch; decode then evaluates
``new_tokens`` greedy tokens one at a time, as a chat does. Each repeat starts from an empty
cache after one untimed warm-up, and reports tokens per second of both phases (wall time of
llama.cpp's evaluation calls, which include the Python binding's small per-call overhead).
"""

from __future__ import annotations

import os
import time

import numpy as np

from .equivalence import open_gguf

__all__ = ["measure_gguf_speed"]


def measure_gguf_speed(
    path: str | os.PathLike,
    *,
    prompt_tokens: int = 128,
    new_tokens: int = 64,
    repeats: int = 5,
    threads: int = 2,
    seed: int = 0,
) -> list[dict]:
    """Tokens per second of prefill and decode, one dict per repeat.

    Args:
        path: the GGUF file.
        prompt_tokens: prompt length (seeded random ids, special ids excluded).
        new_tokens: tokens decoded after the prompt.
        repeats: timed repeats (after one warm-up).
        threads: llama.cpp CPU threads.
        seed: seed of the prompt's ids.

    Returns:
        ``[{"repeat", "prefill_tokens_per_s", "decode_tokens_per_s", "prefill_s",
        "decode_s"}]``.

    Raises:
        ValueError: a count below 1.
    """
    if min(prompt_tokens, new_tokens, repeats, threads) < 1:
        raise ValueError("prompt_tokens, new_tokens, repeats and threads must be >= 1")
    llm = open_gguf(path, n_ctx=prompt_tokens + new_tokens + 16, threads=threads)
    vocab = llm.n_vocab()
    prompt = np.random.default_rng(seed).integers(8, vocab, prompt_tokens).tolist()
    rows = []
    try:
        for repeat in range(-1, repeats):  # -1: warm-up
            llm.reset()
            t0 = time.perf_counter()
            llm.eval(prompt)
            t1 = time.perf_counter()
            for _ in range(new_tokens):
                llm.eval([int(np.argmax(llm.scores[llm.n_tokens - 1]))])
            t2 = time.perf_counter()
            if repeat >= 0:
                rows.append(
                    {
                        "repeat": repeat,
                        "prefill_tokens_per_s": prompt_tokens / (t1 - t0),
                        "decode_tokens_per_s": new_tokens / (t2 - t1),
                        "prefill_s": t1 - t0,
                        "decode_s": t2 - t1,
                    }
                )
    finally:
        llm.close()
    return rows
