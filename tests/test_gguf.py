"""GGUF export through llama.cpp's own converter and quantizer (needs `make deploy`).

The models are tiny Llamas of SmolLM2's family (hidden 64, two layers) with SmolLM2's BPE
tokenizer, which llama.cpp's converter carries; their MLP widths are chosen against the
quantization blocks: 256 fits Q4_K's 256-blocks, 300 fits no block at all.
"""

from __future__ import annotations

import json
import warnings

import pytest
from conftest import make_tiny_llama
from gguf import GGUFReader

import widthprune as wp
from widthprune.cli import main
from widthprune.deployment import (
    WidthWarning,
    check_gguf,
    check_plan,
    export_gguf,
    get_scheme,
    plan_tensors,
)
from widthprune.models.loading import REGISTERED

HIDDEN, WIDTH = 64, 512


@pytest.fixture(scope="module")
def tokenizer():
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(REGISTERED["smollm2-135m-instruct"].checkpoint())


def make_model(seed: int = 0, width: int = WIDTH):
    """A tiny Llama with SmolLM2's vocabulary, hidden 64; larger than the default init, so that
    logits separate tokens."""
    shape = dict(vocab_size=49152, hidden_size=HIDDEN, head_dim=16, max_position_embeddings=256)
    return make_tiny_llama(seed, intermediate_size=width, std=0.1, pad_token_id=None, **shape)


def pruned(width: int):
    model = make_model()
    wp.prune(model, criterion="ppm", width=width)
    assert model.config.intermediate_size == width
    return model


def _types(path) -> dict[str, set[str]]:
    types: dict[str, set[str]] = {}
    for t in GGUFReader(path).tensors:
        kind = t.name.split(".")[2] if t.name.startswith("blk.") else t.name.split(".")[0]
        types.setdefault(kind, set()).add(t.tensor_type.name)
    return types


@pytest.fixture(scope="module")
def exported_f16(tmp_path_factory, tokenizer):
    path = tmp_path_factory.mktemp("f16") / "tiny-f16.gguf"
    model = make_model()
    return model, path, export_gguf(model, path, quant="F16", tokenizer=tokenizer)


def test_f16_export_is_the_same_model(exported_f16, tokenizer):
    model, path, result = exported_f16
    assert result.width == WIDTH and result.file_bytes == path.stat().st_size
    assert all(g["status"] in ("as asked", "F32 (1-D)") for g in result.tensors)
    # every 2-D weight in 16 bits; the F32 norms add a little
    assert 16.0 < result.bits_per_weight < 16.1
    params = sum(p.numel() for p in model.parameters())
    assert result.weights == params
    reader = GGUFReader(path)
    assert int(reader.fields["llama.feed_forward_length"].contents()) == WIDTH
    verdict = check_gguf(path, model, tokenizer)
    assert verdict["passed"], verdict
    assert 0 < verdict["max_abs_logit_difference"] <= verdict["tolerance"]
    assert all(r["greedy_equal"] and r["tokenizer_equal"] for r in verdict["prompts"])


def test_check_detects_another_model(exported_f16, tokenizer):
    _, path, _ = exported_f16
    verdict = check_gguf(path, make_model(seed=1), tokenizer)
    assert not verdict["passed"]
    assert verdict["max_abs_logit_difference"] > verdict["tolerance"]


def test_aligned_pruned_width_quantizes_fully(tmp_path, tokenizer):
    out = tmp_path / "w256.gguf"
    with warnings.catch_warnings():
        warnings.simplefilter("error", WidthWarning)  # 256 fits Q4_K: no warning
        result = export_gguf(pruned(256), out, quant="q4_k_m", tokenizer=tokenizer)
    types = _types(out)
    assert types["ffn_down"] <= {"Q4_K", "Q6_K"}  # the MLP width's rows: as asked
    # rows of hidden 64 miss the 256-blocks: llama.cpp's 32-block fallbacks, said why
    assert types["ffn_up"] == {"Q5_0"} and types["token_embd"] == {"Q8_0"}
    down = [g for g in result.tensors if g["kind"] == "ffn_down"]
    assert {g["status"] for g in down} == {"as asked"} and down[0]["row"] == 256
    up = next(g for g in result.tensors if g["kind"] == "ffn_up")
    assert up["status"] == "fallback" and "64 is not a multiple of 256" in up["reason"]
    assert 4.5 < result.bits_per_weight < 9


def test_unaligned_width_warns_first_and_stays_f16(tmp_path, tokenizer):
    model = pruned(300)
    f16 = tmp_path / "w300-f16.gguf"
    with pytest.warns(WidthWarning, match=r"2 ffn_down tensor\(s\) will stay F16.*256 or 512"):
        result = export_gguf(
            model, tmp_path / "w300.gguf", quant="Q4_K_M", tokenizer=tokenizer, keep_f16=f16
        )
    down = next(g for g in result.tensors if g["kind"] == "ffn_down")
    assert (down["type"], down["status"], down["tensors"]) == ("F16", "F16", 2)
    assert down["reason"] == "row length 300 is not a multiple of 32"
    # the pruned model's F16 file is still the same model
    assert check_gguf(f16, model, tokenizer)["passed"]


def test_strict_refuses_before_any_work(tmp_path, tokenizer):
    out = tmp_path / "w300.gguf"
    with pytest.raises(ValueError, match=r"width 300 .*stay F16.*256 or 512.*Refused"):
        export_gguf(pruned(300), out, quant="Q4_K_M", tokenizer=tokenizer, strict=True)
    assert list(tmp_path.iterdir()) == []  # nothing written, not even a temporary folder


def test_plan_follows_llama_cpp_blocks():
    config = make_model().config.to_dict()

    def down(quant: str, width: int) -> str:
        plan = plan_tensors({**config, "intermediate_size": width}, get_scheme(quant))
        return next(p["status"] for p in plan if p["kind"] == "ffn_down")

    assert down("Q4_K_M", 1536) == down("Q4_K_M", 1280) == "as asked"
    assert down("Q4_K_M", 1376) == "fallback" and down("Q4_K_M", 1382) == "F16"
    assert down("Q8_0", 1376) == "as asked" and down("Q8_0", 1382) == "F16"
    assert down("F16", 1536) == down("F16", 1382) == "as asked"


def test_cli_errors_are_one_line(tmp_path, tokenizer, capsys, monkeypatch):
    folder = tmp_path / "w300"
    pruned(300).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    capsys.readouterr()  # the saving's progress bar
    unigram = tmp_path / "unigram"
    make_model().save_pretrained(unigram)
    (unigram / "tokenizer.json").write_text('{"model": {"type": "Unigram", "vocab": []}}')
    capsys.readouterr()
    cases = [
        ([str(unigram)], "Unigram tokenizer"),
        ([str(folder), "--quant", "Q3_X"], "unknown quantization 'Q3_X'; known: F16, Q8_0"),
        ([str(folder), "--strict"], "Refused (strict)"),
        ([str(tmp_path / "absent")], "not a checkpoint folder"),
    ]
    for args, message in cases:
        assert main(["export-gguf", *args, "--out", str(tmp_path / "x.gguf")]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and message in err, err
    monkeypatch.setenv("WIDTHPRUNE_LLAMA_CPP", str(tmp_path / "nowhere"))
    assert main(["export-gguf", str(folder), "--quant", "Q8_0", "--out", str(tmp_path / "x")]) == 2
    assert "make deploy" in capsys.readouterr().err
    assert not (tmp_path / "x.gguf").exists() and not (tmp_path / "x").exists()


def test_width_measurement_sizes_and_speeds(tmp_path, tokenizer):
    from widthprune.deployment.widths import measure_width, summarize_widths

    model = make_model()
    row = {"model": "tiny", "width": 288, "pruning_pct": 43.75, "round_to": 32, "kind": "aligned"}
    with pytest.warns(WidthWarning, match="fall back to Q5_0/Q8_0"):  # 288: 32s, not 256s
        measured = measure_width(
            model, tokenizer, row, tmp_path, quants=("F16", "Q8_0", "Q4_K_M"),
            prompt_tokens=16, new_tokens=4, repeats=2, threads=1,
        )  # fmt: skip
    assert model.config.intermediate_size == WIDTH  # the model itself is left unpruned
    assert list(tmp_path.iterdir()) == []  # the GGUF files are removed
    assert (
        len(measured) == 6
        and (measured[["prefill_tokens_per_s", "decode_tokens_per_s"]] > 0).all().all()
    )
    summary = summarize_widths(measured).set_index("quant")
    assert (summary["repeats"] == 2).all() and (summary["width"] == 288).all()
    assert summary.loc["Q8_0", "ffn_down_types"] == "Q8_0"  # 288 is a multiple of 32
    assert set(summary.loc["Q4_K_M", "ffn_down_types"].split("+")) <= {"Q5_0", "Q8_0"}
    assert (
        summary.loc["F16", "file_mib"]
        > summary.loc["Q8_0", "file_mib"]
        > summary.loc["Q4_K_M", "file_mib"]
    )
    assert not summary["q4k_ready"].any() and summary["q8_ready"].all()


def test_planned_widths_label_the_study_first():
    from transformers import LlamaConfig

    from widthprune.deployment.widths import planned_widths

    config = LlamaConfig(hidden_size=576, intermediate_size=1536)  # SmolLM2-135M's MLP
    rows = {r["width"]: r for r in planned_widths(config, [10, 50], [32, 256])}
    assert sorted(rows, reverse=True) == [1536, 1383, 1376, 1280, 768]
    assert rows[768]["kind"] == "study" and rows[768]["pruning_pct"] == 50  # also 256-aligned
    assert (rows[1280]["kind"], rows[1280]["round_to"]) == ("aligned", 256)
    assert rows[1536]["kind"] == "unpruned" and rows[1383]["kind"] == "study"


def test_laptop_section_glues_the_recorded_measurements(tmp_path):
    import nbformat
    import pandas as pd
    from test_book import ROOT, glued

    from widthprune.runs.notebook import run_notebook

    csv = ROOT / "benchmarks" / "results" / "gguf_smollm2-135m-instruct_cpu.csv"
    out = run_notebook(ROOT / "notebooks" / "07_efficiency.ipynb", tmp_path / "07.ipynb", {},
                       cwd=ROOT)  # fmt: skip
    names = {k: v["text/plain"] for k, v in glued(nbformat.read(out, as_version=4)).items()}
    recorded = pd.read_csv(csv).groupby(["quant", "width"])["file_mib"].first()
    assert float(names["gguf_Q4_K_M_w10_mib"]) == pytest.approx(recorded["Q4_K_M", 1383])
    assert float(names["gguf_Q4_K_M_full_mib"]) == pytest.approx(recorded["Q4_K_M", 1536])
    # the study's 10 % width stays partly F16, so its Q4_K_M file is larger than unpruned
    assert float(names["gguf_q4_growth_w10"]) > 0 and names["gguf_f16_tensors_w10"] == "30"
    assert names["gguf_study_k"] == names["gguf_study_32"] == "'768'"
    assert names["gguf_llama_32"] == names["gguf_llama_256"] == "'4096'"
    # the toy's subsection: its recorded sizes, and the rule checked on every unaligned width
    toy = pd.read_csv(ROOT / "benchmarks" / "results" / "gguf_toy_cpu.csv")
    toy_mib = toy.groupby(["quant", "width"])["file_mib"].first()
    assert names["toy_gguf_w10"] == "692" and names["toy_gguf_w10_32"] == "672"
    assert float(names["toy_gguf_Q8_0_w10_file_mib"]) == pytest.approx(toy_mib["Q8_0", 692])
    assert float(names["toy_gguf_Q4_K_M_full_file_mib"]) == pytest.approx(toy_mib["Q4_K_M", 768])
    study = toy[toy.kind == "study"].width.unique()
    unaligned = [w for w in study if w % 32]
    larger = sum(toy_mib["Q8_0", w] > toy_mib["Q8_0", w - w % 32] for w in unaligned)
    assert names["toy_gguf_n_unaligned"] == str(len(unaligned)) == "5"
    assert names["toy_gguf_n_larger"] == str(larger)
    assert names["toy_gguf_study_32"] == "'384'" and names["toy_gguf_study_256"] == "'none'"


# The toy: a word-level tokenizer, carried as llama.cpp's WordPiece vocabulary


@pytest.fixture(scope="module")
def toy():
    return wp.load("toy")


def test_word_vocabulary_and_its_sentencepiece_stand_in(tmp_path, toy):
    from sentencepiece import SentencePieceProcessor

    from widthprune.deployment.vocab import WORD_PREFIX, word_vocab, write_sentencepiece_stand_in
    from widthprune.models.loading import TOY_CHECKPOINT

    model, tok = toy
    vocab = word_vocab(TOY_CHECKPOINT)
    assert len(vocab.tokens) == model.config.vocab_size == len(tok)
    assert vocab.tokens[tok.convert_tokens_to_ids("answer")] == "answer"
    assert (vocab.unk, vocab.eos, vocab.pad) == (tok.unk_token_id, tok.eos_token_id, 0)
    write_sentencepiece_stand_in(vocab, tmp_path / "tokenizer.model")
    sp = SentencePieceProcessor(model_file=str(tmp_path / "tokenizer.model"))
    assert sp.vocab_size() == len(vocab.tokens)
    assert [sp.id_to_piece(i) for i in range(sp.vocab_size())] == vocab.pieces()
    assert sp.id_to_piece(tok.convert_tokens_to_ids("answer")) == WORD_PREFIX + "answer"
    assert (sp.unk_id(), sp.eos_id(), sp.pad_id(), sp.bos_id()) == (vocab.unk, 1, 0, -1)
    assert sp.is_control(vocab.eos) and sp.is_unknown(vocab.unk)
    # another tokenizer is not word-level; a word-level one without an unknown token is refused
    assert word_vocab(REGISTERED["smollm2-135m-instruct"].checkpoint()) is None
    folder = tmp_path / "no-unk"
    folder.mkdir()
    (folder / "tokenizer.json").write_text('{"model": {"type": "WordLevel", "vocab": {"a": 0}}}')
    with pytest.raises(ValueError, match="no unknown token"):
        word_vocab(folder)


@pytest.fixture(scope="module")
def toy_f16(tmp_path_factory):
    path = tmp_path_factory.mktemp("toy") / "toy-f16.gguf"
    return path, export_gguf("toy", path, quant="F16")


def test_toy_exports_with_its_own_words(toy, toy_f16):
    from widthprune.deployment.equivalence import open_gguf, prompts_for
    from widthprune.toy.world import biography, build_world, stream

    model, tok = toy
    path, result = toy_f16
    assert result.vocabulary == "bert" and result.width == model.config.intermediate_size == 768
    assert result.weights == sum(p.numel() for p in model.parameters())
    reader = GGUFReader(path)
    assert int(reader.fields["llama.feed_forward_length"].contents()) == 768
    assert reader.fields["tokenizer.ggml.tokens"].contents()[tok.unk_token_id] == "<unk>"
    # the English prompts are unknown words to the toy: the check asks the toy world instead
    prompts = prompts_for(tok)
    assert len(prompts) == 3 and all(p.startswith("question : ") for p in prompts)
    verdict = check_gguf(path, model, tok)
    assert verdict["passed"], verdict
    assert [r["prompt"] for r in verdict["prompts"]] == list(prompts)
    assert all(r["tokenizer_equal"] for r in verdict["prompts"])
    # llama.cpp's own tokenizer splits the toy world's text as the toy does, word for word,
    # with unknown words (a name that is not the world's) as the unknown token
    rng, world = stream(0, "gguf-test"), build_world()
    texts = [biography(rng, world) for _ in range(20)] + ["Zyxwv lives in Qqq , happily ."]
    llm = open_gguf(path)
    for text in texts:
        ours = tok(text, add_special_tokens=False)["input_ids"]
        assert list(llm.tokenize(text.encode(), add_bos=False, special=False)) == ours, text
    assert tok.unk_token_id in ours
    llm.close()


def test_pruned_toy_exports_quantized(tmp_path, toy):
    import copy

    model, tok = toy
    small = copy.deepcopy(model)
    wp.prune(small, criterion="ppm", width=512)
    f16 = tmp_path / "toy512-f16.gguf"
    with warnings.catch_warnings():
        warnings.simplefilter("error", WidthWarning)  # hidden 192 and width 512: 32-blocks fit
        result = export_gguf(small, tmp_path / "toy512.gguf", quant="Q8_0", tokenizer=tok,
                             keep_f16=f16)  # fmt: skip
    assert result.vocabulary == "bert" and result.width == 512
    assert _types(tmp_path / "toy512.gguf")["ffn_down"] == {"Q8_0"}
    assert {g["status"] for g in result.tensors} <= {"as asked", "F32 (1-D)"}
    assert 8.0 < result.bits_per_weight < 9.0
    verdict = check_gguf(f16, small, tok)
    assert verdict["passed"] and all(r["tokenizer_equal"] for r in verdict["prompts"])
    # the unpruned toy is another model: the check tells them apart
    assert not check_gguf(f16, model, tok)["passed"]


def test_export_never_writes_into_its_source(tmp_path, capsys, monkeypatch):
    # widthprune prune toy --pct 40 --out p40 &&
    # widthprune export-gguf p40 --out p40/model.safetensors --quant F16 --overwrite
    monkeypatch.chdir(tmp_path)
    assert main(["prune", "toy", "--pct", "40", "--out", "p40"]) == 0
    capsys.readouterr()
    before = {p.name: p.read_bytes() for p in (tmp_path / "p40").iterdir()}
    for out in ("p40/model.safetensors", "p40", "p40/sub/model.gguf", "p40/../p40/x.gguf", "."):
        argv = ["export-gguf", "p40", "--out", out, "--quant", "F16", "--overwrite"]
        assert main(argv) == 2, out
        err = capsys.readouterr().err
        assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
        assert "source checkpoint" in err or "is a folder" in err, err
    assert {p.name: p.read_bytes() for p in (tmp_path / "p40").iterdir()} == before
    # prune likewise never writes into, or replaces a folder holding, its source
    for out in ("p40/sub", "."):
        assert main(["prune", "p40", "--pct", "10", "--out", out, "--overwrite"]) == 2, out
        assert "source checkpoint" in capsys.readouterr().err
    assert {p.name: p.read_bytes() for p in (tmp_path / "p40").iterdir()} == before


def test_width_advice_names_what_quantizes_at_the_suggested_widths(tmp_path, capsys, monkeypatch):
    # the toy (hidden 192, width 768) pruned by 40 % has width 461:
    # widthprune prune toy --pct 40 --out p40 && widthprune export-gguf p40 --out p40.gguf
    monkeypatch.chdir(tmp_path)
    assert main(["prune", "toy", "--pct", "40", "--out", "p40"]) == 0
    assert json.loads((tmp_path / "p40" / "config.json").read_text())["intermediate_size"] == 461
    capsys.readouterr()
    main(["export-gguf", "p40", "--out", "p40.gguf"])  # 2 where llama.cpp is not installed
    [warning] = [line for line in capsys.readouterr().err.splitlines() if "warning:" in line]
    assert "8 ffn_down tensor(s) will stay F16 (row length 461 is not a multiple of 32)" in warning
    assert "nearest widths that quantize fully" not in warning  # at 512 seven kinds fall back
    hidden = "token_embd, attn_q, attn_k, attn_v, ffn_gate, ffn_up, attn_output"
    assert (
        "At width 256 or 512 (multiples of 256) ffn_down quantizes to Q4_K_M; at 448 or 480 "
        "(multiples of 32) it falls back to Q5_0/Q8_0." in warning
    )
    assert (
        f"At any width, {hidden} fall back to Q5_0/Q8_0 (row length 192 is not a multiple of "
        "256)." in warning
    )
    # where every other kind quantizes as asked, the advice says so
    config = {**json.loads((tmp_path / "p40" / "config.json").read_text()), "hidden_size": 256}
    config.update(head_dim=32, num_attention_heads=8)
    with pytest.warns(WidthWarning) as caught:
        check_plan(plan_tensors(config, get_scheme("Q4_K_M")), get_scheme("Q4_K_M"), 461, False)
    assert "Every other matrix kind quantizes to Q4_K_M at any width." in str(caught[0].message)
