"""The fast evaluation engine computes what lm-eval's own model class computes.

On the CPU the arithmetic of the static-cache decoder is that of ``model.generate`` up to the
order of a few sums, so the tests ask for the same tokens and the same texts, item by item. The
log-likelihoods are the same sums over rows batched differently (``HFLM``: a fixed number of
rows; the fast engine: distinct inputs filled to a memory budget), so they agree to rounding:
the same choice on every item, scores and perplexities within a relative 1e-4.
"""

from __future__ import annotations

import copy

import pandas as pd
import pytest
import torch
from evalkit import make_byte_llama, make_byte_tokenizer, write_tasks

import widthprune as wp
from widthprune.evaluation.agreement import agreement_table, compare_records
from widthprune.evaluation.greedy import GreedyDecoder, supports_static_greedy
from widthprune.runs.sweep import SweepConfig


@pytest.fixture(scope="module")
def byte_model():
    return make_byte_llama(seed=3), make_byte_tokenizer()


@pytest.fixture(scope="module")
def tasks_dir(tmp_path_factory):
    return write_tasks(tmp_path_factory.mktemp("tasks"))


def _left_padded(tok, texts):
    tok.padding_side = "left"
    enc = tok(texts, return_tensors="pt", padding=True)
    return enc["input_ids"], enc["attention_mask"]


@pytest.mark.parametrize("check_every", [1, 5, 64])
def test_static_greedy_equals_generate_on_left_padded_prompts(byte_model, check_every):
    model, tok = byte_model
    texts = ["The cat sat", "A much longer prompt about a dog", "x", "Numbers: 1 2 3 4"]
    ids, mask = _left_padded(tok, texts)
    new = 24
    ref = model.generate(
        ids, attention_mask=mask, max_new_tokens=new, do_sample=False, pad_token_id=256,
        eos_token_id=[], min_new_tokens=new,
    )[:, ids.shape[1]:]  # fmt: skip
    decoder = GreedyDecoder(model, 4, ids.shape[1], new, eos_ids=(), check_every=check_every)
    tokens, done = decoder.generate(ids, mask)
    assert done == new
    assert torch.equal(tokens, ref)
    # a second batch through the same decoder (a reused cache and graph) is as right
    ids2, mask2 = _left_padded(tok, ["Other text", "b", "c c c", "The dog barked at night"])
    pad = ids.shape[1] - ids2.shape[1]
    ids2 = torch.nn.functional.pad(ids2, (pad, 0), value=256)
    mask2 = torch.nn.functional.pad(mask2, (pad, 0), value=0)
    ref2 = model.generate(
        ids2, attention_mask=mask2, max_new_tokens=new, do_sample=False, pad_token_id=256,
        eos_token_id=[], min_new_tokens=new,
    )[:, ids2.shape[1]:]  # fmt: skip
    assert torch.equal(decoder.generate(ids2, mask2)[0], ref2)


def test_static_greedy_stops_when_every_row_has_ended(byte_model):
    model, tok = byte_model
    ids, mask = _left_padded(tok, ["hello there", "hi"])
    free = GreedyDecoder(model, 2, ids.shape[1], 40, eos_ids=(), check_every=4)
    tokens, _ = free.generate(ids, mask)
    # make the token each row emits third its end: both rows end by step 3
    eos = (int(tokens[0, 2]), int(tokens[1, 2]))
    decoder = GreedyDecoder(model, 2, ids.shape[1], 40, eos_ids=eos, check_every=4)
    ended, done = decoder.generate(ids, mask)
    assert done == 5  # the first look: the prefill's token and four steps
    assert torch.equal(ended[:, :3], tokens[:, :3])
    # a stop string found by the caller ends its row too
    calls = []

    def stopped(generated, n):
        calls.append(n)
        return torch.tensor([True, True])

    decoder = GreedyDecoder(model, 2, ids.shape[1], 40, eos_ids=(), check_every=8)
    assert decoder.generate(ids, mask, stopped)[1] == 9 and calls == [9]


def test_rows_that_end_leave_the_batch_and_views_grow_without_changing_a_token(byte_model):
    model, tok = byte_model
    texts = ["The cat sat", "A dog", "x", "Numbers: 1 2", "Once upon a time", "Hello"]
    ids, mask = _left_padded(tok, texts)
    new = 40
    ref = model.generate(
        ids, attention_mask=mask, max_new_tokens=new, do_sample=False, pad_token_id=256,
        eos_token_id=[], min_new_tokens=new,
    )[:, ids.shape[1]:]  # fmt: skip
    # views of 8 columns: the cache read grows five times over the answer
    decoder = GreedyDecoder(model, 6, ids.shape[1], new, eos_ids=(), check_every=4, window=8,
                            min_rows=1)  # fmt: skip
    tokens, done = decoder.generate(ids, mask)
    assert done == new and decoder.narrowed == []
    assert torch.equal(tokens, ref)

    def stopped(generated, n):  # rows 0-3 meet a stop string at the first look, 5 at the second
        flags = torch.zeros(len(generated), dtype=torch.bool)
        if n == 5:
            flags[:4] = True
        if n == 9:
            flags[1] = True  # row 5, now the second of the two rows left
        return flags

    tokens, done = decoder.generate(ids, mask, stopped)  # the same decoder, reused
    assert decoder.narrowed == [2, 1]  # four of six ended: two rows; one of two: one row
    assert done == new
    assert torch.equal(tokens[4], ref[4])  # the row that ran on is unchanged
    assert torch.equal(tokens[:4, :5], ref[:4, :5]) and torch.equal(tokens[5, :9], ref[5, :9])


def test_sliding_window_models_are_left_to_lm_eval(byte_model):
    model, _ = byte_model
    assert supports_static_greedy(model)
    windowed = copy.deepcopy(model)
    windowed.config.sliding_window = 16
    assert not supports_static_greedy(windowed)
    with pytest.raises(ValueError, match="sliding-window"):
        GreedyDecoder(windowed, 1, 4, 4, eos_ids=())


def _both(model, tok, tasks, **kwargs):
    return [wp.evaluate(model, tok, tasks, engine=e, **kwargs) for e in ("lm-eval", "fast")]


def test_fast_engine_gives_lm_evals_answers_on_local_tasks(byte_model, tasks_dir):
    model, tok = byte_model
    names = ["tiny", "arc_local", "gsm8k_local", "ifeval_local"]
    ref, fast = _both(model, tok, names, num_fewshot={"gsm8k_local": 2}, include_path=[tasks_dir])
    items = compare_records(ref.records, fast.records)
    assert items["same"].all(), items[~items["same"]]
    assert set(items["kind"]) >= {"text", "choice"}
    pd.testing.assert_frame_equal(ref.samples, fast.samples, rtol=1e-4)
    pd.testing.assert_frame_equal(ref.summary, fast.summary, rtol=1e-4)


def test_fast_engine_gives_lm_evals_answers_on_the_toy():
    model, tok = wp.load("toy")
    ref, fast = _both(model, tok, "toy", limit=12)
    table = agreement_table(compare_records(ref.records, fast.records))
    assert (table["share_same"] == 1.0).all(), table
    assert table["items"].sum() == len(ref.records) > 40
    pd.testing.assert_frame_equal(ref.summary, fast.summary, rtol=1e-4)


def test_fast_engine_on_smollm2_in_and_out_of_its_chat_template():
    model, tok = wp.load("smollm2-135m-instruct")
    wp.prune(model, criterion="ppm", pruning_pct=40)
    tasks = ["real_capitals", "real_instructions_brief", "local_arc_easy"]
    for template in (False, True):
        ref, fast = _both(model, tok, tasks, limit=3, apply_chat_template=template)
        items = compare_records(ref.records, fast.records)
        assert len(items) == 9 and items["same"].all(), items[~items["same"]]


def test_agreement_names_a_difference_and_its_margin():
    choice = {"task": "t", "doc_id": 0, "acc": 1.0, "resps": [[[-1.0, False]], [[-1.5, False]]]}
    other = {**choice, "acc": 0.0, "resps": [[[-1.2, False]], [[-1.1, False]]]}
    text = {"task": "g", "doc_id": 0, "resps": [["Paris"]]}
    items = compare_records([choice, text], [other, {**text, "resps": [["Lyon"]]}])
    assert items["same"].tolist() == [False, False]
    assert items.loc[items["task"] == "t", "margin"].item() == pytest.approx(0.5)
    with pytest.raises(ValueError, match="different items"):
        compare_records([choice], [text])


def test_tasks_loaded_once_give_the_same_items_again(byte_model, tasks_dir):
    model, tok = byte_model
    kw = dict(include_path=[tasks_dir], limit=4)
    first = wp.evaluate(model, tok, ["gsm8k_local"], num_fewshot={"gsm8k_local": 2}, **kw)
    zero = wp.evaluate(model, tok, ["gsm8k_local"], num_fewshot={"gsm8k_local": 0}, **kw)
    again = wp.evaluate(model, tok, ["gsm8k_local"], num_fewshot={"gsm8k_local": 2}, **kw)
    pd.testing.assert_frame_equal(first.samples, again.samples)
    assert first.details["n-shot"] == again.details["n-shot"] != zero.details["n-shot"]


def test_a_sweep_with_seeds_has_one_baseline_and_each_pruned_point_per_seed():
    config = SweepConfig(criteria=("random", "ppm"), pcts=(0, 20, 40), seeds=(0, 1, 1, 2))
    points = config.points()
    assert [(p.label, p.seed) for p in points[:4]] == [
        ("baseline", 0),
        ("random-pct20", 0),
        ("random-pct20", 1),
        ("random-pct20", 2),
    ]
    assert len(points) == 1 + 2 * 2 * 3 and len({p.config_id for p in points}) == len(points)
    with pytest.raises(ValueError, match="seeds is empty"):
        SweepConfig(seeds=())


def test_cuda_graph_needs_cuda(byte_model):
    model, _ = byte_model
    if torch.cuda.is_available():  # a GPU machine checks the graph's answers instead
        ids = torch.randint(0, 250, (3, 7))
        gpu = copy.deepcopy(model).cuda()
        fast = GreedyDecoder(gpu, 3, 7, 16, eos_ids=(), graph=True).generate(ids, ids > -1)[0]
        slow = GreedyDecoder(model, 3, 7, 16, eos_ids=()).generate(ids, ids > -1)[0]
        assert torch.equal(fast.cpu(), slow)
    else:
        with pytest.raises(ValueError, match="CUDA graphs need a CUDA device"):
            GreedyDecoder(model, 1, 4, 4, eos_ids=(), graph=True)


def test_a_kept_model_scores_once_and_prunes_as_a_fresh_load(tmp_path):
    from widthprune.runs.config import EvalConfig
    from widthprune.runs.experiment import _KEPT, evaluate_config, forget_models, run_config

    configs = [
        EvalConfig(criterion="wanda", pruning_pct=p, tasks="toy_knowledge", limit=6)
        for p in (20, 50)
    ]
    try:
        kept = [evaluate_config(c, "k", tmp_path, keep_model=True) for c in configs]
        ((_, _, scores),) = _KEPT.values()
        assert len(scores) == 1  # one criterion, one calibration: scored once for both widths
    finally:
        forget_models()
    assert not _KEPT
    fresh, provenance = run_config(configs[1])
    assert provenance["width"] == configs[1].resolved_width()
    pd.testing.assert_frame_equal(kept[1].samples, fresh.samples)


def test_batch_sizes_come_from_the_budget_not_from_a_probe(byte_model):
    from widthprune.evaluation.fastlm import FastLM

    model, tok = byte_model
    lm = FastLM(pretrained=model, tokenizer=tok, batch_size=4, memory_bytes=12 * 259 * 100 * 7)
    assert lm.max_length == 2048
    assert lm._detect_batch_size() == 1  # a full 2048-token row alone is over the budget
    requests = [(("a", "b"), [1] * 60, [2] * 40)]
    assert lm._detect_batch_size(requests, 0) == 7  # 100 tokens: 7 rows of 12 * 259 * 100 B
    # generation: the KV cache, activations and masks of a row within the budget
    rows = lm._gen_batch(10, 20)
    assert 1 <= rows <= 4  # the fixed batch size caps it
