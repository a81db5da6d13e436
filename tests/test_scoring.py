"""Every vectorised criterion equals a slow per-neuron loop written from its definition."""

import math

import pytest
import torch
from conftest import make_tiny_llama

import widthprune as wp


def slow_weight_score(name, g_row, u_row):
    g, u = [float(x) for x in g_row], [float(x) for x in u_row]
    if name == "ppm":
        return max(g) + abs(min(g)) + max(u) + abs(min(u))
    if name == "maw":
        return max(abs(x) for x in g) + max(abs(x) for x in u)
    if name == "vow":
        var = lambda v: sum((x - sum(v) / len(v)) ** 2 for x in v) / len(v)  # noqa: E731
        return var(g) + var(u)
    if name == "pon":
        return sum(abs(x) for x in g) * sum(abs(x) for x in u)
    if name == "l2":
        return math.sqrt(sum(x * x for x in g)) + math.sqrt(sum(x * x for x in u))
    raise AssertionError(name)


@pytest.mark.parametrize("name", ["ppm", "maw", "vow", "pon", "l2"])
def test_weight_criteria_equal_slow_loop(tiny_model, name):
    scores = wp.score(tiny_model, name)
    assert sorted(scores) == [0, 1]
    for i, mlp in wp.gated_mlps(tiny_model):
        g, u = mlp.gate_proj.weight.detach(), mlp.up_proj.weight.detach()
        expected = torch.tensor([slow_weight_score(name, g[k], u[k]) for k in range(37)])
        assert scores[i].dtype == torch.float32 and scores[i].shape == (37,)
        torch.testing.assert_close(scores[i], expected, rtol=1e-5, atol=1e-6)


def test_ppm_and_maw_differ():
    """The published rule and the one the first paper version describes rank neurons differently."""
    model = make_tiny_llama(seed=7)
    ppm, maw = wp.score(model, "ppm"), wp.score(model, "maw")
    assert not torch.equal(wp.select_neurons(ppm, 18)[0], wp.select_neurons(maw, 18)[0])


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("name", ["ppm", "maw", "vow", "pon", "l2"])
def test_half_precision_scores_are_float32_and_finite(name, dtype):
    model = make_tiny_llama(seed=2)
    with torch.no_grad():  # magnitudes near fp16's limit: sums in fp16 would overflow
        for _, mlp in wp.gated_mlps(model):
            mlp.gate_proj.weight.mul_(2e4)
            mlp.up_proj.weight.mul_(2e4)
    reference = wp.score(model, name)
    half = wp.score(model.to(dtype), name)
    for i in reference:
        assert half[i].dtype == torch.float32 and torch.isfinite(half[i]).all()
        rounded = {i: [m.gate_proj.weight, m.up_proj.weight] for i, m in wp.gated_mlps(model)}
        g, u = (w.detach().float() for w in rounded[i])
        expected = torch.tensor([slow_weight_score(name, g[k], u[k]) for k in range(37)])
        torch.testing.assert_close(half[i], expected, rtol=1e-4, atol=0)


def test_random_is_seeded(tiny_model):
    a, b, c = (wp.score(tiny_model, "random", seed=s) for s in (1, 1, 2))
    assert all(torch.equal(a[i], b[i]) for i in a)
    assert not torch.equal(a[0], c[0])
    assert not torch.equal(a[0], a[1])


def calibration(tokenizer):
    texts = [" ".join(f"w{4 + (i * 7 + j * 3) % 57}" for j in range(40)) for i in range(6)]
    return wp.calibration_batches(tokenizer, texts, n_samples=5, seq_len=9, batch_size=2, seed=3)


def slow_activations(model, batches):
    """h = act(gate x) * up x, recomputed per token and neuron from the block's own input."""
    rows = {i: [] for i in range(2)}
    for batch in batches:
        with torch.no_grad():
            hidden = model(input_ids=batch, output_hidden_states=True).hidden_states
        for i, layer in enumerate(model.model.layers):
            x = hidden[i]
            attn_out = layer.self_attn(
                layer.input_layernorm(x),
                position_embeddings=model.model.rotary_emb(x, torch.arange(x.shape[1])[None]),
                attention_mask=None,
            )[0]
            x = x + attn_out
            x = layer.post_attention_layernorm(x)
            for token in x.reshape(-1, x.shape[-1]):
                g = layer.mlp.gate_proj.weight @ token
                u = layer.mlp.up_proj.weight @ token
                rows[i].append(torch.nn.functional.silu(g) * u)
    return {i: torch.stack(r) for i, r in rows.items()}


def test_calibration_batches_are_deterministic(tiny_tokenizer):
    a, b = calibration(tiny_tokenizer), calibration(tiny_tokenizer)
    assert [t.shape for t in a] == [(2, 9), (2, 9), (1, 9)]
    assert all(torch.equal(x, y) for x, y in zip(a, b, strict=True))
    other = wp.calibration_batches(
        tiny_tokenizer, ["w5 w6 w7 w8"] * 5, n_samples=2, seq_len=4, seed=3
    )
    assert other[0].dtype == torch.long


def test_calibration_rejects_bad_input(tiny_tokenizer):
    with pytest.raises(ValueError, match="fewer than seq_len=50"):
        wp.calibration_batches(tiny_tokenizer, ["w5 w6"], seq_len=50)
    with pytest.raises(ValueError, match="at least one text"):
        wp.calibration_batches(tiny_tokenizer, [])
    with pytest.raises(ValueError, match="n_samples must be >= 1"):
        wp.calibration_batches(tiny_tokenizer, ["w5 w6"], n_samples=0, seq_len=1)


@pytest.mark.parametrize("name", ["activation", "wanda"])
def test_activation_criteria_equal_slow_loop(tiny_model, tiny_tokenizer, name):
    batches = calibration(tiny_tokenizer)
    scores = wp.score(tiny_model, name, calibration=batches)
    h = slow_activations(tiny_model, batches)
    for i, mlp in wp.gated_mlps(tiny_model):
        assert h[i].shape == (5 * 9, 37)
        if name == "activation":
            expected = h[i].abs().mean(dim=0)
        else:
            col = torch.tensor([mlp.down_proj.weight[:, k].norm().item() for k in range(37)])
            expected = col * h[i].square().mean(dim=0).sqrt()
        torch.testing.assert_close(scores[i], expected, rtol=1e-4, atol=1e-6)


def test_hooks_are_removed_even_on_error(tiny_model):
    with pytest.raises(RuntimeError, match="boom"):
        with wp.record_mlp_activations(tiny_model):
            raise RuntimeError("boom")
    assert all(not mlp.down_proj._forward_pre_hooks for _, mlp in wp.gated_mlps(tiny_model))


def test_activation_criteria_need_calibration(tiny_model):
    with pytest.raises(ValueError, match="calibration batches"):
        wp.score(tiny_model, "wanda")


def test_unknown_criterion_lists_valid_ones(tiny_model):
    with pytest.raises(KeyError, match="Did you mean 'ppm'.*") as err:
        wp.score(tiny_model, "pmm")
    assert "wanda" in str(err.value)


def test_custom_criterion_is_checked(tiny_model):
    with pytest.raises(ValueError, match=r"shape \(3,\)"):
        wp.score(tiny_model, lambda model, **kw: {0: torch.ones(3), 1: torch.ones(37)})
    with pytest.raises(ValueError, match="non-finite"):
        wp.score(
            tiny_model, lambda model, **kw: {0: torch.full((37,), float("inf")), 1: torch.ones(37)}
        )


def test_compare_criteria_agreement_numbers(tiny_model):
    scores = {name: wp.score(tiny_model, name) for name in ("ppm", "maw", "random")}
    table = wp.compare_criteria(scores, 20)
    assert len(table) == 3 * 2 * 2  # ordered pairs x layers
    self_like = wp.compare_criteria({"a": scores["ppm"], "b": scores["ppm"]}, 20)
    assert self_like.spearman.to_numpy() == pytest.approx(1.0)
    assert (self_like.overlap == 1.0).all()
    flipped = {"a": scores["ppm"], "b": {i: -s for i, s in scores["ppm"].items()}}
    opposite = wp.compare_criteria(flipped, 20)
    assert opposite.spearman.to_numpy() == pytest.approx(-1.0)
    assert (opposite.overlap == 3 / 20).all()  # 20 + 20 kept of 37: exactly 3 shared
    row = table[(table.criterion_a == "ppm") & (table.criterion_b == "maw") & (table.layer == 0)]
    kept_ppm = set(wp.select_neurons(scores["ppm"], 20)[0].tolist())
    kept_maw = set(wp.select_neurons(scores["maw"], 20)[0].tolist())
    assert row.overlap.item() == len(kept_ppm & kept_maw) / 20


def test_scores_frame_is_long_and_ranked(tiny_model):
    frame = wp.scores_frame({"ppm": wp.score(tiny_model, "ppm")})
    assert list(frame.columns) == ["criterion", "layer", "neuron", "score", "rank_pct"]
    assert len(frame) == 2 * 37
    layer0 = frame[frame.layer == 0]
    top = layer0.loc[layer0.score.idxmax()]
    assert top.rank_pct == 1.0
