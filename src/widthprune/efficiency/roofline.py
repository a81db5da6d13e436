"""Where decode time goes: bytes over bandwidth; the published latency as tokens x time/token.

At small batch a decode step is memory-bound: every weight is read once per step (the tied
embedding too, as the output projection), plus each sequence's live KV cache. Its floor is

    roofline time per token = (weight bytes + batch * context * KV bytes per token) / bandwidth

with the bandwidth of a large device-to-device copy (bytes read plus bytes written), measured on
the same GPU. The KV term uses the live context (what an ideal kernel reads), the mean over the
decode: ``prompt_len + new_tokens / 2``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from ..pruning.architectures import LlamaShape, count_shape_parameters, get_shape
from ..pruning.surgery import count_parameters

__all__ = [
    "aligned_neighbours",
    "alignment_table",
    "copy_bandwidth",
    "decompose_published_latency",
    "kv_bytes_per_token",
    "marginal_bandwidth",
    "model_weight_bytes",
    "roofline_table",
    "weight_bytes",
]


def _shape(shape: str | LlamaShape) -> LlamaShape:
    return get_shape(shape) if isinstance(shape, str) else shape


def weight_bytes(shape: str | LlamaShape, width: int | None = None, *, dtype_bytes: int = 2) -> int:
    """Bytes of the unique weights of ``shape`` at MLP width ``width`` (bf16: 2 bytes each)."""
    return count_shape_parameters(_shape(shape), width) * dtype_bytes


def model_weight_bytes(model) -> int:
    """Bytes of a model's unique parameters, at their own dtype (tied tensors once)."""
    size = next(model.parameters()).element_size()
    return count_parameters(model) * size


def kv_bytes_per_token(shape: str | LlamaShape, *, dtype_bytes: int = 2) -> int:
    """Bytes of keys and values one token leaves in the cache, all layers together."""
    s = _shape(shape)
    return 2 * s.num_hidden_layers * s.num_key_value_heads * s.head_dim * dtype_bytes


def copy_bandwidth(
    device: str | torch.device = "cuda", *, nbytes: int = 1 << 30, repeats: int = 20
) -> float:
    """Median bandwidth of a device-to-device copy of ``nbytes``, in bytes/s (read + written).

    On CPU this is the memory bandwidth of a tensor copy, timed with the host clock.
    """
    import time

    device = torch.device(device)
    src = torch.empty(nbytes // 2, dtype=torch.bfloat16, device=device).normal_()
    dst = torch.empty_like(src)
    times = []
    for i in range(repeats + 3):  # three warm-ups
        if device.type == "cuda":
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            dst.copy_(src)
            end.record()
            end.synchronize()
            seconds = start.elapsed_time(end) / 1e3
        else:
            t0 = time.perf_counter()
            dst.copy_(src)
            seconds = time.perf_counter() - t0
        if i >= 3:
            times.append(seconds)
    return 2 * src.numel() * src.element_size() / float(np.median(times))


def roofline_table(
    results: pd.DataFrame, bandwidth: float | None = None, *, reference_width: int = 8192
) -> pd.DataFrame:
    """Measured decode time per token against the memory roofline, and speedup against ideal.

    Args:
        results: rows of :data:`widthprune.efficiency.COLUMNS` (metric ``tpot`` is used).
        bandwidth: bytes/s of :func:`copy_bandwidth` on the same device; ``None`` takes, per
            device, the median of the results' own ``copy_bandwidth`` rows (GB/s).
        reference_width: the unpruned width the speedups are relative to.

    Returns:
        One row per device, shape, width, batch and path: ``tpot_ms``, ``roofline_ms``,
        ``pct_of_roofline`` (roofline / measured, 100 = at the floor), ``weight_gb``,
        ``moved_gb`` (weights plus live KV cache per step),
        ``speedup`` (reference tpot / tpot), ``ideal_speedup`` (reference bytes / bytes) and
        ``speedup_vs_ideal`` (their ratio), and ``saved_vs_ideal``: the time per token saved
        against the reference over the time its saved bytes take at the bandwidth (1 = every
        byte removed saves its full share; NaN at the reference or without one).

    Raises:
        ValueError: no bandwidth given and none recorded for a device in ``results``.
    """
    keys = ["device", "shape", "width", "batch", "prompt_len", "new_tokens", "path"]
    t = results[(results["metric"] == "tpot") & results["value"].notna()]
    t = t[keys + ["value"]].rename(columns={"value": "tpot_ms"}).reset_index(drop=True)
    t = t.astype({"width": int, "batch": int, "prompt_len": int, "new_tokens": int})
    wb = np.array([weight_bytes(s, int(w)) for s, w in zip(t["shape"], t["width"], strict=True)])
    kv = np.array([kv_bytes_per_token(s) for s in t["shape"]], dtype=float)
    context = t["prompt_len"] + t["new_tokens"] / 2
    moved = wb + t["batch"] * context * kv
    t["weight_gb"] = wb / 1e9
    if bandwidth is None:
        rows = results[results["metric"] == "copy_bandwidth"]
        per_device = rows.groupby("device")["value"].median() * 1e9
        missing = sorted(set(t["device"]) - set(per_device.index))
        if missing:
            raise ValueError(f"No copy_bandwidth rows for {missing}; pass bandwidth= instead.")
        bw = t["device"].map(per_device)
    else:
        bw = bandwidth
    t["roofline_ms"] = moved / bw * 1e3
    t["pct_of_roofline"] = 100 * t["roofline_ms"] / t["tpot_ms"]
    t["moved_bytes"] = moved
    group = ["device", "shape", "batch", "prompt_len", "new_tokens", "path"]
    ref = t[t["width"] == reference_width].set_index(group)[
        ["tpot_ms", "moved_bytes", "roofline_ms"]
    ]
    joined = t.join(ref.add_suffix("_ref"), on=group)
    t["speedup"] = joined["tpot_ms_ref"] / t["tpot_ms"]
    t["ideal_speedup"] = joined["moved_bytes_ref"] / t["moved_bytes"]
    t["speedup_vs_ideal"] = t["speedup"] / t["ideal_speedup"]
    # the time pruning saves against what its saved bytes would save at the copy bandwidth
    ideal_saved = joined["roofline_ms_ref"] - t["roofline_ms"]
    t["saved_vs_ideal"] = (joined["tpot_ms_ref"] - t["tpot_ms"]) / ideal_saved.where(
        ideal_saved > 0
    )
    t["moved_gb"] = t.pop("moved_bytes") / 1e9
    return t


def marginal_bandwidth(table: pd.DataFrame) -> tuple[float, float]:
    """Least-squares line of decode time per token against bytes moved per token.

    Args:
        table: rows of :func:`roofline_table` for one device, shape, batch and path (at least
            two widths).

    Returns:
        ``(fixed_ms, bandwidth)``: the time per token the line gives at zero bytes (work that
        does not shrink with the weights) and the bytes/s at which each extra byte costs time.

    Raises:
        ValueError: fewer than two widths.
    """
    if table["width"].nunique() < 2:
        raise ValueError("Need at least two widths to fit a line.")
    slope, intercept = np.polyfit(table["moved_gb"] * 1e9, table["tpot_ms"] * 1e-3, 1)
    return float(intercept * 1e3), float(1.0 / slope)


def aligned_neighbours(width: int, multiple: int = 128) -> tuple[int, int]:
    """The multiples of ``multiple`` just below and just above ``width`` (equal if aligned)."""
    if width < 1 or multiple < 1:
        raise ValueError(f"width and multiple must be >= 1, got {width} and {multiple}")
    low = width // multiple * multiple
    return low, low if low == width else low + multiple


def alignment_table(
    results: pd.DataFrame,
    *,
    metric: str = "ttft",
    path: str = "static_cudagraph",
    multiple: int = 128,
) -> pd.DataFrame:
    """Each unaligned width against its two aligned neighbours.

    The unaligned width's time is compared with the straight line between its neighbours' times
    (what its size alone predicts): ``excess_pct`` > 0 means the misalignment costs time.

    Returns:
        One row per device, shape, batch and unaligned width with ``value``, ``low_width``,
        ``low_value``, ``high_width``, ``high_value``, ``interpolated`` and ``excess_pct``.
    """
    r = results[
        (results["metric"] == metric) & (results["path"] == path) & results["value"].notna()
    ].astype({"width": int, "batch": int})
    rows = []
    for (device, shape, batch), g in r.groupby(["device", "shape", "batch"]):
        by_width = g.set_index("width")["value"]
        for width, value in by_width.items():
            low, high = aligned_neighbours(int(width), multiple)
            if low == high or low not in by_width or high not in by_width:
                continue
            frac = (width - low) / (high - low)
            interp = by_width[low] + frac * (by_width[high] - by_width[low])
            rows.append(
                {
                    "device": device,
                    "shape": shape,
                    "batch": batch,
                    "metric": metric,
                    "path": path,
                    "width": int(width),
                    "value": value,
                    "low_width": low,
                    "low_value": by_width[low],
                    "high_width": high,
                    "high_value": by_width[high],
                    "interpolated": interp,
                    "excess_pct": 100 * (value / interp - 1),
                }
            )
    return pd.DataFrame(rows)


def decompose_published_latency(frame: pd.DataFrame) -> pd.DataFrame:
    """Split the published per-request "latency" into output length x time per token.

    The study timed whole ``generate()`` calls (``ttlt_ms``) and reported throughput as tokens
    over that time, so ``tokens = ttlt_ms * throughput / 1000`` per request and
    ``ms_per_token = 1000 / throughput``. Relative to each model's unpruned row, the latency
    ratio is exactly the product of the other two.

    Args:
        frame: one row per model, pruning_pct and workload with ``ttlt_ms`` and
            ``throughput_tok_s`` (batch-1 workloads; rows without ``ttlt_ms`` are dropped).

    Returns:
        Long form: model, pruning_pct, workload, ``component`` (latency, tokens_per_request,
        ms_per_token), ``value`` and ``ratio`` to the same model and workload at 0 %.

    Raises:
        KeyError: a required column is missing; the message names it.
    """
    need = ["model", "pruning_pct", "workload", "ttlt_ms", "throughput_tok_s"]
    missing = [c for c in need if c not in frame]
    if missing:
        raise KeyError(f"Missing columns {missing}; found {list(frame.columns)}.")
    f = frame.dropna(subset=["ttlt_ms", "throughput_tok_s"])[need].copy()
    f["latency"] = f["ttlt_ms"]
    f["tokens_per_request"] = f["ttlt_ms"] * f["throughput_tok_s"] / 1e3
    f["ms_per_token"] = 1e3 / f["throughput_tok_s"]
    long = f.melt(
        id_vars=["model", "pruning_pct", "workload"],
        value_vars=["latency", "tokens_per_request", "ms_per_token"],
        var_name="component",
    )
    keys = ["model", "workload", "component"]
    base = long[long["pruning_pct"] == 0].set_index(keys)["value"].rename("base")
    long["ratio"] = long["value"] / long.join(base, on=keys)["base"]
    return long
