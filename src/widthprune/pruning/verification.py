"""Live correctness checks of the surgery: what the tests prove, runnable on any model.

Each check compares logits of two ways of computing the same thing and reports the largest
absolute difference, so a reader can run them on their own model, dtype and device.
"""

from __future__ import annotations

import copy
import tempfile
from contextlib import contextmanager

import pandas as pd
import torch
from torch import Tensor

from .architectures import gated_mlps
from .surgery import prune_mlp_, save_pruned

__all__ = ["masked_logits", "verify_pruning", "zero_dropped_neurons"]


@contextmanager
def zero_dropped_neurons(model, keep: dict[int, Tensor]):
    """Within the block, every neuron not in ``keep[layer]`` outputs zero (hooks, removed after)."""
    handles = []
    try:
        for layer, mlp in gated_mlps(model):
            if layer not in keep:
                continue
            mask = torch.zeros(mlp.up_proj.out_features, dtype=torch.bool)
            mask[keep[layer]] = True

            def hook(module, args, mask=mask):
                return (args[0] * mask.to(args[0].device, args[0].dtype),)

            handles.append(mlp.down_proj.register_forward_pre_hook(hook))
        yield model
    finally:
        for handle in handles:
            handle.remove()


def masked_logits(model, keep: dict[int, Tensor], input_ids: Tensor) -> Tensor:
    """Logits with the neurons outside ``keep`` zeroed: (batch, seq) -> (batch, seq, vocab)."""
    with torch.no_grad(), zero_dropped_neurons(model, keep):
        return model(input_ids=input_ids).logits


def _logits(model, input_ids: Tensor) -> Tensor:
    with torch.no_grad():
        return model(input_ids=input_ids).logits


def verify_pruning(model, keep: dict[int, Tensor], input_ids: Tensor) -> pd.DataFrame:
    """Run the three invariants of the surgery on copies of ``model``; ``model`` is not changed.

    1. *identity*: keeping every neuron changes no logit;
    2. *masking*: pruning equals zeroing the dropped neurons' activations in the full model;
    3. *reload*: ``save_pretrained`` then ``from_pretrained`` gives the same logits.

    Returns:
        One row per check: ``check, max_abs_diff, tolerance, passed``. The tolerance is 0 for
        identity and reload (bitwise equal) and scales with the logits' size for masking, where
        a smaller matrix product may sum in another order.
    """
    from transformers import AutoModelForCausalLM

    reference = _logits(model, input_ids)
    full = copy.deepcopy(model)
    prune_mlp_(full, {i: torch.arange(m.up_proj.out_features) for i, m in gated_mlps(full)})
    identity = (_logits(full, input_ids) - reference).abs().max().item()
    del full

    masked = masked_logits(model, keep, input_ids)
    pruned = copy.deepcopy(model)
    prune_mlp_(pruned, keep)
    pruned_logits = _logits(pruned, input_ids)
    masking = (pruned_logits - masked).abs().max().item()
    eps = torch.finfo(reference.dtype).eps
    masking_tol = 64 * eps * max(1.0, masked.abs().max().item())

    with tempfile.TemporaryDirectory() as tmp:
        save_pruned(pruned, tmp)
        reloaded = AutoModelForCausalLM.from_pretrained(tmp, dtype=reference.dtype).eval()
        reloaded.to(reference.device)
        reload = (_logits(reloaded, input_ids) - pruned_logits).abs().max().item()
    return pd.DataFrame(
        [
            {"check": "identity", "max_abs_diff": identity, "tolerance": 0.0},
            {"check": "masking", "max_abs_diff": masking, "tolerance": masking_tol},
            {"check": "reload", "max_abs_diff": reload, "tolerance": 0.0},
        ]
    ).assign(passed=lambda f: f.max_abs_diff <= f.tolerance)
