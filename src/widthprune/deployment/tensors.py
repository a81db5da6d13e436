"""What llama.cpp will do to each tensor of a Llama checkpoint, and what it did.

:func:`plan_tensors` predicts from the shape alone, before any work, by llama.cpp's block rules
(:func:`widthprune.deployment.llamacpp.row_status`); :func:`check_plan` warns, or refuses, when
the MLP width leaves tensors short of the scheme; :func:`read_tensor_types` reads back the
types of a written GGUF file.
"""

from __future__ import annotations

import warnings

from .llamacpp import QK_32, Scheme, row_status

__all__ = ["WIDTH_TENSOR", "WidthWarning", "check_plan", "plan_tensors", "read_tensor_types"]

WIDTH_TENSOR = "ffn_down"  # the only 2-D tensor whose rows are as long as the MLP width


class WidthWarning(UserWarning):
    """The MLP width leaves some tensors unquantized (F16) or quantized with another type."""


def plan_tensors(config: dict, scheme: Scheme) -> list[dict]:
    """Per 2-D tensor kind of a Llama checkpoint: rows, count and what llama.cpp will do.

    Args:
        config: the checkpoint's ``config.json`` as a dict.
        scheme: the quantization asked for.

    Returns:
        One dict per kind: kind, tensors, row (weights per row), status, reason.
    """
    hidden, layers = config["hidden_size"], config["num_hidden_layers"]
    heads = config["num_attention_heads"]
    head_dim = config.get("head_dim") or hidden // heads
    rows = {"token_embd": (1, hidden)}
    if not config.get("tie_word_embeddings", False):
        rows["output"] = (1, hidden)
    for kind in ("attn_q", "attn_k", "attn_v", "ffn_gate", "ffn_up"):
        rows[kind] = (layers, hidden)
    rows["attn_output"] = (layers, heads * head_dim)
    rows[WIDTH_TENSOR] = (layers, config["intermediate_size"])
    plan = []
    for kind, (count, row) in rows.items():
        status, reason = row_status(row, scheme)
        plan.append(dict(kind=kind, tensors=count, row=row, status=status, reason=reason))
    return plan


def _nearest(width: int, block: int) -> list[int]:
    low = width // block * block
    return [w for w in (low, low + block) if w > 0]


def _advice(plan: list[dict], scheme: Scheme, width: int) -> str:
    """What the nearest widths a block fits would quantize, and what no width changes."""
    near = " or ".join(map(str, _nearest(width, scheme.block)))
    advice = f"At width {near} (multiples of {scheme.block}) {WIDTH_TENSOR} quantizes to "
    advice += scheme.name
    down = next(p for p in plan if p["kind"] == WIDTH_TENSOR)
    if down["status"] == "F16" and scheme.fallback:
        near_32 = " or ".join(map(str, _nearest(width, QK_32)))
        fallback = "/".join(scheme.fallback)
        advice += f"; at {near_32} (multiples of {QK_32}) it falls back to {fallback}"
    advice += "."
    others: dict[tuple[str, str], list[str]] = {}
    for p in plan:
        if p["kind"] != WIDTH_TENSOR and p["status"] != "as asked":
            others.setdefault((p["status"], p["reason"]), []).append(p["kind"])
    if not others:
        return advice + f" Every other matrix kind quantizes to {scheme.name} at any width."
    for (status, reason), kinds in others.items():
        fate = "stay F16" if status == "F16" else f"fall back to {'/'.join(scheme.fallback)}"
        advice += f" At any width, {', '.join(kinds)} {fate} ({reason})."
    return advice


def check_plan(plan: list[dict], scheme: Scheme, width: int, strict: bool) -> None:
    """Warn (or, strict, refuse) when the width or a shape leaves tensors short of the scheme."""
    short = [p for p in plan if p["status"] == "F16" or (p["kind"] == WIDTH_TENSOR and p["reason"])]
    if not short:
        return
    what = "; ".join(
        f"{p['tensors']} {p['kind']} tensor(s) will "
        + ("stay F16" if p["status"] == "F16" else f"fall back to {'/'.join(scheme.fallback)}")
        + f" ({p['reason']})"
        for p in short
    )
    message = f"MLP width {width} cannot be quantized fully to {scheme.name}: {what}. "
    message += _advice(plan, scheme, width)
    if strict:
        raise ValueError(message + " Refused (strict).")
    warnings.warn(message, WidthWarning, stacklevel=3)


def _kind(name: str) -> str:
    parts = name.split(".")
    return parts[2] if parts[0] == "blk" else parts[0]


def read_tensor_types(gguf_file, scheme: Scheme) -> list[dict]:
    """Per (tensor kind, GGML type) of a GGUF file: count, row, elements, bytes, status.

    Args:
        gguf_file: the file's path, or a ``gguf.GGUFReader`` already open on it.
        scheme: the quantization asked for.

    status: "as asked", "fallback", "F16" (2-D tensors left unquantized) or "F32 (1-D)"
    (norms, which llama.cpp never quantizes); reason: the row length that decided it.
    """
    from gguf import GGUFReader

    reader = gguf_file if isinstance(gguf_file, GGUFReader) else GGUFReader(gguf_file)
    groups: dict[tuple[str, str, int], dict] = {}
    for t in reader.tensors:
        kind, dtype, row = _kind(t.name), t.tensor_type.name, int(t.shape[0])
        g = groups.setdefault(
            (kind, dtype, row),
            {"kind": kind, "type": dtype, "row": row, "tensors": 0, "elements": 0, "bytes": 0},
        )
        g["tensors"] += 1
        g["elements"] += int(t.n_elements)
        g["bytes"] += int(t.n_bytes)
        if len(t.shape) == 1 or t.shape[1] == 1:
            g["status"], g["reason"] = "F32 (1-D)", "llama.cpp keeps 1-D tensors in F32"
        elif dtype in scheme.types:
            g["status"], g["reason"] = "as asked", ""
        else:
            g["status"], g["reason"] = row_status(row, scheme)
            if g["status"] == "as asked":  # a type the plan did not predict
                g["status"], g["reason"] = "other", f"llama.cpp chose {dtype}"
    return sorted(groups.values(), key=lambda g: (g["kind"], g["type"]))
