"""Instruction following on real prompts: IFEval's checkers on real questions, and IFBench."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import yaml
from evalkit import make_byte_llama, make_byte_tokenizer

import widthprune as wp
from widthprune.evaluation import instruction_compliance
from widthprune.evaluation.catalogue import CATALOGUE, PRESETS
from widthprune.evaluation.harness import TASKS_DIR
from widthprune.evaluation.metrics import SENTENCE_SPLITTER_INSTRUCTIONS
from widthprune.evaluation.tasks.real import ifbench_suite as ifb
from widthprune.evaluation.tasks.real import instruction_suite as suite

REAL = TASKS_DIR / "real"
METRICS = [
    "prompt_level_strict_acc",
    "inst_level_strict_acc",
    "prompt_level_loose_acc",
    "inst_level_loose_acc",
]


def _yaml_kwargs() -> dict:
    text = (REAL / "real_instructions.yaml").read_text()
    text = "\n".join(line for line in text.splitlines() if "!function" not in line)
    return yaml.safe_load(text)["dataset_kwargs"]


@pytest.fixture(scope="module")
def items():
    return suite.build_items(**_yaml_kwargs())


def _first(items, instruction_id):
    return next(i for i in items if i["instruction_id_list"] == [instruction_id])


def _score(item, response):
    return suite.process_results(item, [response])


# --- the suite: deterministic, exact counts, official wording --------------------------------


def test_suite_is_deterministic_with_exact_counts(items):
    kwargs = _yaml_kwargs()
    assert items == suite.build_items(**kwargs)
    assert items != suite.build_items(**{**kwargs, "seed": kwargs["seed"] + 1})
    assert len(suite.INSTRUCTIONS) == 23
    assert not SENTENCE_SPLITTER_INSTRUCTIONS & set(suite.INSTRUCTIONS)
    ids = [i["instruction_id_list"] for i in items]
    singles = Counter(i[0] for i in ids if len(i) == 1)
    assert singles == dict.fromkeys(suite.INSTRUCTIONS, kwargs["per_type"])
    sizes = Counter(len(i["instruction_id_list"]) for i in items)
    assert sizes[1] == 23 * kwargs["per_type"] and sizes[2] + sizes[3] == kwargs["multi"]
    assert len(items) == 23 * 16 + 160 == 528
    assert [i["key"] for i in items] == list(range(len(items)))
    assert len({i["prompt"] for i in items}) == len(items)
    assert Counter(i["source"] for i in items) == {"arc_easy": 177, "sciq": 176, "trivia_qa": 175}
    # any prefix is balanced: the first round holds every type once
    assert {i["instruction_id_list"][0] for i in items[:23]} == set(suite.INSTRUCTIONS)
    # the task's dataset is these items
    dataset = suite.instructions(**kwargs, version=1.0)["test"]
    assert dataset["prompt"] == [i["prompt"] for i in items]


def test_prompts_hold_each_checkers_own_description(items):
    """Rebuilding each checker from the stored kwargs, as lm-eval's scoring does, gives the
    very text the prompt holds; no prompt pairs conflicting instructions."""
    registry = suite._registry.INSTRUCTION_DICT
    for item in items:
        ids = item["instruction_id_list"]
        assert all(not suite.conflicts(a, b) for a in ids for b in ids if a != b)
        assert len(set(ids)) == len(ids)
        for iid, kwargs in zip(ids, item["kwargs"], strict=True):
            checker = registry[iid](iid)
            text = checker.build_description(**{k: v for k, v in kwargs.items() if v})
            assert text in item["prompt"], (iid, text)
            if iid == "combination:repeat_prompt":
                assert item["prompt"] == f"{text} {kwargs['prompt_to_repeat']}"


def test_topical_words_come_from_the_question(items):
    for item in items:
        stem = item["question"].split(" Choices: ")[0].lower()
        for iid, kwargs in zip(item["instruction_id_list"], item["kwargs"], strict=True):
            words = kwargs.get("keywords") or kwargs.get("forbidden_words") or []
            words = [*words, kwargs.get("keyword"), kwargs.get("first_word")]
            for word in filter(None, words):
                assert word in stem, (iid, word, stem)


# --- the checkers: compliant answers pass, others fail ---------------------------------------

ANSWER = "The Sun heats the water in the lake and the water turns into vapor that rises up"
NEUTRAL = "Yes, it is so."  # no word of four letters or more: never a topical word


def _pair(iid: str, kwargs: dict) -> tuple[str, str]:
    """A hand-written answer that follows the instruction, and one that does not."""
    n = kwargs.get("num_bullets") or kwargs.get("num_highlights") or kwargs.get("num_words")
    if iid == "change_case:english_lowercase":
        return ANSWER.lower(), ANSWER
    if iid == "change_case:english_capital":
        return ANSWER.upper(), ANSWER
    if iid == "startend:quotation":
        return f'"{ANSWER}."', f"{ANSWER}."
    if iid == "punctuation:no_comma":
        return f"{ANSWER}.", NEUTRAL
    if iid == "startend:end_checker":
        end = kwargs["end_phrase"]
        return f"{ANSWER}. {end}", f"{end} {ANSWER}."
    if iid == "detectable_format:number_bullet_lists":
        bullets = [f"* Point {k}." for k in range(n + 1)]
        return "\n".join(bullets[:n]), "\n".join(bullets)
    if iid == "detectable_format:number_highlighted_sections":
        return " ".join(f"*part {k}*" for k in range(n)), ANSWER
    if iid == "keywords:existence":
        return f"{NEUTRAL} {' '.join(kwargs['keywords'])}.", NEUTRAL
    if iid == "keywords:forbidden_words":
        return NEUTRAL, f"{NEUTRAL} {kwargs['forbidden_words'][-1]}."
    if iid == "detectable_format:json_format":
        return json.dumps({"answer": ANSWER}), f"answer: {ANSWER}"
    if iid == "detectable_format:title":
        return f"<<Evaporation>>\n{ANSWER}.", f"Evaporation\n{ANSWER}."
    if iid == "detectable_content:postscript":
        marker = kwargs["postscript_marker"]
        return f"{ANSWER}.\n{marker} Lakes shrink in summer.", f"{ANSWER}."
    if iid == "combination:repeat_prompt":
        request = kwargs["prompt_to_repeat"]
        return f"{request} {ANSWER}.", f"{ANSWER}. {request}"
    if iid == "length_constraints:number_words":
        short, long = " ".join(["water"] * (n - 1)), " ".join(["water"] * n)
        return (short, long) if kwargs["relation"] == "less than" else (long, short)
    raise KeyError(iid)


CHECKED = [
    "change_case:english_lowercase",
    "change_case:english_capital",
    "startend:quotation",
    "punctuation:no_comma",
    "startend:end_checker",
    "detectable_format:number_bullet_lists",
    "detectable_format:number_highlighted_sections",
    "keywords:existence",
    "keywords:forbidden_words",
    "detectable_format:json_format",
    "detectable_format:title",
    "detectable_content:postscript",
    "combination:repeat_prompt",
    "length_constraints:number_words",
]


@pytest.mark.parametrize("iid", CHECKED)
def test_checker_accepts_a_compliant_answer_and_rejects_another(items, iid):
    for item in [i for i in items if i["instruction_id_list"] == [iid]][:3]:
        good, bad = _pair(iid, item["kwargs"][0])
        assert _score(item, good) == dict.fromkeys(METRICS[::2], True) | {
            "inst_level_strict_acc": [True],
            "inst_level_loose_acc": [True],
        }
        assert _score(item, bad)["prompt_level_strict_acc"] is False


def test_a_prompt_is_followed_only_when_every_instruction_is():
    prompt, kwargs = suite.build_prompt(
        "Which gas do plants take in? Choices: oxygen; carbon dioxide.",
        ["change_case:english_lowercase", "startend:quotation"],
        key="test",
    )
    item = {
        "key": 0,
        "prompt": prompt,
        "instruction_id_list": ["change_case:english_lowercase", "startend:quotation"],
        "kwargs": kwargs,
    }
    assert prompt.endswith("Wrap your entire response with double quotation marks.")
    answer = "plants take in carbon dioxide from the air and give out oxygen"
    both = _score(item, f'"{answer}"')
    assert both["prompt_level_strict_acc"] and both["inst_level_strict_acc"] == [True, True]
    one = _score(item, answer)
    assert not one["prompt_level_strict_acc"] and one["inst_level_strict_acc"] == [True, False]
    # loose scoring also accepts the answer without its first line (a preamble)
    loose = _score(item, f'Here it is:\n"{answer}"')
    assert not loose["prompt_level_strict_acc"] and loose["prompt_level_loose_acc"]


# --- IFBench ---------------------------------------------------------------------------------


def test_ifbench_items_split_by_nltk_data():
    every = ifb.load_items()
    assert len(every) == 294 and len({i["key"] for i in every}) == 294
    plain = ifb.ifbench()["test"]
    assert len(plain) == 265
    needing = [i for i in every if set(i["instruction_id_list"]) & set(ifb.NLTK_DATA)]
    assert len(needing) == 29
    assert set(plain["key"]) | {i["key"] for i in needing} == {i["key"] for i in every}


def test_nltk_data_table_is_exactly_the_checkers_that_need_it(tmp_path, monkeypatch):
    """With NLTK finding no data, exactly the listed instruction types fail to be checked."""
    import nltk

    monkeypatch.setattr(nltk.data, "path", [str(tmp_path)])
    registry = ifb._lib.instructions_registry.INSTRUCTION_DICT
    text = " ".join(f"Sentence number {k} talks about a cat and a dog." for k in range(30))
    failing = set()
    for item in ifb.load_items():
        for iid, kwargs in zip(
            item["instruction_id_list"], json.loads(item["kwargs"]), strict=True
        ):
            checker = registry[iid](iid)
            try:
                with ifb.no_downloads():
                    checker.build_description(**{k: v for k, v in kwargs.items() if v is not None})
                    checker.check_following(text)
            except LookupError:
                failing.add(iid)
    assert failing == set(ifb.NLTK_DATA)
    assert ifb.missing_nltk_data(ifb.NLTK_DATA)
    with pytest.raises(FileNotFoundError, match="real_ifbench_nltk.*punkt_tab"):
        ifb.ifbench_nltk()


def test_ifbench_checkers_on_real_strings():
    item = next(i for i in ifb.load_items() if i["key"] == "0")  # five keywords, 1 to 7 times
    assert item["instruction_id_list"] == ["count:keywords_multiple"]
    words = ["kaleidoscope"] + ["nebula"] * 2 + ["whisper"] * 3 + ["labyrinth"] * 5
    good = " ".join(words + ["paradox"] * 7) + "."
    bad = " ".join(words + ["paradox"] * 6) + "."
    assert ifb.process_results(item, [good])["prompt_level_strict_acc"] is True
    assert ifb.process_results(item, [bad])["inst_level_strict_acc"] == [False]
    # loose scoring drops markdown asterisks before checking
    starred = good.replace("paradox", "*paradox*", 1)
    assert ifb.process_results(item, [starred])["prompt_level_loose_acc"] is True


def test_a_checker_that_raises_counts_as_not_followed():
    items = ifb.load_items()
    quote = next(i for i in items if i["instruction_id_list"] == ["format:quote_unquote"])
    with pytest.raises(IndexError):  # IFBench's own checker, on a response of digits alone
        ifb._lib.test_instruction_following_strict(
            ifb._lib.InputExample(
                key=quote["key"],
                instruction_id_list=["format:quote_unquote"],
                prompt=quote["prompt"],
                kwargs=[{}],
            ),
            {quote["prompt"]: "12345."},
        )
    scores = ifb.process_results(quote, ["12345."])
    assert scores["inst_level_strict_acc"] == [False] and scores["prompt_level_loose_acc"] is False
    assert ifb.process_results(quote, ['He said "yes" and left.'])["prompt_level_strict_acc"]
    two = next(i for i in items if len(i["instruction_id_list"]) == 2)
    both = {**two, "instruction_id_list": [two["instruction_id_list"][0], "format:quote_unquote"]}
    kwargs = json.loads(two["kwargs"])[:1] + [{}]
    both["kwargs"] = json.dumps(kwargs)
    scores = ifb.process_results(both, ["12345."])  # the other instruction is still checked
    assert len(scores["inst_level_strict_acc"]) == 2 and scores["inst_level_strict_acc"][1] is False


# --- evaluation through lm-eval, offline ------------------------------------------------------


def _no_network(*args, **kwargs):
    raise OSError("network access in a test")


SHORT = {"real_instructions": "short_instructions", "real_ifbench": "short_ifbench"}
LIMIT = 48  # IFBench's items 40 to 44 (Japanese word counts) pass on random bytes


@pytest.fixture(scope="module")
def result(tmp_path_factory):
    """Both tasks on the tiny byte-level Llama, sockets closed for the whole run.

    Each task is run as written except for the answers' length (32 tokens instead of 512 and
    1280): a variant YAML includes the task's own file and overrides only that.
    """
    folder = tmp_path_factory.mktemp("short")
    for task, short in SHORT.items():
        (folder / f"{short}.yaml").write_text(
            f"include: {REAL / task}.yaml\ntask: {short}\n"
            "generation_kwargs: {until: [], do_sample: false, max_gen_toks: 32}\n"
        )
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(socket, "socket", _no_network)
        patch.setattr(socket, "create_connection", _no_network)
        return wp.evaluate(
            make_byte_llama(),
            make_byte_tokenizer(),
            list(SHORT.values()),
            limit=LIMIT,
            include_path=[folder],
            bootstrap_iters=0,
        )


def _recomputed(records, scorer):
    """Slow reference: score every response again and pool the items by hand."""
    out = {}
    for record in records:
        fresh = scorer(record["doc"], [record["filtered_resps"][0]])
        for metric in METRICS:
            assert fresh[metric] == record[metric]
            out.setdefault(metric, []).append(fresh[metric])
    return {
        m: float(np.mean(np.concatenate([np.atleast_1d(v) for v in values])))
        for m, values in out.items()
    }


@pytest.mark.parametrize(
    ("task", "scorer"),
    [("real_instructions", suite.process_results), ("real_ifbench", ifb.process_results)],
)
def test_reported_scores_equal_a_recomputation_from_the_records(result, task, scorer):
    task = SHORT[task]
    records = [r for r in result.records if r["task"] == task]
    assert all(len(r["resps"][0][0]) > 0 for r in records)
    assert len(records) == LIMIT
    expected = _recomputed(records, scorer)
    summary = result.summary[result.summary.task == task].set_index("metric")
    for metric in METRICS:
        assert summary.loc[metric, "value"] == pytest.approx(expected[metric], abs=1e-12)
        assert summary.loc[metric, "n"] == LIMIT and summary.loc[metric, "chance"] == 0.0
    # the per-type table pools back to lm-eval's instruction level
    table = instruction_compliance(records)
    for level in ("strict", "loose"):
        pooled = float(np.average(table[level], weights=table["n"]))
        assert pooled == pytest.approx(summary.loc[f"inst_level_{level}_acc", "value"])
    assert table["n"].sum() == sum(len(r["doc"]["instruction_id_list"]) for r in records)
    if task == "short_instructions":  # the first 23 items hold every type once
        assert set(table["instruction"]) == set(suite.INSTRUCTIONS)


def test_the_random_model_follows_some_instructions_and_not_others(result):
    """So that the recomputation above compares mixed scores, not all zeros."""
    for task in SHORT.values():
        records = [r for r in result.records if r["task"] == task]
        flags = {x for r in records for x in r["inst_level_loose_acc"]}
        assert flags == {True, False}, task


# --- no downloads at import or at scoring -----------------------------------------------------

_IMPORT_CHECK = """
import sys, nltk
def refuse(*a, **k):
    raise AssertionError("download attempted")
nltk.download = refuse
nltk.data.path[:] = [sys.argv[1]]  # no NLTK data: lm-eval's import would download punkt_tab
import importlib.util
for name in ("instruction_suite", "ifbench_suite"):
    spec = importlib.util.spec_from_file_location(name, f"{sys.argv[2]}/{name}.py")
    spec.loader.exec_module(importlib.util.module_from_spec(spec))
assert nltk.download is refuse and "spacy.cli" not in sys.modules
print("imported", len(sys.modules["ifbench.instructions_registry"].INSTRUCTION_DICT))
"""


def test_importing_the_suites_downloads_nothing(tmp_path):
    """Imported as lm-eval imports them (from their files), in a fresh interpreter."""
    out = subprocess.run(
        [sys.executable, "-c", _IMPORT_CHECK, str(tmp_path), str(REAL)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split()[-2:] == ["imported", "58"]


def test_scoring_downloads_nothing(monkeypatch):
    import nltk

    def refuse(*args, **kwargs):
        raise AssertionError("download attempted")

    monkeypatch.setattr(nltk, "download", refuse)
    # sentence:keyword and format:emoji call nltk.download whenever they are built
    for iid in ("sentence:keyword", "format:emoji"):
        item = next(i for i in ifb.load_items() if iid in i["instruction_id_list"])
        flags = ifb.process_results(item, ["A sentence. 🙂"])["inst_level_strict_acc"]
        assert len(flags) == len(item["instruction_id_list"])
    assert nltk.download is refuse


# --- the catalogue ---------------------------------------------------------------------------


def test_catalogue_and_preset_name_the_tasks():
    names = {"real_instructions", "real_ifbench", "real_ifbench_nltk"}
    for name in names:
        info = CATALOGUE[name]
        assert info.kind == "instruction" and info.chance == 0.0
        assert info.headline == ("prompt_level_strict_acc", "none")
        assert (REAL / f"{name}.yaml").is_file()
    assert {"real_instructions", "real_ifbench"} <= set(PRESETS["real"])
    assert "real_ifbench_nltk" not in PRESETS["real"]
    assert Path(suite.__file__).parent == REAL
