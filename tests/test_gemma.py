"""Gemma-3 (GeGLU, sliding-window attention, a 262k vocabulary) through the same pruning path.

A tiny seeded Gemma3ForCausalLM shows the surgery exact for Gemma's MLP (identity, masking,
save and reload); the packaged Gemma-3-270M loads offline from its four registry parts.
"""

from __future__ import annotations

import pandas as pd
import pytest
import torch

import widthprune as wp
from widthprune.pruning.architectures import pct_width
from widthprune.pruning.verification import verify_pruning


def tiny_gemma(seed: int = 0, intermediate_size: int = 37):
    """hidden 32, MLP 37 (GeGLU), 4 layers alternating sliding and full attention, float32."""
    from transformers import Gemma3ForCausalLM, Gemma3TextConfig

    config = Gemma3TextConfig(
        vocab_size=71,
        hidden_size=32,
        intermediate_size=intermediate_size,
        num_hidden_layers=4,
        num_attention_heads=4,
        num_key_value_heads=2,
        head_dim=8,
        max_position_embeddings=64,
        sliding_window=4,
        layer_types=["sliding_attention", "full_attention"] * 2,
        bos_token_id=1,
        eos_token_id=2,
        pad_token_id=0,
    )
    torch.manual_seed(seed)
    model = Gemma3ForCausalLM(config).float().eval()
    with torch.no_grad():  # weights large enough for the MLP to matter
        for p in model.parameters():
            if p.ndim == 2:
                p.normal_(0.0, 0.2)
    return model


def test_the_surgery_is_exact_for_gemma_s_geglu_mlp(tmp_path):
    model = tiny_gemma()
    assert type(model.model.layers[0].mlp).__name__ == "Gemma3MLP"
    ids = torch.randint(3, 71, (2, 12), generator=torch.Generator().manual_seed(1))
    scores = wp.score(model, "ppm")
    keep = wp.select_neurons(scores, 25)
    checks = verify_pruning(model, keep, ids)
    assert checks.passed.all(), checks
    assert checks.set_index("check").max_abs_diff[["identity", "reload"]].eq(0).all()
    # the one-call path, saved and reloaded as a plain Gemma checkpoint
    report = wp.prune(model, criterion="ppm", width=25)
    assert report.width_after == 25 and wp.layer_widths(model) == {i: 25 for i in range(4)}
    expected = model(ids).logits
    wp.save_pruned(model, tmp_path / "p")
    from transformers import AutoModelForCausalLM

    again = AutoModelForCausalLM.from_pretrained(tmp_path / "p").eval()
    assert type(again).__name__ == "Gemma3ForCausalLM" and again.config.intermediate_size == 25
    with torch.no_grad():
        assert torch.equal(again(ids).logits, expected.detach())


def test_gate_and_up_rows_are_scored_as_for_swiglu():
    # ppm reads gate_proj and up_proj rows whatever the activation between them
    model = tiny_gemma(seed=3)
    scores = wp.score(model, "ppm")
    mlp = model.model.layers[2].mlp
    by_hand = sum(
        w.max(dim=1).values + w.min(dim=1).values.abs()
        for w in (mlp.gate_proj.weight, mlp.up_proj.weight)
    )
    assert torch.allclose(torch.as_tensor(scores[2]), by_hand.detach())


def test_cpu_batches_shrink_with_the_vocabulary():
    from widthprune.evaluation.harness import cpu_batch_size

    assert [cpu_batch_size(49_152, few_shot=f) for f in (False, True)] == [32, 4]  # SmolLM2
    assert [cpu_batch_size(262_144, few_shot=f) for f in (False, True)] == [6, 1]  # Gemma-3
    assert [cpu_batch_size(61, few_shot=f) for f in (False, True)] == [32, 4]  # never more
    assert cpu_batch_size(10**9, few_shot=False) == 1
    # rows x vocabulary: Gemma's batches hold no more logits than SmolLM2's
    assert 6 * 262_144 <= 32 * 49_152 and 1 * 262_144 <= 4 * 49_152 * 2


def test_an_evaluation_on_the_cpu_uses_the_vocabulary_s_batches(monkeypatch):
    from conftest import make_tiny_llama

    from widthprune.evaluation import harness

    seen = []
    original = (
        harness._loglikelihood_batches if hasattr(harness, "_loglikelihood_batches") else None
    )
    assert original is None
    lm_class = harness._lm_class("fast")

    class Recording(lm_class):
        def _loglikelihood_tokens(self, requests, disable_tqdm=False, override_bs=None):
            seen.append(self.batch_size_per_gpu)
            return super()._loglikelihood_tokens(requests, disable_tqdm, override_bs)

    monkeypatch.setattr(harness, "_lm_class", lambda engine: Recording)
    model = make_tiny_llama(vocab_size=200_000)
    tokenizer = wp.load("toy")[1]
    model.resize_token_embeddings(len(tokenizer))  # the toy tokenizer's ids, a large vocabulary
    model.config.vocab_size = 200_000
    harness.evaluate(model, tokenizer, "toy_knowledge", limit=2)
    assert seen and set(seen) == {harness.cpu_batch_size(200_000, few_shot=False)} == {7}


# -- the packaged model -----------------------------------------------------------------------

GEMMA = "gemma-3-270m"
TEXTS = ["The capital of France is", "Water boils at a temperature of"]


@pytest.fixture(scope="module")
def gemma(tmp_path_factory):
    """Gemma-3-270M joined from its four parts and converted once into a fresh cache; the model
    transformers reads from the joined GGUF is kept as the reference."""
    from conftest import convert_packaged

    return convert_packaged(GEMMA, tmp_path_factory.mktemp("cache"))


def _logits(model, tokenizer, texts=TEXTS):
    batch = tokenizer(texts, return_tensors="pt", padding=True)
    with torch.no_grad():
        return model(**batch).logits.float()


def test_gemma_joins_its_parts_converts_once_and_equals_the_gguf_model(gemma):
    import json

    from transformers import AutoModelForCausalLM, AutoTokenizer

    from widthprune.models import registry

    spec = registry.PACKAGED_MODELS[GEMMA]
    joined = gemma.root / "gguf" / spec.filename
    assert joined.stat().st_size == 253_113_024 and registry._sha256(joined) == spec.sha256
    provenance = json.loads((gemma.folder / "provenance.json").read_text())
    assert provenance["licence"] == "Gemma Terms of Use" and "text" in provenance["check"]
    assert provenance["check"]["max_abs_logit_difference"] == 0.0
    model = AutoModelForCausalLM.from_pretrained(gemma.folder).eval()
    tokenizer = AutoTokenizer.from_pretrained(gemma.folder)
    c = model.config
    assert type(model).__name__ == "Gemma3ForCausalLM" and c.hidden_activation.startswith("gelu")
    assert (c.hidden_size, c.intermediate_size, c.num_hidden_layers) == (640, 2048, 18)
    assert c.vocab_size == 262_144 and c.tie_word_embeddings and c.sliding_window == 512
    assert wp.count_parameters(model) == provenance["parameters"] == 268_098_176
    mlp = 18 * 3 * 640 * 2048
    assert 0.26 < mlp / provenance["parameters"] < 0.27  # a quarter of Gemma is MLP
    assert torch.equal(_logits(model, tokenizer), _logits(gemma.model, gemma.tokenizer))
    # a second look reuses both the joined file and the folder
    stamp = joined.stat().st_mtime_ns
    assert registry.ensure_checkpoint(GEMMA, cache=gemma.root) == gemma.folder
    assert joined.stat().st_mtime_ns == stamp


def test_a_damaged_part_is_refused(gemma, tmp_path, monkeypatch):
    from widthprune.models import registry

    real = registry._installed_file
    spec = registry.PACKAGED_MODELS[GEMMA]

    def damaged(spec_, distribution, filename):
        version, path, digest = real(spec_, distribution, filename)
        if filename.endswith("part02"):
            copy = tmp_path / filename
            data = bytearray(path.read_bytes())
            data[1000] ^= 1
            copy.write_bytes(bytes(data))
            return version, copy, digest
        return version, path, digest

    monkeypatch.setattr(registry, "_installed_file", damaged)
    with pytest.raises(ValueError, match="do not join into the file of SHA-256"):
        registry.locate_gguf(GEMMA, tmp_path / "cache")
    assert not (tmp_path / "cache" / "gguf" / spec.filename).exists()
    assert not list((tmp_path / "cache" / "gguf").glob(".tmp-*"))


def test_gemma_pruned_saves_and_reloads_equal(gemma, tmp_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(gemma.folder).eval()
    tokenizer = AutoTokenizer.from_pretrained(gemma.folder)
    report = wp.prune(model, criterion="ppm", pruning_pct=40)
    assert report.width_after == pct_width(2048, 40) == 2048 - 819
    expected = _logits(model, tokenizer)
    wp.save_pruned(model, tmp_path / "g40", tokenizer=tokenizer)
    again = AutoModelForCausalLM.from_pretrained(tmp_path / "g40").eval()
    assert again.config.intermediate_size == 1229
    assert torch.equal(_logits(again, tokenizer), expected)


def test_the_stored_tie_counts_are_gemma_s_own(gemma):
    """The book's table of ties across the cut is recounted from the converted checkpoint: at
    40 % the tie rule, not the score, decides in 13 of Gemma's 18 layers."""
    from transformers import AutoModelForCausalLM

    from widthprune.analysis.across_models import count_cut_ties, cut_tie_table

    model = AutoModelForCausalLM.from_pretrained(gemma.folder).eval()
    counted = count_cut_ties(model, GEMMA)
    stored = cut_tie_table()
    stored = stored[stored.model == GEMMA].reset_index(drop=True)
    pd.testing.assert_frame_equal(counted, stored, check_dtype=False)
    assert counted.set_index("pruning_pct").loc[40, "layers_tied"] == 13
