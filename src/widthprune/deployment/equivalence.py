"""Is the GGUF file the same model? llama.cpp's logits and greedy text against PyTorch's.

:func:`check_gguf` lets llama.cpp continue a few prompts greedily from their token ids, then
runs the PyTorch model once over each prompt and llama.cpp's continuation. The greedy
continuations are equal exactly when PyTorch's arg-max at every continued position is the
token llama.cpp chose (by induction over the positions), and the logits of every position must
agree within the tolerance of F16 weights and F16 activations (llama.cpp's CPU matrix products
round activations to F16 for F16 weights).
"""

from __future__ import annotations

import os

import numpy as np
import torch

from .llamacpp import import_llama_cpp

__all__ = ["PROMPTS", "check_gguf", "open_gguf", "prompts_for"]

PROMPTS = (
    "The capital of France is",
    "Here is a list of three colours: red,",
    "def add(a, b):\n    return",
)


def prompts_for(tokenizer) -> tuple[str, ...]:
    """:data:`PROMPTS` where the tokenizer knows their words; else the toy world's questions.

    A word-level tokenizer (the toy's) turns every word it lacks into its unknown token, so
    the English prompts would compare little more than that token's continuations.
    """
    unk = tokenizer.unk_token_id
    known = unk is None or all(
        unk not in tokenizer(p, add_special_tokens=False)["input_ids"] for p in PROMPTS
    )
    if known:
        return PROMPTS
    from ..toy.world import build_world, knowledge_items

    return tuple(item["question"] for item in knowledge_items(build_world())[:3])


# Accepted logit difference, as a fraction of the largest logit's magnitude: about ten F16
# rounding steps (2**-10); SmolLM2-135M's F16 file differs by 0.2 %, another model by 100 %.
RTOL = 0.01


def open_gguf(path: str | os.PathLike, *, n_ctx: int = 512, threads: int = 2, logits_all=False):
    """A ``llama_cpp.Llama`` over a GGUF file, quiet, on ``threads`` CPU threads."""
    llama_cpp = import_llama_cpp()
    return llama_cpp.Llama(
        model_path=str(path),
        n_ctx=n_ctx,
        n_batch=n_ctx,
        n_threads=threads,
        n_threads_batch=threads,
        logits_all=logits_all,
        verbose=False,
    )


def _continue_greedily(llm, ids: list[int], new_tokens: int) -> tuple[list[int], np.ndarray]:
    """llama.cpp's greedy continuation and the logits of every position it evaluated."""
    llm.reset()
    llm.eval(ids)
    chosen = []
    for step in range(new_tokens):
        token = int(np.argmax(llm.scores[llm.n_tokens - 1]))
        chosen.append(token)
        if step + 1 < new_tokens:
            llm.eval([token])
    return chosen, np.array(llm.scores[: llm.n_tokens], dtype=np.float32)


def check_gguf(
    path: str | os.PathLike,
    model,
    tokenizer,
    *,
    prompts: tuple[str, ...] | None = None,
    new_tokens: int = 12,
    threads: int = 2,
    rtol: float = RTOL,
) -> dict:
    """Compare an F16 GGUF file in llama.cpp with the PyTorch model it was exported from.

    Args:
        path: the GGUF file (F16: quantized files differ by design).
        model: the PyTorch model (evaluated in float32 on the CPU).
        tokenizer: its tokenizer; prompts are given to both as the same token ids.
        prompts: texts to continue (default: :func:`prompts_for` the tokenizer).
        new_tokens: greedy tokens per prompt.
        threads: llama.cpp CPU threads.
        rtol: accepted logit difference, as a fraction of the largest logit magnitude.

    Returns:
        ``{"passed", "max_abs_logit_difference", "tolerance", "prompts": [{prompt,
        continuation (llama.cpp's text), greedy_equal, first_difference (position or None),
        max_abs_logit_difference, tokenizer_equal}]}``; tokenizer_equal: llama.cpp's own
        tokenizer gives the same ids as ``tokenizer`` (reported, not part of ``passed``).
    """
    prompts = prompts_for(tokenizer) if prompts is None else tuple(prompts)
    encoded = [tokenizer(p, add_special_tokens=False)["input_ids"] for p in prompts]
    longest = max(len(ids) for ids in encoded) + new_tokens
    llm = open_gguf(path, n_ctx=max(64, longest), threads=threads, logits_all=True)
    model = model.float().cpu().eval()
    rows, worst, scale = [], 0.0, 0.0
    for prompt, ids in zip(prompts, encoded, strict=True):
        chosen, theirs = _continue_greedily(llm, ids, new_tokens)
        sequence = ids + chosen
        with torch.no_grad():
            ours = model(torch.tensor([sequence[:-1]])).logits[0].float().numpy()
        picked = ours[len(ids) - 1 :].argmax(-1).tolist()
        differs = [i for i, (a, b) in enumerate(zip(picked, chosen, strict=True)) if a != b]
        gap = float(np.abs(ours - theirs).max())
        worst, scale = max(worst, gap), max(scale, float(np.abs(ours).max()))
        own_ids = llm.tokenize(prompt.encode(), add_bos=False, special=False)
        rows.append(
            {
                "prompt": prompt,
                "continuation": tokenizer.decode(chosen),
                "greedy_equal": not differs,
                "first_difference": differs[0] if differs else None,
                "max_abs_logit_difference": gap,
                "tokenizer_equal": list(own_ids) == list(ids),
            }
        )
    llm.close()
    tolerance = rtol * scale
    return {
        "passed": worst <= tolerance and all(r["greedy_equal"] for r in rows),
        "max_abs_logit_difference": worst,
        "tolerance": tolerance,
        "prompts": rows,
    }
