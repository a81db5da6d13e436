"""A word-level tokenizer (the toy's) carried into a GGUF file for llama.cpp.

llama.cpp's converter writes the vocabulary of a Llama checkpoint from a SentencePiece model
(``tokenizer.model``) or a BPE ``tokenizer.json`` whose pre-tokenizer it recognises; a
word-level ``tokenizer.json``, one token per whole word as the toy has, is neither. llama.cpp
itself does have a vocabulary that behaves like one: WordPiece (``tokenizer.ggml.model``
``"bert"``) splits text at whitespace and at every punctuation character, then looks each word
up whole, as ``"\u2581" + word``, and writes the unknown token for a word it lacks. With one
piece per word, that is the word-level tokenizer.

So a word-level checkpoint is exported in two steps: the converter reads a stand-in
SentencePiece file with the same number of pieces (:func:`write_sentencepiece_stand_in`, so that
it writes every tensor and setting as usual), then :func:`write_wordpiece_vocab` copies the
converter's file with the tokenizer's keys replaced by the word-level vocabulary, ids unchanged.
"""

from __future__ import annotations

import json
import os
import struct
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "WORD_PREFIX",
    "WordVocab",
    "word_vocab",
    "write_sentencepiece_stand_in",
    "write_wordpiece_vocab",
]

WORD_PREFIX = "\u2581"  # llama.cpp's WordPiece looks a word up with this mark in front
# token types of GGUF (gguf.TokenType) and of SentencePiece (sentencepiece_model.proto)
_NORMAL, _UNKNOWN, _CONTROL = 1, 2, 3


@dataclass(frozen=True)
class WordVocab:
    """A word-level vocabulary: its tokens by id and its special tokens."""

    tokens: tuple[str, ...]  # by id, as the tokenizer writes them
    special: frozenset[int]  # ids of special tokens (written as they are, not as words)
    unk: int
    bos: int | None
    eos: int | None
    pad: int | None

    def pieces(self) -> list[str]:
        """The GGUF tokens: each word with :data:`WORD_PREFIX`, special tokens as they are."""
        return [t if i in self.special else WORD_PREFIX + t for i, t in enumerate(self.tokens)]

    def types(self) -> list[int]:
        """GGUF token types: unknown, control (the other special tokens) or normal."""
        return [
            _UNKNOWN if i == self.unk else _CONTROL if i in self.special else _NORMAL
            for i in range(len(self.tokens))
        ]


def _special_id(config: dict, token, name: str, vocab: dict[str, int]) -> int | None:
    """The id of a special token: from tokenizer_config.json's token, else config.json's id."""
    if isinstance(token, dict):
        token = token.get("content")
    if isinstance(token, str) and token in vocab:
        return vocab[token]
    value = config.get(f"{name}_id")
    return value if isinstance(value, int) and value >= 0 else None


def word_vocab(folder: str | os.PathLike) -> WordVocab | None:
    """The word-level vocabulary of a checkpoint folder, or ``None`` for another tokenizer.

    Raises:
        ValueError: a word-level tokenizer whose ids have gaps, or that has no unknown token
            (llama.cpp writes the unknown token for every word it does not know).
    """
    path = Path(folder) / "tokenizer.json"
    if not path.is_file():
        return None
    spec = json.loads(path.read_text())
    model = spec.get("model", {})
    if model.get("type") != "WordLevel":
        return None
    vocab: dict[str, int] = dict(model["vocab"])
    for added in spec.get("added_tokens", []):
        vocab.setdefault(added["content"], added["id"])
    by_id = sorted(vocab.items(), key=lambda kv: kv[1])
    if [i for _, i in by_id] != list(range(len(by_id))):
        raise ValueError(f"the word-level vocabulary of {path} has gaps in its ids")
    unk = vocab.get(model.get("unk_token") or "")
    if unk is None:
        raise ValueError(
            f"the word-level tokenizer of {path} has no unknown token; llama.cpp needs one "
            "for the words it does not know"
        )
    special = {a["id"] for a in spec.get("added_tokens", []) if a.get("special")} | {unk}
    tconfig_path = Path(folder) / "tokenizer_config.json"
    tconfig = json.loads(tconfig_path.read_text()) if tconfig_path.is_file() else {}
    mconfig_path = Path(folder) / "config.json"
    mconfig = json.loads(mconfig_path.read_text()) if mconfig_path.is_file() else {}
    ids = {
        name: _special_id(mconfig, tconfig.get(f"{name}_token"), name, vocab)
        for name in ("bos", "eos", "pad")
    }
    return WordVocab(
        tokens=tuple(t for t, _ in by_id),
        special=frozenset(special),
        unk=unk,
        bos=ids["bos"],
        eos=ids["eos"],
        pad=ids["pad"],
    )


def _varint(value: int) -> bytes:
    value &= (1 << 64) - 1  # negative int32 values take ten bytes, as protobuf writes them
    out = bytearray()
    while True:
        low, value = value & 0x7F, value >> 7
        out.append(low | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _field(number: int, wire: int, payload: bytes) -> bytes:
    return _varint(number << 3 | wire) + payload


def _message(number: int, body: bytes) -> bytes:
    return _field(number, 2, _varint(len(body)) + body)


def write_sentencepiece_stand_in(vocab: WordVocab, path: str | os.PathLike) -> None:
    """A SentencePiece model file with the vocabulary's pieces, for llama.cpp's converter.

    It is written by hand in SentencePiece's protobuf format (``ModelProto``: pieces with
    score and type, a unigram ``TrainerSpec`` naming the unknown, bos, eos and pad ids, and an
    identity ``NormalizerSpec``), so no protobuf library is needed. The converter reads its
    pieces; :func:`write_wordpiece_vocab` then replaces what the converter wrote from it.
    """
    body = bytearray()
    for piece, kind in zip(vocab.pieces(), vocab.types(), strict=True):
        text = piece.encode("utf-8")
        entry = _field(1, 2, _varint(len(text)) + text)
        entry += _field(2, 5, struct.pack("<f", 0.0)) + _field(3, 0, _varint(kind))
        body += _message(1, entry)
    trainer = _field(3, 0, _varint(1)) + _field(4, 0, _varint(len(vocab.tokens)))  # unigram
    for number, value in ((40, vocab.unk), (41, vocab.bos), (42, vocab.eos), (43, vocab.pad)):
        trainer += _field(number, 0, _varint(-1 if value is None else value))
    body += _message(2, trainer)
    name = b"identity"
    body += _message(3, _field(1, 2, _varint(len(name)) + name))
    Path(path).write_bytes(bytes(body))


def write_wordpiece_vocab(source: str | os.PathLike, out: str | os.PathLike, vocab: WordVocab):
    """Copy a GGUF file with its tokenizer replaced by ``vocab`` as llama.cpp's WordPiece.

    Every tensor and every key outside ``tokenizer.ggml.`` (a chat template too) is copied
    unchanged. The tokenizer keys written are the model ``"bert"`` without lowercasing or
    accent stripping, the pieces and their types, the unknown, bos, eos, padding, separator
    and mask ids (each special id names a special token, so that none of llama.cpp's WordPiece
    defaults, ids 100 to 103, points at a word), and no token added before or after a text.

    Raises:
        ValueError: the file's vocabulary is not as long as ``vocab``.
    """
    import gguf

    reader = gguf.GGUFReader(source)
    n_tokens = len(reader.fields["tokenizer.ggml.tokens"].data)
    if n_tokens != len(vocab.tokens):
        raise ValueError(
            f"{source} has {n_tokens} tokens, the word-level vocabulary {len(vocab.tokens)}"
        )
    arch = reader.fields["general.architecture"].contents()
    writer = gguf.GGUFWriter(out, arch)
    for name, field in reader.fields.items():
        if name.startswith(("GGUF.", "tokenizer.ggml.")) or name == "general.architecture":
            continue  # the file's own layout, and the vocabulary written below
        kind = field.types[0]
        sub = field.types[-1] if kind == gguf.GGUFValueType.ARRAY else None
        writer.add_key_value(name, field.contents(), kind, sub)
    writer.add_tokenizer_model("bert")
    writer.add_tokenizer_pre("default")
    writer.add_token_list(vocab.pieces())
    writer.add_token_scores([0.0] * len(vocab.tokens))
    writer.add_token_types(vocab.types())
    start = vocab.bos if vocab.bos is not None else vocab.unk
    end = vocab.eos if vocab.eos is not None else vocab.unk
    writer.add_unk_token_id(vocab.unk)
    writer.add_bos_token_id(start)
    writer.add_eos_token_id(end)
    writer.add_sep_token_id(end)
    writer.add_mask_token_id(vocab.unk)
    writer.add_pad_token_id(vocab.pad if vocab.pad is not None else vocab.unk)
    # llama.cpp's WordPiece lowercases and strips accents unless told otherwise; words do not
    writer.add_bool("tokenizer.ggml.normalizer.lowercase", False)
    writer.add_bool("tokenizer.ggml.normalizer.strip_accents", False)
    writer.add_add_bos_token(False)
    writer.add_add_eos_token(False)
    writer.add_add_sep_token(False)
    for tensor in reader.tensors:
        writer.add_tensor(
            tensor.name, tensor.data, raw_shape=tensor.data.shape, raw_dtype=tensor.tensor_type
        )
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
