"""The exercises' self-checks pass the library's own functions and name the first difference."""

import numpy as np
import pytest
import torch
from scipy import stats as st

import widthprune as wp
from widthprune.chapters.selfcheck import (
    check_criterion,
    check_statistic,
    check_surgery,
    tiny_llama,
)
from widthprune.pruning.scoring import CRITERIA


@pytest.mark.parametrize("name", sorted(CRITERIA))
def test_each_library_criterion_passes_its_check(name, capsys):
    result = check_criterion(CRITERIA[name], name)
    assert result.passed and bool(result)
    assert (
        capsys.readouterr().out
        == f"PASS criterion {name!r}: all 74 scores of 2 layers match wp.score\n"
    )


def test_a_wrong_criterion_fails_at_its_first_difference(capsys):
    result = check_criterion(CRITERIA["maw"], "ppm")
    assert not result
    mlp = tiny_llama().model.layers[0].mlp  # the model the check builds
    gate, up = mlp.gate_proj.weight, mlp.up_proj.weight
    ppm0 = gate[0].max() + gate[0].min().abs() + up[0].max() + up[0].min().abs()
    maw0 = gate[0].abs().max() + up[0].abs().max()
    assert result.detail.startswith(
        f"layer 0: score[0] is {maw0.item():.6g}, expected {ppm0.item():.6g}"
    )
    assert capsys.readouterr().out.startswith("FAIL criterion 'ppm': layer 0: score[0]")


def test_criterion_failures_are_reported_not_raised():
    def raises(model, *, calibration=None, seed=0):
        raise RuntimeError("boom")

    def edits(model, *, calibration=None, seed=0):
        scores = CRITERIA["l2"](model)
        model.model.layers[1].mlp.up_proj.weight.mul_(2)
        return scores

    def one_layer(model, *, calibration=None, seed=0):
        return {0: CRITERIA["l2"](model)[0]}

    def short(model, *, calibration=None, seed=0):
        return {i: s[:-1] for i, s in CRITERIA["l2"](model).items()}

    assert check_criterion(raises, "l2").detail == "your function raised RuntimeError: boom"
    assert (
        "changed the model's weights (model.layers.1.mlp.up_proj.weight)"
        in check_criterion(edits, "l2").detail
    )
    assert check_criterion(one_layer, "l2").detail == "layers [0], expected [0, 1]"
    assert check_criterion(short, "l2").detail == "layer 0: score has shape (36,), expected (37,)"
    with pytest.raises(KeyError, match="Did you mean 'wanda'"):
        check_criterion(raises, "wandaa")


def surgery(model, keep, *, bias=True, down_order=1, config=True):
    """A surgery by hand whose mistakes the tests switch on."""
    for i, mlp in wp.gated_mlps(model):
        idx = keep[i]
        for linear in (mlp.gate_proj, mlp.up_proj):
            linear.weight = torch.nn.Parameter(linear.weight[idx].clone())
            if bias and linear.bias is not None:
                linear.bias = torch.nn.Parameter(linear.bias[idx].clone())
            linear.out_features = len(idx)
        mlp.down_proj.weight = torch.nn.Parameter(
            mlp.down_proj.weight[:, idx.flip(0) if down_order < 0 else idx].clone()
        )
        mlp.down_proj.in_features = len(idx)
    if config:
        model.config.intermediate_size = len(idx)


def test_surgery_check_passes_prune_mlp_and_a_correct_hand_surgery(capsys):
    assert check_surgery(wp.prune_mlp_)
    assert check_surgery(surgery)
    assert capsys.readouterr().out.count("PASS surgery: 12 tensors, 7 sizes and the logits") == 2


@pytest.mark.parametrize(
    "mistake, first_difference",
    [
        ({"bias": False}, "layer 0: gate_proj.bias has shape (37,), expected (23,)"),
        ({"down_order": -1}, "layer 0: down_proj.weight[0, 0] is"),
        ({"config": False}, "config.intermediate_size is 37, expected 23"),
    ],
)
def test_surgery_check_names_the_first_mistake(mistake, first_difference):
    result = check_surgery(lambda model, keep: surgery(model, keep, **mistake))
    assert not result and result.detail.startswith(first_difference)


def holm(p):
    order = np.argsort(p, kind="stable")
    steps = (len(p) - np.arange(len(p))) * p[order]
    out = np.empty(len(p))
    out[order] = np.minimum(1.0, np.maximum.accumulate(steps))
    return out


@pytest.mark.parametrize(
    "name, fn",
    [
        ("pearson", lambda x, y: st.pearsonr(x, y).statistic),
        ("spearman", lambda x, y: st.spearmanr(x, y).statistic),
        ("kendall", lambda x, y: st.kendalltau(x, y).statistic),
        ("holm", holm),
    ],
)
def test_statistic_check_passes_independent_implementations(name, fn):
    assert check_statistic(fn, name).detail == "matches widthprune.analysis on 3 cases"


def test_statistic_check_fails_wrong_statistics():
    bonferroni = check_statistic(lambda p: np.minimum(1, len(p) * p), "holm")
    assert not bonferroni and bonferroni.detail.startswith("on 8 uniform p-values: value [")
    pearson_for_spearman = check_statistic(lambda x, y: st.pearsonr(x, y).statistic, "spearman")
    assert pearson_for_spearman.detail.startswith("on 7 normal pairs: the value is")
    assert "1 values, expected 8" in check_statistic(lambda p: p.min(), "holm").detail
    with pytest.raises(KeyError, match="valid"):
        check_statistic(holm, "fisher")
