"""Llama-3.2 shapes as data: widths, expansion ratios and parameter counts; and the gated MLPs
of a model in memory, layer by layer.

Everything here is arithmetic on shapes or a walk over modules; nothing loads weights. The
numbers are those of the published ``config.json`` files of meta-llama/Llama-3.2-1B and
Llama-3.2-3B.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, replace
from difflib import get_close_matches
from typing import TYPE_CHECKING

import pandas as pd

if TYPE_CHECKING:
    import torch

__all__ = [
    "SHAPES",
    "budget_table",
    "LlamaShape",
    "count_shape_parameters",
    "expansion_ratio",
    "gated_mlps",
    "get_shape",
    "layer_widths",
    "llama_config",
    "pct_width",
]


@dataclass(frozen=True)
class LlamaShape:
    """The hyper-parameters that fix a Llama model's tensors (and so its cost)."""

    name: str  # registry key, e.g. "llama-3.2-1b"
    hidden_size: int  # width of the residual stream
    intermediate_size: int  # GLU-MLP width: rows of gate_proj/up_proj, columns of down_proj
    num_hidden_layers: int  # decoder blocks
    num_attention_heads: int  # query heads
    num_key_value_heads: int  # key/value heads (grouped-query attention)
    head_dim: int  # width of one attention head
    vocab_size: int  # tokenizer vocabulary
    tie_word_embeddings: bool  # lm_head shares the embedding matrix
    rope_theta: float = 500_000.0  # rotary base frequency
    rope_scaling: dict | None = field(default=None, hash=False)  # llama3 long-context scaling
    max_position_embeddings: int = 131_072  # context length the rotary scaling was built for
    rms_norm_eps: float = 1e-5  # RMSNorm epsilon
    bos_token_id: int = 128_000  # <|begin_of_text|>
    eos_token_id: int = 128_001  # <|end_of_text|>

    @property
    def expansion_ratio(self) -> float:
        """intermediate_size / hidden_size (4.0 for 1B, 2.67 for 3B)."""
        return self.intermediate_size / self.hidden_size


_LLAMA3_ROPE = {
    "rope_type": "llama3",
    "factor": 32.0,
    "high_freq_factor": 4.0,
    "low_freq_factor": 1.0,
    "original_max_position_embeddings": 8192,
}

SHAPES: dict[str, LlamaShape] = {
    "llama-3.2-1b": LlamaShape(
        name="llama-3.2-1b",
        hidden_size=2048,
        intermediate_size=8192,
        num_hidden_layers=16,
        num_attention_heads=32,
        num_key_value_heads=8,
        head_dim=64,
        vocab_size=128_256,
        tie_word_embeddings=True,
        rope_scaling=_LLAMA3_ROPE,
    ),
    "llama-3.2-3b": LlamaShape(
        name="llama-3.2-3b",
        hidden_size=3072,
        intermediate_size=8192,
        num_hidden_layers=28,
        num_attention_heads=24,
        num_key_value_heads=8,
        head_dim=128,
        vocab_size=128_256,
        tie_word_embeddings=True,
        rope_scaling=_LLAMA3_ROPE,
    ),
}


def get_shape(name: str, *, intermediate_size: int | None = None) -> LlamaShape:
    """Return the registered shape ``name``, optionally with another MLP width.

    Raises:
        KeyError: unknown name; the message lists the known ones.
    """
    key = name.lower()
    if key not in SHAPES:
        hint = get_close_matches(key, SHAPES, n=1)
        extra = f" Did you mean {hint[0]!r}?" if hint else ""
        raise KeyError(f"Unknown shape {name!r}; known shapes: {sorted(SHAPES)}.{extra}")
    shape = SHAPES[key]
    if intermediate_size is not None:
        if intermediate_size < 1:
            raise ValueError(f"intermediate_size must be >= 1, got {intermediate_size}")
        shape = replace(shape, intermediate_size=int(intermediate_size))
    return shape


def llama_config(shape: LlamaShape):
    """A ``transformers.LlamaConfig`` for ``shape``."""
    from transformers import LlamaConfig

    kwargs = asdict(shape)
    kwargs.pop("name")
    rope = kwargs.pop("rope_scaling")
    config = LlamaConfig(**kwargs)
    if rope is not None:
        # transformers 5 keeps theta inside rope_parameters; 4.x reads rope_scaling.
        if hasattr(config, "rope_parameters"):
            config.rope_parameters = {**rope, "rope_theta": shape.rope_theta}
        else:
            config.rope_scaling = dict(rope)
    return config


def expansion_ratio(config) -> float:
    """intermediate_size / hidden_size of a config (or shape)."""
    return config.intermediate_size / config.hidden_size


def pct_width(intermediate_size: int, pruning_pct: float) -> int:
    """Width left after removing floor(pct/100 * intermediate_size) neurons (the study's rule)."""
    if not 0 <= pruning_pct < 100:
        raise ValueError(f"pruning_pct must be in [0, 100), got {pruning_pct}")
    # round() first so that 30 % of 8192 (2457.6000000000004 in floats) floors as intended
    removed = math.floor(round(pruning_pct * intermediate_size / 100, 9))
    return intermediate_size - removed


def count_shape_parameters(shape: LlamaShape, width: int | None = None) -> int:
    """Unique parameters of a Llama of ``shape`` with MLP width ``width`` (tied embeddings once)."""
    h, layers = shape.hidden_size, shape.num_hidden_layers
    width = shape.intermediate_size if width is None else width
    q = h * shape.num_attention_heads * shape.head_dim
    kv = 2 * h * shape.num_key_value_heads * shape.head_dim
    o = shape.num_attention_heads * shape.head_dim * h
    mlp = 3 * h * width
    norms = 2 * h
    embed = shape.vocab_size * h
    head = 0 if shape.tie_word_embeddings else embed
    return layers * (q + kv + o + mlp + norms) + h + embed + head


def budget_table(
    shapes: list[str] | None = None,
    *,
    pcts: tuple[float, ...] = (0, 10, 20, 30, 40, 50, 60),
    round_to: tuple[int, ...] = (64, 128),
) -> pd.DataFrame:
    """Width, expansion ratio and parameter count of each shape at each pruning percentage.

    Returns:
        One row per (shape, pct): ``model, pruning_pct, width, expansion_ratio, parameters,
        mlp_share`` (fraction of parameters in the MLPs) and ``aligned_<m>`` (width floored to a
        multiple of m) for every m in ``round_to``.
    """
    rows = []
    for name in shapes or list(SHAPES):
        shape = get_shape(name)
        for pct in pcts:
            width = pct_width(shape.intermediate_size, pct)
            params = count_shape_parameters(shape, width)
            mlp = 3 * shape.hidden_size * width * shape.num_hidden_layers
            row = {
                "model": name,
                "pruning_pct": pct,
                "width": width,
                "expansion_ratio": width / shape.hidden_size,
                "parameters": params,
                "mlp_share": mlp / params,
            }
            row.update({f"aligned_{m}": width // m * m for m in round_to})
            rows.append(row)
    return pd.DataFrame(rows)


def _decoder_layers(model):
    """The list of decoder blocks of a causal LM (``model.model.layers`` for Llama)."""
    base = getattr(model, "model", model)
    layers = getattr(base, "layers", None)
    if layers is None:
        raise TypeError(
            f"{type(model).__name__} has no decoder layers at .model.layers; "
            "widthprune prunes Llama-style decoder-only models."
        )
    return layers


def gated_mlps(model) -> list[tuple[int, torch.nn.Module]]:
    """``[(layer index, mlp)]`` for every decoder layer; each mlp has gate/up/down projections.

    Raises:
        TypeError: a layer's MLP is not gated; the message names the module that was found.
    """
    out = []
    for i, layer in enumerate(_decoder_layers(model)):
        mlp = getattr(layer, "mlp", None)
        if mlp is None or not all(hasattr(mlp, p) for p in ("gate_proj", "up_proj", "down_proj")):
            found = type(mlp).__name__ if mlp is not None else "no .mlp attribute"
            children = [n for n, _ in mlp.named_children()] if mlp is not None else []
            raise TypeError(
                f"Layer {i}: expected a gated MLP with gate_proj, up_proj and down_proj, "
                f"found {found} with children {children}."
            )
        out.append((i, mlp))
    return out


def layer_widths(model) -> dict[int, int]:
    """Current MLP width of every layer (rows of up_proj)."""
    return {i: mlp.up_proj.out_features for i, mlp in gated_mlps(model)}
