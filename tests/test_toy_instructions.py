"""Instruction checkers: hand-written right answers pass, wrong ones fail, strict and loose."""

from __future__ import annotations

import pytest

from widthprune.toy.instructions import KINDS, check, check_loose, make_prompt
from widthprune.toy.world import stream

ITEMS = ["cat", "lamp", "river", "plum"]

# kind: (kwargs, right answers, wrong answers that even the loose reading rejects)
CASES = {
    "repeat_word": (
        {"word": "owl", "n": 3},
        ["owl owl owl", "( owl owl owl )", "sure owl owl owl"],
        ["owl owl", "owl owl owl owl owl owl", "owl cat owl owl", "cat"],
    ),
    "reverse_list": (
        {"items": ITEMS},
        ["plum river lamp cat", "[ plum river lamp cat ]", "plum river lamp cat key"],
        ["cat lamp river plum", "plum lamp river cat", "plum river", ""],
    ),
    "kth_item": (
        {"items": ITEMS, "k": 3},
        ["river", "{ river }", "key river"],
        ["lamp", "cat lamp river plum", "lamp plum cat", ""],
    ),
    "word_count": (
        {"n": 3, "topic": "animals"},
        ["cat dog owl", "( cat dog owl )", "< red bread key >"],
        ["cat", "cat dog owl fox frog pig", ""],
    ),
    "wrap": (
        {"open": "[", "close": "]"},
        ["[ cat ]", "[ cat dog ]", "[ ]"],
        ["cat dog", "( cat )", "[ cat", "] cat ["],
    ),
    "start_with": (
        {"word": "goat"},
        ["goat cat", "goat", "goat lamp lamp"],
        ["cat dog goat", "lamp cat", ""],
    ),
    "end_with": (
        {"word": "goat"},
        ["cat goat", "goat", "( cat ) goat"],
        ["goat cat dog", "cat dog", ""],
    ),
}


def test_every_kind_has_cases():
    assert set(CASES) == set(KINDS)


@pytest.mark.parametrize("kind", sorted(CASES))
def test_right_answers_pass_strict_and_loose(kind):
    kwargs, right, _ = CASES[kind]
    for answer in right:
        assert check(kind, answer, kwargs), answer
        assert check_loose(kind, answer, kwargs), answer


@pytest.mark.parametrize("kind", sorted(CASES))
def test_wrong_answers_fail_strict_and_loose(kind):
    kwargs, _, wrong = CASES[kind]
    for answer in wrong:
        assert not check(kind, answer, kwargs), answer
        assert not check_loose(kind, answer, kwargs), answer


@pytest.mark.parametrize(
    ("kind", "kwargs", "answer"),
    [
        ("wrap", {"open": "(", "close": ")"}, "( cat dog ) ."),
        ("wrap", {"open": "(", "close": ")"}, "here ( cat dog )"),
        ("end_with", {"word": "goat"}, "cat dog goat ."),
        ("start_with", {"word": "goat"}, "well goat cat"),
        ("repeat_word", {"word": "owl", "n": 2}, "owl owl owl"),
        ("kth_item", {"items": ITEMS, "k": 1}, "cat lamp"),
        ("word_count", {"n": 2, "topic": "foods"}, "here are bread honey"),
        ("reverse_list", {"items": ["cat", "lamp"]}, "lamp , cat"),
    ],
)
def test_loose_reading_accepts_what_strict_rejects(kind, kwargs, answer):
    assert not check(kind, answer, kwargs)
    assert check_loose(kind, answer, kwargs)


def test_generated_responses_follow_every_instruction_of_their_prompt():
    rng = stream(0, "checker-test")
    seen = set()
    for _ in range(500):
        item = make_prompt(rng)
        seen.update(item["instruction_ids"])
        assert item["prompt"].startswith("instruction :")
        assert item["prompt"].endswith("response :")
        assert 1 <= len(item["instruction_ids"]) <= 3
        for kind, kwargs in zip(item["instruction_ids"], item["kwargs"], strict=True):
            assert check(kind, item["response"], kwargs), item
            assert check_loose(kind, item["response"], kwargs), item
    assert seen == set(KINDS)


def test_loose_accepts_everything_strict_accepts():
    rng = stream(0, "loose-test")
    words = ["cat", "lamp", "river", "plum", "(", ")", ".", "owl", "goat", "key"]
    for _ in range(2000):
        answer = " ".join(rng.choice(words) for _ in range(rng.randint(0, 6)))
        for kind, (kwargs, _, _) in CASES.items():
            if check(kind, answer, kwargs):
                assert check_loose(kind, answer, kwargs), (kind, answer)


def test_unknown_kind_is_refused_with_the_valid_ones():
    with pytest.raises(ValueError, match="valid: .*repeat_word"):
        check("shout", "cat", {})
    with pytest.raises(ValueError, match="unknown instruction kind"):
        check_loose("shout", "cat", {})


def test_ranges_beyond_the_lexicon_are_refused():
    with pytest.raises(ValueError, match="list_len"):
        make_prompt(stream(0, "x"), list_len=(3, 7))  # no ordinal past "sixth"
    with pytest.raises(ValueError, match="count"):
        make_prompt(stream(0, "x"), count=(0, 3))
