"""The toy tokenizer: one token per word of the world's closed vocabulary.

Word-level tokens make instruction checking and word perplexity exact: a response's words are
its tokens, and the perplexity per word is the perplexity per token. Canonical world text
(tokens separated by single spaces) round-trips through encode and decode unchanged.
"""

from __future__ import annotations

from tokenizers import Tokenizer, decoders, models, pre_tokenizers

from .corpus import EOS, PAD, UNK

__all__ = ["build_tokenizer"]


def build_tokenizer(vocab: list[str]):
    """A ``PreTrainedTokenizerFast`` over ``vocab`` (ids in list order).

    Punctuation is split from words, so ``"Dolpan, where?"`` reads as four tokens. No token is
    added around a text: end-of-text (``</s>``) separates documents in training and is the
    prefix of rolling perplexity. Unknown words map to ``<unk>``.
    """
    from transformers import PreTrainedTokenizerFast

    missing = {PAD, EOS, UNK} - set(vocab)
    if missing:
        raise ValueError(f"vocabulary lacks the special tokens {sorted(missing)}")
    if len(set(vocab)) != len(vocab):
        raise ValueError("vocabulary has repeated words")
    core = Tokenizer(models.WordLevel({w: i for i, w in enumerate(vocab)}, unk_token=UNK))
    core.pre_tokenizer = pre_tokenizers.Whitespace()
    core.decoder = decoders.WordPiece(prefix="##", cleanup=False)  # joins words by spaces
    return PreTrainedTokenizerFast(
        tokenizer_object=core,
        eos_token=EOS,
        pad_token=PAD,
        unk_token=UNK,
        model_max_length=1 << 30,
        clean_up_tokenization_spaces=False,
    )
