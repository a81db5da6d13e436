"""Instructions whose answers rules can check, on fresh random inputs (an IFEval analogue).

A prompt holds one *content* instruction (what to write) and up to two *format* instructions
(how to write it). Each instruction has a checker that looks at the whole response alone, as
IFEval's do. *Strict* checks the response as written; *loose* passes if any relaxed variant
passes (first or last word dropped, punctuation removed), following IFEval's loose rule.
"""

from __future__ import annotations

import random
from collections.abc import Callable

from . import lexicon as lx

__all__ = ["CHECKERS", "KINDS", "check", "check_loose", "make_prompt", "words"]

CONTENT_KINDS = ("repeat_word", "reverse_list", "kth_item", "word_count")
FORMAT_KINDS = ("wrap", "start_with", "end_with")
KINDS = CONTENT_KINDS + FORMAT_KINDS
# format sets each content kind may take; wrapping conflicts with a first or last word, and a
# first or last word would change a word count
_FORMATS = {
    "repeat_word": ((), ("wrap",), ("start_with",), ("end_with",), ("start_with", "end_with")),
    "reverse_list": ((), ("wrap",), ("start_with",), ("end_with",), ("start_with", "end_with")),
    "kth_item": ((), ("wrap",), ("start_with",), ("end_with",), ("start_with", "end_with")),
    "word_count": ((), ("wrap",)),
}
_PHRASES = {
    "repeat_word": ("repeat the word {word} {n} times .", "write the word {word} {n} times ."),
    "reverse_list": ("reverse the list {items} .", "write {items} in reverse order ."),
    "kth_item": (
        "give the {ordinal} word of the list {items} .",
        "which word is {ordinal} in the list {items} ?",
    ),
    "word_count": ("name exactly {n} {topic} .", "answer with exactly {n} words about {topic} ."),
    "wrap": (
        "wrap the answer in {open} and {close} .",
        "put the answer between {open} and {close} .",
    ),
    "start_with": ("start the answer with the word {word} .", "begin with the word {word} ."),
    "end_with": ("end the answer with the word {word} .", "finish with the word {word} ."),
}
PROMPT_START, PROMPT_END = "instruction :", "response :"
_MARKUP = set(lx.PUNCTUATION)


def _content(rng: random.Random, kind: str, count: tuple[int, int], list_len: tuple[int, int]):
    """(kwargs, body words) of one content instruction."""
    if kind == "repeat_word":
        kw = {"word": rng.choice(lx.LIST_WORDS), "n": rng.randint(*count)}
        return kw, [kw["word"]] * kw["n"]
    if kind == "word_count":
        kw = {"topic": rng.choice(sorted(lx.TOPICS)), "n": rng.randint(*count)}
        return kw, rng.sample(lx.TOPICS[kw["topic"]], kw["n"])
    items = rng.sample(lx.LIST_WORDS, rng.randint(*list_len))
    if kind == "reverse_list":
        return {"items": items}, items[::-1]
    k = rng.randint(1, len(items))
    return {"items": items, "k": k}, [items[k - 1]]


def make_prompt(
    rng: random.Random,
    *,
    count: tuple[int, int] = (2, 5),
    list_len: tuple[int, int] = (3, 6),
) -> dict:
    """A random prompt of one to three instructions and a response that follows them all.

    Args:
        rng: the source of randomness.
        count: inclusive range of N in "N times" and "exactly N words".
        list_len: inclusive range of list lengths.

    Returns:
        ``{"prompt", "response", "instruction_ids", "kwargs"}``; ``kwargs[i]`` are the
        arguments of the checker of ``instruction_ids[i]``.
    """
    if not 1 <= list_len[0] <= list_len[1] <= len(lx.ORDINALS):
        raise ValueError(f"list_len={list_len} must lie within 1..{len(lx.ORDINALS)}")
    if not 1 <= count[0] <= count[1] <= min(map(len, lx.TOPICS.values())):
        raise ValueError(f"count={count} must lie within 1..{min(map(len, lx.TOPICS.values()))}")
    content = rng.choice(CONTENT_KINDS)
    kw, body = _content(rng, content, count, list_len)
    ids, kwargs = [content], [kw]
    used = set(body) | set(kw.get("items", ()))
    for kind in rng.choice(_FORMATS[content]):
        if kind == "wrap":
            left, right = rng.choice(lx.DELIMITERS)
            kwargs.append({"open": left, "close": right})
            body = [left, *body, right]
        else:
            word = rng.choice([w for w in lx.LIST_WORDS if w not in used])
            used.add(word)
            kwargs.append({"word": word})
            body = [word, *body] if kind == "start_with" else [*body, word]
        ids.append(kind)
    phrases = []
    for kind, kw in zip(ids, kwargs, strict=True):
        fields = dict(kw)
        if "items" in kw:
            fields["items"] = " ".join(kw["items"])
        if "k" in kw:
            fields["ordinal"] = lx.ORDINALS[kw["k"] - 1]
        phrases.append(rng.choice(_PHRASES[kind]).format(**fields))
    prompt = " ".join([PROMPT_START, *phrases, PROMPT_END])
    return {"prompt": prompt, "response": " ".join(body), "instruction_ids": ids, "kwargs": kwargs}


def _is_word(token: str) -> bool:
    return token.isalnum()


def _contains(words: list[str], run: list[str]) -> bool:
    n = len(run)
    return any(words[i : i + n] == run for i in range(len(words) - n + 1))


def _repeat_word(words: list[str], *, word: str, n: int) -> bool:
    return words.count(word) == n and _contains(words, [word] * n)


def _reverse_list(words: list[str], *, items: list[str]) -> bool:
    return _contains(words, list(reversed(items)))


def _kth_item(words: list[str], *, items: list[str], k: int) -> bool:
    return [w for w in words if w in items] == [items[k - 1]]


def _word_count(words: list[str], *, n: int, topic: str) -> bool:
    return sum(map(_is_word, words)) == n


def _wrap(words: list[str], *, open: str, close: str) -> bool:  # noqa: A002
    return len(words) >= 2 and words[0] == open and words[-1] == close


def _start_with(words: list[str], *, word: str) -> bool:
    return bool(words) and words[0] == word


def _end_with(words: list[str], *, word: str) -> bool:
    return bool(words) and words[-1] == word


CHECKERS: dict[str, Callable[..., bool]] = {
    "repeat_word": _repeat_word,
    "reverse_list": _reverse_list,
    "kth_item": _kth_item,
    "word_count": _word_count,
    "wrap": _wrap,
    "start_with": _start_with,
    "end_with": _end_with,
}


def check(kind: str, response: str, kwargs: dict) -> bool:
    """Whether ``response`` follows one instruction, read strictly (as written)."""
    if kind not in CHECKERS:
        raise ValueError(f"unknown instruction kind {kind!r}; valid: {sorted(CHECKERS)}")
    return CHECKERS[kind](response.split(), **kwargs)


def check_loose(kind: str, response: str, kwargs: dict) -> bool:
    """Whether any relaxed variant of ``response`` follows the instruction.

    The variants drop the first word, the last word, or both, each with and without the
    punctuation tokens removed: the response passes if any one of them passes strictly.
    """
    if kind not in CHECKERS:
        raise ValueError(f"unknown instruction kind {kind!r}; valid: {sorted(CHECKERS)}")
    words = response.split()
    bare = [w for w in words if w not in _MARKUP]
    variants = [v for base in (words, bare) for v in (base, base[1:], base[:-1], base[1:-1])]
    return any(CHECKERS[kind](v, **kwargs) for v in variants)


def words() -> set[str]:
    """Every fixed word the prompts and responses can contain, besides the lexicon's."""
    fixed = " ".join(p for ps in _PHRASES.values() for p in ps) + f" {PROMPT_START} {PROMPT_END}"
    return {w for w in fixed.split() if not w.startswith("{")} | set(lx.TOPICS)
