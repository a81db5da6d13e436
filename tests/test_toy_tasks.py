"""The shipped toy model, its tokenizer and task suite through lm-eval, training, the CLI."""

from __future__ import annotations

import json
from dataclasses import asdict, replace

import pytest
import torch

import widthprune as wp
from widthprune.cli import main
from widthprune.models.loading import TOY_CHECKPOINT
from widthprune.toy import (
    TASK_DATA,
    TASKS_DIR,
    TrainConfig,
    WorldConfig,
    build_tokenizer,
    build_world,
    task_items,
    train,
    vocabulary,
)

TINY = TrainConfig(
    steps=40, batch_size=8, seq_len=64, lr=3e-3, warmup=5, hidden_size=32, layers=2, heads=4,
    kv_heads=2, log_every=5,
)  # fmt: skip


@pytest.fixture(scope="module")
def tokenizer():
    return build_tokenizer(vocabulary(build_world()))


def test_tokenizer_round_trips_every_task_text(tokenizer):
    items = task_items(build_world())
    texts = (
        [f"{r['question']} {c}" for r in items["knowledge"] for c in r["choices"]]
        + [f"{r['prompt']} {r['response']}" for r in items["instructions"]]
        + [f"{r['question']} {r['solution']}" for r in items["arithmetic"]]
        + [r["text"] for r in items["perplexity"]]
    )
    for text in texts:
        ids = tokenizer.encode(text)
        assert tokenizer.unk_token_id not in ids
        assert len(ids) == len(text.split())  # one token per word
        assert tokenizer.decode(ids) == text


def test_tokenizer_splits_punctuation_and_marks_unknown_words(tokenizer):
    ids = tokenizer.encode("cat, dog? zebra")
    assert tokenizer.convert_ids_to_tokens(ids) == ["cat", ",", "dog", "?", "<unk>"]
    assert tokenizer.eos_token == "</s>" and tokenizer.pad_token == "<pad>"
    assert tokenizer.decode([*tokenizer.encode("cat"), tokenizer.eos_token_id]) == "cat </s>"
    with pytest.raises(ValueError, match="special tokens"):
        build_tokenizer(["cat", "dog"])


def test_shipped_checkpoint_is_small_llama_of_the_default_world():
    size = sum(p.stat().st_size for p in TOY_CHECKPOINT.iterdir())
    assert size <= 10 * 2**20
    model, tok = wp.load("toy")
    cfg = model.config
    assert model.dtype == torch.float32 and not model.training
    assert cfg.intermediate_size == 4 * cfg.hidden_size and cfg.tie_word_embeddings
    assert cfg.num_key_value_heads < cfg.num_attention_heads  # grouped-query attention
    assert model.lm_head.weight.data_ptr() == model.model.embed_tokens.weight.data_ptr()
    assert tok.get_vocab() == build_tokenizer(vocabulary(build_world())).get_vocab()
    meta = json.loads((TOY_CHECKPOINT / "toy.json").read_text())
    assert meta["world"] == json.loads(json.dumps(asdict(WorldConfig())))
    shipped = {k: v for k, v in meta["train"].items() if k != "workers"}
    default = {k: v for k, v in asdict(TrainConfig()).items() if k != "workers"}
    assert shipped == default  # `widthprune toy train --device cuda` reproduces it


def test_shipped_model_beats_chance_on_every_task_through_lm_eval():
    from lm_eval import simple_evaluate
    from lm_eval.models.huggingface import HFLM
    from lm_eval.tasks import TaskManager

    model, tok = wp.load("toy")
    lm = HFLM(pretrained=model, tokenizer=tok, batch_size=16)
    res = simple_evaluate(
        lm,
        tasks=["toy"],
        task_manager=TaskManager(include_path=str(TASKS_DIR)),
        limit=16,
        log_samples=True,
        verbosity="ERROR",
    )
    r = res["results"]
    assert r["toy_knowledge"]["acc,none"] >= 0.75  # chance: 0.25
    assert r["toy_instructions"]["prompt_level_strict_acc,none"] >= 0.5  # chance: about 0
    assert r["toy_instructions"]["inst_level_loose_acc,none"] >= 0.5
    assert r["toy_arithmetic"]["exact_match,strict-match"] >= 0.5
    assert r["toy_perplexity"]["word_perplexity,none"] < 20  # uniform: the vocabulary size
    doc = res["samples"]["toy_knowledge"][0]["doc"]
    assert doc["frequency"] in dict(WorldConfig().frequency_buckets)


def test_a_few_training_steps_reduce_the_loss_deterministically(tmp_path):
    assert not torch.are_deterministic_algorithms_enabled()
    log = train(tmp_path / "a", config=TINY)
    assert not torch.are_deterministic_algorithms_enabled()  # the process's mode is restored
    assert [row["step"] for row in log] == list(range(5, 41, 5))
    assert log[-1]["loss"] < log[0]["loss"] - 1.0  # from ln(vocabulary) = 7.35
    train(tmp_path / "b", config=TINY)
    a, _ = wp.load(tmp_path / "a")
    b, _ = wp.load(tmp_path / "b")
    for (name, pa), (_, pb) in zip(a.state_dict().items(), b.state_dict().items(), strict=True):
        assert torch.equal(pa, pb), name
    assert a.config.intermediate_size == 128 and a.config.num_key_value_heads == 2
    assert (tmp_path / "a" / "train_log.csv").read_text().startswith("step,loss,lr")
    assert not (tmp_path / "a.partial").exists()


def test_model_config_refuses_heads_that_do_not_divide():
    from widthprune.toy import model_config

    with pytest.raises(ValueError, match="must divide"):
        model_config(replace(TINY, heads=5), 100, eos_id=1, pad_id=0)


def test_cli_toy_tasks_writes_the_shipped_data(tmp_path, capsys):
    assert main(["toy", "tasks", "--out", str(tmp_path)]) == 0
    printed = capsys.readouterr().out.split()
    for name in ("knowledge", "instructions", "arithmetic", "perplexity"):
        path = tmp_path / f"{name}.jsonl"
        assert path.read_bytes() == (TASK_DATA / f"{name}.jsonl").read_bytes()
        assert str(path) in printed


def test_cli_toy_train_saves_a_loadable_checkpoint(tmp_path, capsys):
    out = tmp_path / "ckpt"
    args = ["toy", "train", "--steps", "2", "--batch-size", "2", "--workers", "1"]
    assert main([*args, "--out", str(out), "--tasks-out", str(tmp_path / "tasks")]) == 0
    assert "trained 2 steps" in capsys.readouterr().out
    model, tok = wp.load(out)
    assert model.config.hidden_size == TrainConfig().hidden_size
    assert len(tok) == model.config.vocab_size
    assert (tmp_path / "tasks" / "knowledge.jsonl").read_bytes() == (
        TASK_DATA / "knowledge.jsonl"
    ).read_bytes()
    meta = json.loads((out / "toy.json").read_text())
    assert meta["train"]["steps"] == 2 and meta["device"] == "cpu"
    with pytest.raises(SystemExit, match="must be positive"):
        main([*args[:2], "--steps", "0", "--out", str(tmp_path / "x")])
