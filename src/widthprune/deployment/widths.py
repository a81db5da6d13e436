"""GGUF size and llama.cpp speed across MLP widths: the measurement and its summary.

:func:`planned_widths` lists the unpruned width, the study's percentages (floor rule) and each
one's widths aligned down to given multiples; :func:`measure_width` prunes a copy of a model to
one width (ppm), exports it through llama.cpp and times each quantization;
:func:`summarize_widths` reduces the repeats to medians with their spread.
``benchmarks/bench_gguf.py`` records the measurement; chapter 7 reads it or repeats it.
"""

from __future__ import annotations

import copy
import os
import tempfile
from pathlib import Path

import pandas as pd

from ..pruning.selection import target_width
from ..pruning.surgery import prune
from ..runs.config import STUDY_PCTS
from .export import export_gguf, quantize_gguf
from .speed import measure_gguf_speed

__all__ = ["measure_width", "measure_widths", "planned_widths", "summarize_widths"]


def planned_widths(config, pcts, round_tos) -> list[dict]:
    """The unpruned width, each percentage's floor-rule width and its aligned widths.

    Returns:
        One dict per distinct width, widest first: width, pruning_pct, round_to (0: not
        rounded), kind ("unpruned", "study" or "aligned").
    """
    full = config.intermediate_size
    rows = {full: {"width": full, "pruning_pct": 0.0, "round_to": 0, "kind": "unpruned"}}
    for pct in pcts:  # the study's widths first: an aligned one may coincide with one of them
        width = target_width(config, pruning_pct=pct)
        rows.setdefault(width, {"width": width, "pruning_pct": pct, "round_to": 0, "kind": "study"})
    for pct in pcts:
        for r in round_tos:
            aligned = target_width(config, pruning_pct=pct, round_to=r)
            rows.setdefault(
                aligned, {"width": aligned, "pruning_pct": pct, "round_to": r, "kind": "aligned"}
            )
    return sorted(rows.values(), key=lambda r: -r["width"])


def measure_width(
    model,
    tokenizer,
    row: dict,
    work: str | os.PathLike,
    *,
    quants: tuple[str, ...] = ("F16", "Q8_0", "Q4_K_M"),
    sizes_only: bool = False,
    prompt_tokens: int = 128,
    new_tokens: int = 32,
    repeats: int = 5,
    threads: int = 2,
) -> pd.DataFrame:
    """Prune a copy of ``model`` to ``row["width"]``, export, quantize, size and time.

    Args:
        model: the unpruned model (left unchanged).
        tokenizer: its tokenizer (llama.cpp's converter must accept it).
        row: a dict of :func:`planned_widths` (its keys are copied into every output row).
        work: a folder for the GGUF files (deleted after measuring).
        quants: schemes to measure ("F16" is always exported, as the quantizer's input).
        sizes_only: skip the timing.
        prompt_tokens, new_tokens, repeats, threads: see
            :func:`widthprune.deployment.measure_gguf_speed`.

    Returns:
        One row per (scheme, repeat), or per scheme with ``sizes_only``: the row's keys, quant,
        hidden_size, file_mib, bits_per_weight, ffn_down_types, tensors_f16, tensors_fallback,
        load_average_1m, and the speed columns of ``measure_gguf_speed``.
    """
    work = Path(work)
    pruned = copy.deepcopy(model)
    if row["width"] != model.config.intermediate_size:
        prune(pruned, criterion="ppm", width=row["width"])
    f16 = work / f"w{row['width']}-F16.gguf"
    exports = {"F16": export_gguf(pruned.half(), f16, quant="F16", tokenizer=tokenizer)}
    del pruned
    out = []
    try:
        for quant in quants:
            if quant not in exports:
                path = work / f"w{row['width']}-{quant}.gguf"
                exports[quant] = quantize_gguf(f16, path, quant=quant, threads=threads)
            e = exports[quant]
            down = [g for g in e.tensors if g["kind"] == "ffn_down"]
            size = {
                **row,
                "quant": e.quant,
                "hidden_size": model.config.hidden_size,
                "file_mib": e.mib,
                "bits_per_weight": e.bits_per_weight,
                "ffn_down_types": "+".join(sorted({g["type"] for g in down})),
                "tensors_f16": sum(g["tensors"] for g in e.tensors if g["status"] == "F16"),
                "tensors_fallback": sum(
                    g["tensors"] for g in e.tensors if g["status"] == "fallback"
                ),
                "load_average_1m": os.getloadavg()[0],
            }
            if sizes_only:
                out.append(size)
                continue
            speed = measure_gguf_speed(
                e.path,
                prompt_tokens=prompt_tokens,
                new_tokens=new_tokens,
                repeats=repeats,
                threads=threads,
            )
            out += [{**size, **r, "load_average_1m": os.getloadavg()[0]} for r in speed]
    finally:
        for path in work.glob(f"w{row['width']}-*.gguf"):
            path.unlink()
    return pd.DataFrame(out)


def measure_widths(model_name: str, widths=None, **settings) -> pd.DataFrame:
    """:func:`measure_width` for each of ``widths`` of a named model, in a temporary folder.

    Args:
        model_name: a name or folder :func:`widthprune.load` reads.
        widths: MLP widths; each is labelled as :func:`planned_widths` labels the study's
            percentages (10..60) and their alignments to 32, 64, 128 and 256, else "other".
            None: every planned width, widest first.
        **settings: keyword arguments of :func:`measure_width`.
    """
    from tqdm.auto import tqdm

    from ..models.loading import load

    model, tokenizer = load(model_name)
    model = model.float()
    plan = planned_widths(model.config, [p for p in STUDY_PCTS if p], (32, 64, 128, 256))
    known = {r["width"]: r for r in plan}
    widths = list(known) if widths is None else widths
    frames = []
    with tempfile.TemporaryDirectory(prefix="gguf-widths-") as work:
        for width in tqdm(widths, desc="widths"):
            row = known.get(width, {"width": width, "pruning_pct": float("nan"), "round_to": 0,
                                    "kind": "other"})  # fmt: skip
            frames.append(measure_width(model, tokenizer, {"model": model_name, **row}, work,
                                        **settings))  # fmt: skip
    return pd.concat(frames, ignore_index=True)


def summarize_widths(measured: pd.DataFrame) -> pd.DataFrame:
    """Medians over the repeats, with min and max, per (width, quant); sizes as measured.

    Returns:
        One row per (width, quant): the size columns, ``prefill`` and ``decode`` (median
        tokens/s), their ``_min`` and ``_max``, ``repeats``, and ``q4k_ready``/``q8_ready``
        (the width is a multiple of 256 / 32).
    """
    keys = ["width", "quant"]
    first = measured.groupby(keys, as_index=False).first()
    size = first[
        [*keys, "kind", "pruning_pct", "round_to", "hidden_size", "file_mib", "bits_per_weight"]
        + ["ffn_down_types", "tensors_f16", "tensors_fallback"]
    ]
    if "decode_tokens_per_s" in measured:
        speed = measured.groupby(keys).agg(
            prefill=("prefill_tokens_per_s", "median"),
            prefill_min=("prefill_tokens_per_s", "min"),
            prefill_max=("prefill_tokens_per_s", "max"),
            decode=("decode_tokens_per_s", "median"),
            decode_min=("decode_tokens_per_s", "min"),
            decode_max=("decode_tokens_per_s", "max"),
            repeats=("repeat", "count"),
        )
        size = size.merge(speed.reset_index(), on=keys)
    size = size.assign(q4k_ready=size["width"] % 256 == 0, q8_ready=size["width"] % 32 == 0)
    return size.sort_values(["quant", "width"], ascending=[True, False]).reset_index(drop=True)
