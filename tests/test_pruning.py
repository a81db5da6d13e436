import json

import pytest
import torch
from conftest import make_tiny_llama

import widthprune as wp
from widthprune.pruning.architectures import count_shape_parameters


def logits(model, ids):
    with torch.no_grad():
        return model(input_ids=ids).logits


def test_keeping_every_neuron_is_identity(tiny_model, input_ids):
    before = logits(tiny_model, input_ids)
    keep = {i: torch.arange(37) for i in range(2)}
    wp.prune_mlp_(tiny_model, keep)
    assert torch.equal(logits(tiny_model, input_ids), before)
    assert tiny_model.config.intermediate_size == 37


@pytest.mark.parametrize("bias", [False, True])
def test_pruning_equals_zeroing_dropped_activations(input_ids, bias):
    model = make_tiny_llama(seed=3, bias=bias)
    keep = wp.select_neurons(wp.score(model, "ppm"), 23)
    dropped = {i: torch.tensor(sorted(set(range(37)) - set(k.tolist()))) for i, k in keep.items()}

    def zero(i):
        def hook(module, args):
            h = args[0].clone()
            h[..., dropped[i]] = 0
            return (h,)

        return hook

    handles = [mlp.down_proj.register_forward_pre_hook(zero(i)) for i, mlp in wp.gated_mlps(model)]
    masked = logits(model, input_ids)
    for h in handles:
        h.remove()
    wp.prune_mlp_(model, keep)
    torch.testing.assert_close(logits(model, input_ids), masked, rtol=1e-6, atol=1e-6)
    for _, mlp in wp.gated_mlps(model):
        assert mlp.gate_proj.weight.shape == (23, 32) and mlp.up_proj.weight.shape == (23, 32)
        assert mlp.down_proj.weight.shape == (32, 23)
        assert (mlp.gate_proj.out_features, mlp.down_proj.in_features, mlp.intermediate_size) == (
            23,
            23,
            23,
        )
        if bias:
            assert mlp.gate_proj.bias.shape == (23,) and mlp.up_proj.bias.shape == (23,)
    assert model.config.intermediate_size == 23


def test_surgery_keeps_the_named_rows_and_columns(tiny_model):
    mlp = tiny_model.model.layers[1].mlp
    gate, up, down = (
        m.weight.detach().clone() for m in (mlp.gate_proj, mlp.up_proj, mlp.down_proj)
    )
    idx = torch.tensor([0, 5, 6, 36])
    wp.prune_mlp_(tiny_model, {1: idx})
    assert torch.equal(mlp.gate_proj.weight, gate[idx])
    assert torch.equal(mlp.up_proj.weight, up[idx])
    assert torch.equal(mlp.down_proj.weight, down[:, idx])
    assert wp.layer_widths(tiny_model) == {0: 37, 1: 4}
    assert tiny_model.config.intermediate_size == 37  # the largest width


def test_save_reload_gives_equal_logits(tmp_path, tiny_model, tiny_tokenizer, input_ids):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    report = wp.prune(tiny_model, criterion="l2", expansion_ratio=0.7)
    assert report.width_after == 22  # floor(0.7 * 32)
    wp.save_pruned(tiny_model, tmp_path, tokenizer=tiny_tokenizer, report=report)
    reloaded = AutoModelForCausalLM.from_pretrained(tmp_path).eval()
    assert reloaded.config.intermediate_size == 22
    assert torch.equal(logits(reloaded, input_ids), logits(tiny_model, input_ids))
    assert AutoTokenizer.from_pretrained(tmp_path)("w5 w7")["input_ids"] == [5, 7]
    saved = json.loads((tmp_path / "prune_report.json").read_text())
    assert saved["params_after"] == wp.count_parameters(reloaded)


def test_non_uniform_widths_cannot_be_saved(tmp_path, tiny_model):
    wp.prune_mlp_(tiny_model, {0: torch.arange(10)})
    with pytest.raises(ValueError, match="different MLP widths"):
        wp.save_pruned(tiny_model, tmp_path)
    with pytest.raises(ValueError, match="one width"):
        wp.prune(tiny_model, pruning_pct=10)


def test_select_neurons_breaks_ties_toward_lower_index():
    scores = {0: torch.tensor([1.0, 3.0, 2.0, 3.0, 2.0, 0.0])}
    assert wp.select_neurons(scores, 3)[0].tolist() == [1, 2, 3]
    assert wp.select_neurons(scores, 4)[0].tolist() == [1, 2, 3, 4]
    assert wp.select_neurons({0: torch.ones(5)}, 2)[0].tolist() == [0, 1]


def test_select_neurons_rejects_bad_widths_and_nan():
    with pytest.raises(ValueError, match="cannot keep 7 of 6"):
        wp.select_neurons({0: torch.ones(6)}, 7)
    with pytest.raises(ValueError, match="cannot keep 0"):
        wp.select_neurons({0: torch.ones(6)}, 0)
    with pytest.raises(ValueError, match="NaN"):
        wp.select_neurons({0: torch.tensor([1.0, float("nan")])}, 1)


@pytest.mark.parametrize(
    "idx, message",
    [
        (torch.tensor([3, 1]), "sorted and unique"),
        (torch.tensor([1, 1, 2]), "sorted and unique"),
        (torch.tensor([0, 37]), r"\[0, 37\)"),
        (torch.tensor([-1, 3]), r"\[0, 37\)"),
        (torch.tensor([0.0, 1.0]), "integers"),
        (torch.tensor([], dtype=torch.long), "non-empty"),
    ],
)
def test_prune_rejects_bad_indices(tiny_model, idx, message):
    before = tiny_model.model.layers[0].mlp.up_proj.weight.clone()
    with pytest.raises(ValueError, match=message):
        wp.prune_mlp_(tiny_model, {0: torch.arange(5), 1: idx})
    # validation happens before surgery: nothing changed
    assert torch.equal(tiny_model.model.layers[0].mlp.up_proj.weight, before)


def test_prune_rejects_unknown_layer(tiny_model):
    with pytest.raises(ValueError, match=r"No decoder layers \[5\]"):
        wp.prune_mlp_(tiny_model, {5: torch.arange(3)})


def test_ungated_mlp_is_named(tiny_model):
    tiny_model.model.layers[1].mlp = torch.nn.Sequential(torch.nn.Linear(32, 64), torch.nn.GELU())
    with pytest.raises(TypeError, match="Layer 1.*Sequential"):
        wp.score(tiny_model, "ppm")


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"expansion_ratio": 4.0}, "above the current width 37"),
        ({"expansion_ratio": 0.0}, "must be > 0"),
        ({"expansion_ratio": -1}, "must be > 0"),
        ({"pruning_pct": 100}, r"\[0, 100\)"),
        ({"pruning_pct": -5}, r"\[0, 100\)"),
        ({"expansion_ratio": 0.01}, "width 0"),
        ({"pruning_pct": 40, "round_to": 64}, "rounding to a multiple of 64"),
        ({"pruning_pct": 40, "round_to": 0}, "round_to must be >= 1"),
        ({"pruning_pct": 40, "rounding": "up"}, "rounding must be"),
        ({}, "exactly one"),
        ({"pruning_pct": 10, "expansion_ratio": 1.0}, "exactly one"),
    ],
)
def test_target_width_rejects_bad_input(tiny_model, kwargs, message):
    with pytest.raises(ValueError, match=message):
        wp.target_width(tiny_model.config, **kwargs)


def test_target_width_rounding():
    config = wp.llama_config(wp.get_shape("llama-3.2-1b"))
    assert wp.target_width(config, expansion_ratio=2.4) == 4915  # floor(2.4 * 2048)
    assert wp.target_width(config, expansion_ratio=2.4, round_to=128) == 4864
    assert wp.target_width(config, expansion_ratio=2.4, round_to=128, rounding="nearest") == 4864
    assert wp.target_width(config, expansion_ratio=2.45, round_to=128, rounding="nearest") == 4992
    assert wp.target_width(config, pruning_pct=40, round_to=64) == 4864
    # nearest never rounds above the current width
    assert wp.target_width(config, expansion_ratio=3.99, round_to=1000, rounding="nearest") == 8000
    assert wp.target_width(config, expansion_ratio=4.0) == 8192


def test_prune_report_and_parameter_counts(tiny_model):
    report = wp.prune(tiny_model, criterion="ppm", pruning_pct=40)
    assert report.width_before == 37 and report.width_after == 37 - 14  # floor(0.4 * 37) = 14
    assert report.params_before - report.params_after == 2 * 3 * 32 * 14
    assert report.params_after == wp.count_parameters(tiny_model)


def test_count_parameters_counts_tied_once(tiny_model):
    naive = sum(p.numel() for p in tiny_model.parameters())
    assert wp.count_parameters(tiny_model) == naive  # parameters() already dedups shared params
    assert (
        wp.count_parameters(tiny_model)
        == 2 * (4 * 8 * 32 * 2 + 2 * 2 * 8 * 32 + 3 * 32 * 37 + 64) + 32 + 61 * 32
    )


def test_random_model_has_the_exact_shape():
    model = wp.random_model("llama-3.2-1b", dtype=torch.bfloat16, intermediate_size=4916, seed=1)
    shape = wp.get_shape("llama-3.2-1b")
    assert wp.count_parameters(model) == count_shape_parameters(shape, 4916) == 913_770_496
    assert model.dtype == torch.bfloat16
    assert model.lm_head.weight.data_ptr() == model.model.embed_tokens.weight.data_ptr()
    w = model.model.layers[5].mlp.up_proj.weight.float()
    assert abs(w.std().item() - 0.02) < 1e-3 and abs(w.mean().item()) < 1e-3
    assert torch.equal(model.model.norm.weight, torch.ones(2048, dtype=torch.bfloat16))
    # rows within a matrix are distinct draws
    assert len(set(map(tuple, w[:64].tolist()))) == 64


def test_random_model_is_seeded_and_runs(monkeypatch):
    from widthprune.pruning.architectures import SHAPES, LlamaShape

    monkeypatch.setitem(
        SHAPES, "test-small", LlamaShape("test-small", 64, 256, 2, 4, 2, 16, 100, True)
    )
    model = wp.random_model("test-small", intermediate_size=200, seed=4)
    out = model(input_ids=torch.tensor([[1, 2, 3]])).logits
    assert out.shape == (1, 3, 100) and torch.isfinite(out).all()
    again = wp.random_model("test-small", intermediate_size=200, seed=4)
    other = wp.random_model("test-small", intermediate_size=200, seed=5)
    for a, b, c in zip(model.parameters(), again.parameters(), other.parameters(), strict=True):
        assert torch.equal(a, b)
        assert a.ndim == 1 or not torch.equal(a, c)


def test_cut_ties_names_the_neurons_the_tie_rule_decides():
    from widthprune.pruning.selection import cut_ties

    scores = {
        0: torch.tensor([3.0, 1.0, 2.0, 1.0, 1.0, 0.5]),
        1: torch.tensor([4.0, 3.0, 2.0, 1.0]),
    }
    # layer 0 keeps 3: 3.0, 2.0 and one of the three 1.0s (the lowest index, 1); layer 1 no tie
    assert wp.select_neurons(scores, 3)[0].tolist() == [0, 1, 2]
    assert cut_ties(scores, 3) == {0: (3, 1), 1: (1, 1)}
    # the opposite rule (ties to the higher index) keeps neuron 4 instead: min(1, 3 - 1) = 1 moves
    flipped = {0: scores[0].flip(0)}
    kept = {5 - i for i in wp.select_neurons(flipped, 3)[0].tolist()}
    assert len(kept - set(wp.select_neurons(scores, 3)[0].tolist())) == 1
    # a cut that falls between distinct scores leaves nothing to the rule
    assert cut_ties(scores, {0: 2, 1: 2}) == {0: (1, 1), 1: (1, 1)}
