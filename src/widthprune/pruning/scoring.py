"""Neuron scoring: one float32 score per GLU-MLP neuron and layer.

A criterion is ``fn(model, *, calibration=None, seed=0) -> dict[int, Tensor]``: for every decoder
layer index, a ``(intermediate,)`` float32 vector where a larger score means "more important,
keep". ``CRITERIA`` maps names to criteria; :func:`score` looks a name up and checks the result.

For neuron ``k`` with ``Wg``, ``Wu`` the gate_proj and up_proj weights (``nn.Linear`` layout, one
row per neuron) and ``Wd`` the down_proj weight (one column per neuron):

=============  ============================================================================
``ppm``        ``max(Wg[k]) + |min(Wg[k])| + max(Wu[k]) + |min(Wu[k])|`` (the published study)
``maw``        ``max|Wg[k]| + max|Wu[k]|`` (the rule the study's first version describes)
``vow``        ``var(Wg[k]) + var(Wu[k])`` (population variance)
``pon``        ``L1(Wg[k]) * L1(Wu[k])``
``l2``         ``L2(Wg[k]) + L2(Wu[k])``
``random``     uniform noise from a seeded generator
``activation`` mean over calibration tokens of ``|h_k|``, ``h = act(Wg x) * (Wu x)``
``wanda``      ``||Wd[:, k]||_2 * RMS_tokens(h_k)``
=============  ============================================================================
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from contextlib import contextmanager
from dataclasses import dataclass
from difflib import get_close_matches

import numpy as np
import pandas as pd
import torch
from torch import Tensor

from .architectures import gated_mlps

__all__ = [
    "CRITERIA",
    "Criterion",
    "record_mlp_activations",
    "score",
    "scores_frame",
]


_CHUNK_ROWS = 2048  # rows converted to float32 at a time: bounds the extra memory per layer


def _rowwise(weight: Tensor, fn: Callable[[Tensor], Tensor]) -> Tensor:
    """Apply a row reduction in float32, a block of rows at a time. (I, H) -> (I,) float32."""
    if weight.dtype == torch.float32:
        return fn(weight)
    return torch.cat([fn(block.float()) for block in weight.split(_CHUNK_ROWS)])


def _extremes(weight: Tensor) -> tuple[Tensor, Tensor]:
    """Row-wise (min, max) as float32. Exact in the native dtype, so no float32 copy is made."""
    # two reductions beat torch.aminmax on CPU bf16 by about 3x
    return weight.amin(dim=1).float(), weight.amax(dim=1).float()


def _ppm(model, *, calibration=None, seed: int = 0) -> dict[int, Tensor]:
    out = {}
    for i, mlp in gated_mlps(model):
        g_lo, g_hi = _extremes(mlp.gate_proj.weight.detach())
        u_lo, u_hi = _extremes(mlp.up_proj.weight.detach())
        out[i] = g_hi + g_lo.abs() + u_hi + u_lo.abs()
    return out


def _maw(model, *, calibration=None, seed: int = 0) -> dict[int, Tensor]:
    out = {}
    for i, mlp in gated_mlps(model):
        g_lo, g_hi = _extremes(mlp.gate_proj.weight.detach())
        u_lo, u_hi = _extremes(mlp.up_proj.weight.detach())
        out[i] = torch.maximum(g_hi.abs(), g_lo.abs()) + torch.maximum(u_hi.abs(), u_lo.abs())
    return out


def _pair(model, reduce: Callable[[Tensor], Tensor], combine) -> dict[int, Tensor]:
    out = {}
    for i, mlp in gated_mlps(model):
        g = _rowwise(mlp.gate_proj.weight.detach(), reduce)
        u = _rowwise(mlp.up_proj.weight.detach(), reduce)
        out[i] = combine(g, u)
    return out


def _vow(model, *, calibration=None, seed: int = 0) -> dict[int, Tensor]:
    return _pair(model, lambda w: w.var(dim=1, unbiased=False), torch.add)


def _pon(model, *, calibration=None, seed: int = 0) -> dict[int, Tensor]:
    return _pair(model, lambda w: w.abs().sum(dim=1), torch.mul)


def _l2(model, *, calibration=None, seed: int = 0) -> dict[int, Tensor]:
    return _pair(model, lambda w: torch.linalg.vector_norm(w, dim=1), torch.add)


def _random(model, *, calibration=None, seed: int = 0) -> dict[int, Tensor]:
    gen = torch.Generator().manual_seed(seed)
    return {i: torch.rand(mlp.up_proj.out_features, generator=gen) for i, mlp in gated_mlps(model)}


@contextmanager
def record_mlp_activations(model):
    """Accumulate statistics of every down_proj input ``h`` while the block runs.

    Yields a dict ``layer -> {"abs_sum", "sq_sum": (I,) float32, "tokens": int}``. The hooks are
    removed when the block exits, also on error. Padding is not masked: feed unpadded batches.
    """
    stats: dict[int, dict] = {}
    handles = []

    def make_hook(layer: int):
        def hook(module, args):
            h = args[0].detach().reshape(-1, args[0].shape[-1]).float()
            entry = stats.setdefault(
                layer,
                {
                    "abs_sum": torch.zeros(h.shape[1]),
                    "sq_sum": torch.zeros(h.shape[1]),
                    "tokens": 0,
                },
            )
            entry["abs_sum"] += h.abs().sum(dim=0).cpu()
            entry["sq_sum"] += h.square().sum(dim=0).cpu()
            entry["tokens"] += h.shape[0]

        return hook

    try:
        for i, mlp in gated_mlps(model):
            handles.append(mlp.down_proj.register_forward_pre_hook(make_hook(i)))
        yield stats
    finally:
        for handle in handles:
            handle.remove()


def _activation_stats(model, calibration: Iterable[Tensor] | None) -> dict[int, dict]:
    if calibration is None:
        raise ValueError(
            "This criterion needs calibration batches: pass calibration="
            "widthprune.calibration_batches(tokenizer, texts)."
        )
    device = next(model.parameters()).device
    with record_mlp_activations(model) as stats, torch.no_grad():
        for batch in calibration:
            model(input_ids=batch.to(device), use_cache=False)
    if not stats:
        raise ValueError("The calibration batches were empty: no token reached the MLPs.")
    return stats


def _activation(model, *, calibration=None, seed: int = 0) -> dict[int, Tensor]:
    stats = _activation_stats(model, calibration)
    return {i: s["abs_sum"] / s["tokens"] for i, s in sorted(stats.items())}


def _wanda(model, *, calibration=None, seed: int = 0) -> dict[int, Tensor]:
    stats = _activation_stats(model, calibration)
    out = {}
    for i, mlp in gated_mlps(model):
        column_norm = _rowwise(mlp.down_proj.weight.detach().T, lambda w: w.norm(dim=1)).cpu()
        rms = (stats[i]["sq_sum"] / stats[i]["tokens"]).sqrt()
        out[i] = column_norm * rms
    return out


@dataclass(frozen=True)
class Criterion:
    """A named scoring rule with what it needs: ``fn(model, *, calibration, seed)``."""

    fn: Callable[..., dict[int, Tensor]]  # the rule (the contract above)
    needs_calibration: bool = False  # reads activations on calibration text

    def __call__(self, model, *, calibration=None, seed: int = 0) -> dict[int, Tensor]:
        return self.fn(model, calibration=calibration, seed=seed)


CRITERIA: dict[str, Criterion] = {
    "ppm": Criterion(_ppm),
    "maw": Criterion(_maw),
    "vow": Criterion(_vow),
    "pon": Criterion(_pon),
    "l2": Criterion(_l2),
    "random": Criterion(_random),
    "activation": Criterion(_activation, needs_calibration=True),
    "wanda": Criterion(_wanda, needs_calibration=True),
}


def get_criterion(name: str) -> Criterion:
    """Look a criterion up by name; an unknown name lists the valid ones."""
    if name not in CRITERIA:
        hint = get_close_matches(name.lower(), CRITERIA, n=1)
        extra = f" Did you mean {hint[0]!r}?" if hint else ""
        raise KeyError(f"Unknown criterion {name!r}; valid: {sorted(CRITERIA)}.{extra}")
    return CRITERIA[name]


def score(
    model, criterion: str | Callable[..., dict[int, Tensor]], *, calibration=None, seed: int = 0
) -> dict[int, Tensor]:
    """Score every GLU-MLP neuron of ``model``.

    Args:
        model: a Llama-style causal LM whose decoder layers have gate/up/down projections.
        criterion: a name in ``CRITERIA``, a :class:`Criterion`, or any callable with the
            criterion contract.
        calibration: iterable of ``(batch, seq)`` LongTensors, for activation-aware criteria.
        seed: seed of the ``random`` criterion.

    Returns:
        ``{layer index: (intermediate,) float32 CPU tensor}``, finite.
    """
    fn = get_criterion(criterion) if isinstance(criterion, str) else criterion
    with torch.no_grad():
        scores = fn(model, calibration=calibration, seed=seed)
    widths = dict((i, mlp.up_proj.out_features) for i, mlp in gated_mlps(model))
    checked = {}
    for i, s in scores.items():
        s = s.detach().to("cpu", torch.float32)
        if s.shape != (widths[i],):
            raise ValueError(
                f"Layer {i}: criterion returned shape {tuple(s.shape)}, expected ({widths[i]},)"
            )
        if not torch.isfinite(s).all():
            raise ValueError(f"Layer {i}: criterion returned non-finite scores")
        checked[i] = s
    return checked


def scores_frame(scores: dict[str, dict[int, Tensor]]) -> pd.DataFrame:
    """Long form of several criteria's scores: one row per (criterion, layer, neuron).

    Args:
        scores: ``{criterion name: {layer: (I,) scores}}``.

    Returns:
        Columns ``criterion, layer, neuron, score, rank_pct`` where ``rank_pct`` is the neuron's
        percentile within its layer under that criterion (1.0 = most important).
    """
    frames = []
    for name, per_layer in scores.items():
        for layer, s in per_layer.items():
            values = s.double().numpy()
            frames.append(
                pd.DataFrame(
                    {
                        "criterion": name,
                        "layer": layer,
                        "neuron": np.arange(len(values)),
                        "score": values,
                        "rank_pct": pd.Series(values).rank(pct=True).to_numpy(),
                    }
                )
            )
    return pd.concat(frames, ignore_index=True)
