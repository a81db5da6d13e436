"""Sentences shared by two bodies of text: what a training text must not take from a test.

Sentences are compared normalised (lower case, words of letters and digits, punctuation and
spacing dropped), by their SHA-1; pieces shorter than :data:`MIN_SENTENCE_WORDS` words
("answer :", "yes") are common to any text and are left out.
"""

from __future__ import annotations

import hashlib
import re

__all__ = ["MIN_SENTENCE_WORDS", "overlapping_sentences", "sentence_digests"]

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|\n+")
_WORD = re.compile(r"[a-z0-9]+")
MIN_SENTENCE_WORDS = 4


def _normalised(sentence: str) -> str:
    return " ".join(_WORD.findall(sentence.lower()))


def sentence_digests(texts) -> dict[str, str]:
    """``{SHA-1 of a normalised sentence: the sentence}`` for every sentence of ``texts`` with
    at least :data:`MIN_SENTENCE_WORDS` words."""
    out = {}
    for text in texts:
        for sentence in _SENTENCE_END.split(text):
            norm = _normalised(sentence)
            if len(norm.split()) >= MIN_SENTENCE_WORDS:
                out.setdefault(hashlib.sha1(norm.encode()).hexdigest(), sentence.strip())
    return out


def overlapping_sentences(texts, items) -> list[str]:
    """The sentences of ``texts`` that also occur, normalised, in ``items``; empty when the two
    share none."""
    ours, theirs = sentence_digests(texts), sentence_digests(items)
    return sorted(ours[h] for h in ours.keys() & theirs.keys())
