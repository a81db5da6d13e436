"""GLU-MLP surgery: the kept neurons sliced out in place, the whole prune, and its saving."""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import Tensor
from tqdm.auto import tqdm

from .architectures import gated_mlps, layer_widths
from .scoring import score
from .selection import select_neurons, target_width

__all__ = [
    "PruneReport",
    "count_parameters",
    "prune",
    "prune_mlp_",
    "save_pruned",
]


def _check_indices(layer: int, idx: Tensor, width: int) -> Tensor:
    if idx.ndim != 1 or idx.numel() == 0:
        raise ValueError(f"Layer {layer}: indices must be a non-empty 1-D tensor")
    if idx.dtype.is_floating_point or idx.dtype == torch.bool:
        raise ValueError(f"Layer {layer}: indices must be integers, got {idx.dtype}")
    idx = idx.long().cpu()
    if idx.min() < 0 or idx.max() >= width:
        raise ValueError(
            f"Layer {layer}: indices must lie in [0, {width}), got {idx.min()}..{idx.max()}"
        )
    if idx.numel() > 1 and not bool((idx[1:] > idx[:-1]).all()):
        raise ValueError(f"Layer {layer}: indices must be sorted and unique")
    return idx


def _slice_linear_(linear: torch.nn.Linear, idx: Tensor, dim: int) -> None:
    """Keep rows (dim 0: output features) or columns (dim 1: input features) ``idx`` in place."""
    idx = idx.to(linear.weight.device)
    weight = linear.weight.detach()
    # on CPU, index_select is fastest for rows and advanced indexing for columns (~2x each)
    kept = weight.index_select(0, idx) if dim == 0 else weight[:, idx]
    linear.weight = torch.nn.Parameter(kept.contiguous(), requires_grad=linear.weight.requires_grad)
    if dim == 0:
        if linear.bias is not None:
            linear.bias = torch.nn.Parameter(linear.bias.detach()[idx].contiguous())
        linear.out_features = idx.numel()
    else:
        linear.in_features = idx.numel()


def prune_mlp_(model, keep: dict[int, Tensor], *, progress: bool = False):
    """Keep only neurons ``keep[layer]`` of each listed layer's GLU-MLP, in place.

    gate_proj and up_proj lose rows (and bias entries), down_proj loses columns, with the same
    indices; module attributes and ``config.intermediate_size`` follow. Layers may end with
    different widths; the config can hold only one number, so it then holds the largest (see
    :func:`widthprune.layer_widths`), and :func:`save_pruned` refuses to save such a model.

    Returns:
        ``model``, for chaining.
    """
    mlps = dict(gated_mlps(model))
    unknown = sorted(set(keep) - set(mlps))
    if unknown:
        raise ValueError(f"No decoder layers {unknown}; the model has layers 0..{len(mlps) - 1}")
    checked = {}
    for layer, idx in keep.items():  # validate everything before touching any tensor
        mlp = mlps[layer]
        width = mlp.up_proj.out_features
        if mlp.gate_proj.out_features != width or mlp.down_proj.in_features != width:
            raise ValueError(f"Layer {layer}: gate/up/down disagree on the width")
        checked[layer] = _check_indices(layer, torch.as_tensor(idx), width)
    for layer, idx in tqdm(checked.items(), desc="pruning", unit="layer", disable=not progress):
        mlp = mlps[layer]
        _slice_linear_(mlp.gate_proj, idx, 0)
        _slice_linear_(mlp.up_proj, idx, 0)
        _slice_linear_(mlp.down_proj, idx, 1)
        if hasattr(mlp, "intermediate_size"):
            mlp.intermediate_size = idx.numel()
    model.config.intermediate_size = max(layer_widths(model).values())
    return model


def count_parameters(model) -> int:
    """Unique parameters of ``model``; tied tensors (embedding and lm_head) count once."""
    seen, total = set(), 0
    for p in model.parameters():
        key = (p.data_ptr(), p.numel()) if p.device.type != "meta" else id(p)
        if key not in seen:
            seen.add(key)
            total += p.numel()
    return total


@dataclass(frozen=True)
class PruneReport:
    """What one call of :func:`prune` did."""

    criterion: str  # scoring rule used
    width_before: int  # MLP width before pruning (every layer)
    width_after: int  # MLP width after pruning (every layer)
    hidden_size: int  # residual width, for the expansion ratio
    ratio_before: float  # width_before / hidden_size
    ratio_after: float  # width_after / hidden_size
    params_before: int  # unique parameters before
    params_after: int  # unique parameters after
    seconds_scoring: float  # wall time of the criterion
    seconds_pruning: float  # wall time of selection and surgery

    def to_dict(self) -> dict:
        return asdict(self)


def prune(
    model,
    *,
    criterion: str = "ppm",
    expansion_ratio: float | None = None,
    pruning_pct: float | None = None,
    width: int | None = None,
    round_to: int | None = None,
    rounding: str = "floor",
    calibration=None,
    seed: int = 0,
    progress: bool = False,
    scores: dict | None = None,
) -> PruneReport:
    """Score, select and cut in one call: every layer to the same width, in place.

    Give one of ``expansion_ratio``, ``pruning_pct`` or an explicit ``width``. ``scores``
    (``{layer: (intermediate,) float32}``) are the criterion's scores of this very model when
    they are already at hand (one unpruned model cut to several widths); they are then not
    computed again.
    """
    widths = set(layer_widths(model).values())
    if len(widths) != 1:
        raise ValueError(
            f"prune() needs layers of one width; this model has widths {sorted(widths)}"
        )
    before_width = widths.pop()
    if width is None:
        width = target_width(
            model.config,
            expansion_ratio=expansion_ratio,
            pruning_pct=pruning_pct,
            round_to=round_to,
            rounding=rounding,
        )
    elif expansion_ratio is not None or pruning_pct is not None:
        raise ValueError("Give width= or a target (expansion_ratio=/pruning_pct=), not both.")
    params_before = count_parameters(model)
    t0 = time.perf_counter()
    if scores is None:
        scores = score(model, criterion, calibration=calibration, seed=seed)
    t1 = time.perf_counter()
    prune_mlp_(model, select_neurons(scores, width), progress=progress)
    t2 = time.perf_counter()
    hidden = model.config.hidden_size
    return PruneReport(
        criterion=criterion
        if isinstance(criterion, str)
        else getattr(criterion, "__name__", "custom"),
        width_before=before_width,
        width_after=width,
        hidden_size=hidden,
        ratio_before=before_width / hidden,
        ratio_after=width / hidden,
        params_before=params_before,
        params_after=count_parameters(model),
        seconds_scoring=t1 - t0,
        seconds_pruning=t2 - t1,
    )


def check_apart_from_source(
    out: str | os.PathLike, source: str | os.PathLike | None, *, contains: bool = False
) -> None:
    """Refuse an output that is the ``source`` checkpoint folder, lies inside it, or (with
    ``contains``, for an output folder that may be replaced) holds it.

    Raises:
        ValueError: naming the output and the source.
    """
    if source is None or not Path(source).expanduser().exists():
        return
    out, source = Path(out).expanduser().resolve(), Path(source).expanduser().resolve()
    if out == source or source in out.parents:
        where = "is" if out == source else "lies inside"
        raise ValueError(f"--out {out} {where} the source checkpoint {source}; choose another")
    if contains and out in source.parents:
        raise ValueError(f"--out {out} holds the source checkpoint {source}; choose another")


def check_output_folder(
    out: str | os.PathLike, *, overwrite: bool = False, source: str | os.PathLike | None = None
) -> Path:
    """Refuse an output folder that would lose or mix data; return it as a Path.

    Raises:
        FileExistsError: ``out`` is a file, or a non-empty folder and ``overwrite`` is False.
        ValueError: ``out`` is, lies inside or holds the ``source`` checkpoint folder.
    """
    out = Path(out).expanduser()
    check_apart_from_source(out, source, contains=True)
    if out.exists() and not out.is_dir():
        raise FileExistsError(f"{out} exists and is a file, not a folder")
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        raise FileExistsError(
            f"{out} exists and is not empty; pass overwrite=True (--overwrite) to replace it"
        )
    return out


def save_pruned(
    model,
    out: str | os.PathLike,
    *,
    tokenizer=None,
    report: PruneReport | None = None,
    overwrite: bool = False,
) -> Path:
    """``save_pretrained`` a pruned model (and tokenizer, and prune_report.json) to ``out``.

    The folder is written under a temporary name and renamed into place, so it never mixes
    files of an earlier checkpoint with the new ones, and a crash leaves the old one intact.

    Raises:
        ValueError: the layers have different widths; plain ``from_pretrained`` could not load it.
        FileExistsError: see :func:`check_output_folder`.
    """
    import shutil
    import tempfile

    from ..filemodes import ordinary_modes

    widths = layer_widths(model)
    if len(set(widths.values())) != 1:
        raise ValueError(
            f"Layers have different MLP widths {widths}: transformers' from_pretrained "
            "loads only uniform widths, so this model cannot be saved as a standard checkpoint."
        )
    out = check_output_folder(out, overwrite=overwrite)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{out.name}-", dir=out.parent))
    try:
        model.save_pretrained(tmp)
        if tokenizer is not None:
            tokenizer.save_pretrained(tmp)
        if report is not None:
            (tmp / "prune_report.json").write_text(json.dumps(report.to_dict(), indent=2) + "\n")
        ordinary_modes(tmp)  # not mkdtemp's 0700 (nor safetensors' 0600 weights)
        if out.exists():
            shutil.rmtree(out)
        os.replace(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out
