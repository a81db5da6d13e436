"""Train the toy Llama on its world's text, deterministically, and save a standard checkpoint."""

from __future__ import annotations

import csv
import json
import math
import os
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from .corpus import EOS, PAD, training_rows, vocabulary
from .tokenizer import build_tokenizer
from .world import WorldConfig, build_world

__all__ = ["TrainConfig", "model_config", "train"]


@dataclass(frozen=True)
class TrainConfig:
    """Model shape and optimisation of the toy model."""

    seed: int = 0  # seed of the weights' initialisation and of the row order
    steps: int = 4800  # optimiser steps
    batch_size: int = 128  # rows per step
    seq_len: int = 256  # tokens per row; also the model's context length
    lr: float = 2e-3  # peak learning rate
    min_lr: float = 1e-4  # learning rate at the end of the cosine decay
    warmup: int = 200  # steps of linear warm-up
    weight_decay: float = 0.1  # AdamW decoupled weight decay on matrices
    grad_clip: float = 1.0  # largest gradient norm
    hidden_size: int = 192  # model width; the MLP width is 4x (Llama-3.2-1B's ratio)
    layers: int = 8  # decoder blocks
    heads: int = 6  # query heads (head size hidden_size / heads)
    kv_heads: int = 2  # key-value heads (grouped-query attention)
    workers: int = 1  # processes generating text (the rows do not depend on it)
    log_every: int = 50  # steps between rows of the training log


def model_config(cfg: TrainConfig, vocab_size: int, *, eos_id: int, pad_id: int):
    """The ``LlamaConfig`` of the toy: Llama-3.2's design (GQA, SwiGLU, tied embeddings)."""
    from transformers import LlamaConfig

    if cfg.hidden_size % cfg.heads or cfg.heads % cfg.kv_heads:
        raise ValueError(
            f"hidden_size={cfg.hidden_size} must divide by heads={cfg.heads}, "
            f"and heads by kv_heads={cfg.kv_heads}"
        )
    return LlamaConfig(
        vocab_size=vocab_size,
        hidden_size=cfg.hidden_size,
        intermediate_size=4 * cfg.hidden_size,
        num_hidden_layers=cfg.layers,
        num_attention_heads=cfg.heads,
        num_key_value_heads=cfg.kv_heads,
        head_dim=cfg.hidden_size // cfg.heads,
        hidden_act="silu",
        max_position_embeddings=cfg.seq_len,
        rms_norm_eps=1e-5,
        rope_parameters={"rope_type": "default", "rope_theta": 10000.0},
        tie_word_embeddings=True,
        bos_token_id=eos_id,
        eos_token_id=eos_id,
        pad_token_id=pad_id,
    )


def _lr(step: int, cfg: TrainConfig) -> float:
    if step < cfg.warmup:
        return cfg.lr * (step + 1) / cfg.warmup
    progress = (step - cfg.warmup) / max(1, cfg.steps - cfg.warmup)
    return cfg.min_lr + 0.5 * (cfg.lr - cfg.min_lr) * (1 + math.cos(math.pi * progress))


def _write_log(path: Path, rows: list[dict]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    os.replace(tmp, path)


def train(
    out: str | os.PathLike,
    *,
    world: WorldConfig | None = None,
    config: TrainConfig | None = None,
    device: str = "cpu",
    save_dtype: torch.dtype = torch.float16,
) -> list[dict]:
    """Generate the world's text, train the toy Llama on it and save it to ``out``.

    ``out`` receives a ``save_pretrained`` checkpoint (weights stored as ``save_dtype``), the
    tokenizer, ``train_log.csv`` (step, loss, learning rate, tokens, seconds) and
    ``toy.json`` (both configs). The folder is replaced only once training has finished.

    Args:
        out: the checkpoint folder.
        world: the world to generate; ``None`` is the default world.
        config: model shape and optimisation; ``None`` is the default.
        device: where to train (``"cpu"``, ``"cuda"``); CUDA trains in bfloat16 autocast.
        save_dtype: dtype of the saved weights.

    Returns:
        The rows of the training log.
    """
    world, config = world or WorldConfig(), config or TrainConfig()
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    before = (
        torch.are_deterministic_algorithms_enabled(),
        torch.is_deterministic_algorithms_warn_only_enabled(),
    )
    # deterministic kernels wherever one exists; a missing one warns rather than stops
    torch.use_deterministic_algorithms(True, warn_only=True)
    try:
        log = _train(Path(out), world, config, device, save_dtype)
    finally:
        torch.use_deterministic_algorithms(before[0], warn_only=before[1])
    return log


def _train(out: Path, world: WorldConfig, config: TrainConfig, device: str, save_dtype):
    import transformers
    from transformers import LlamaForCausalLM

    w = build_world(world)
    vocab = vocabulary(w)
    tok = build_tokenizer(vocab)
    n_rows = config.steps * config.batch_size
    rows = training_rows(w, vocab, n_rows, config.seq_len, workers=config.workers)
    order = np.random.default_rng(config.seed).permutation(n_rows)

    torch.manual_seed(config.seed)
    mcfg = model_config(config, len(vocab), eos_id=vocab.index(EOS), pad_id=vocab.index(PAD))
    # eager attention: its backward pass is deterministic on every device
    mcfg._attn_implementation = "eager"
    model = LlamaForCausalLM(mcfg).to(device).train()
    decay = [p for p in model.parameters() if p.ndim >= 2]
    no_decay = [p for p in model.parameters() if p.ndim < 2]
    opt = torch.optim.AdamW(
        [
            {"params": decay, "weight_decay": config.weight_decay},
            {"params": no_decay, "weight_decay": 0.0},
        ],
        lr=config.lr,
        betas=(0.9, 0.95),
        eps=1e-8,
    )
    autocast = torch.autocast("cuda", dtype=torch.bfloat16, enabled=device.startswith("cuda"))
    # everything is written to a side folder that replaces ``out`` once training has finished;
    # the log there keeps the loss curve of a run that dies
    tmp = out.with_name(out.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    log: list[dict] = []
    running, count, start = 0.0, 0, time.perf_counter()
    for step in tqdm(range(config.steps), desc="training", unit="step"):
        for group in opt.param_groups:
            group["lr"] = _lr(step, config)
        idx = order[step * config.batch_size : (step + 1) * config.batch_size]
        batch = torch.from_numpy(rows[idx].astype(np.int64)).to(device)
        with autocast:
            loss = model(input_ids=batch, labels=batch).loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
        opt.step()
        running += loss.detach()
        count += 1
        if (step + 1) % config.log_every == 0 or step + 1 == config.steps:
            log.append(
                {
                    "step": step + 1,
                    "loss": round(float(running) / count, 5),
                    "lr": _lr(step, config),
                    "tokens": (step + 1) * config.batch_size * config.seq_len,
                    "seconds": round(time.perf_counter() - start, 2),
                }
            )
            running, count = 0.0, 0
            _write_log(tmp / "train_log.csv", log)

    meta = {
        "world": asdict(world),
        "train": asdict(config),
        "device": torch.cuda.get_device_name(device) if device.startswith("cuda") else device,
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "train_seconds": log[-1]["seconds"],
    }
    model.config._attn_implementation = "sdpa"  # the default for inference
    model.to("cpu", save_dtype).eval().save_pretrained(tmp)
    tok.save_pretrained(tmp)
    (tmp / "toy.json").write_text(json.dumps(meta, indent=2) + "\n")
    if out.exists():
        shutil.rmtree(out)
    os.replace(tmp, out)
    return log
