import copy

import torch

import widthprune as wp
from widthprune.pruning.verification import masked_logits, verify_pruning


def test_verify_pruning_passes_and_leaves_the_model_alone(tiny_model, input_ids):
    before = {n: p.clone() for n, p in tiny_model.named_parameters()}
    keep = wp.select_neurons(wp.score(tiny_model, "l2"), 20)
    report = verify_pruning(tiny_model, keep, input_ids)
    assert report.check.tolist() == ["identity", "masking", "reload"]
    assert report.passed.all()
    assert report.loc[report.check == "identity", "max_abs_diff"].item() == 0.0
    assert report.loc[report.check == "reload", "max_abs_diff"].item() == 0.0
    assert wp.layer_widths(tiny_model) == {0: 37, 1: 37}
    assert all(torch.equal(p, before[n]) for n, p in tiny_model.named_parameters())


def test_masking_check_fails_when_indices_disagree(tiny_model, input_ids):
    """The masking check can fail: zeroing one set but cutting another is caught."""
    keep = wp.select_neurons(wp.score(tiny_model, "ppm"), 20)
    other = wp.select_neurons(wp.score(tiny_model, "random"), 20)
    pruned = wp.prune_mlp_(copy.deepcopy(tiny_model), other)
    with torch.no_grad():
        diff = (
            pruned(input_ids=input_ids).logits - masked_logits(tiny_model, keep, input_ids)
        ).abs()
    assert diff.max() > 1e-2


def test_masked_logits_removes_its_hooks(tiny_model, input_ids):
    keep = {0: torch.arange(5)}
    masked_logits(tiny_model, keep, input_ids)
    assert all(not m.down_proj._forward_pre_hooks for _, m in wp.gated_mlps(tiny_model))
