"""lm-eval's Hugging Face model, greedy answers on a static cache, batches sized to memory.

:class:`FastLM` is lm-eval's ``HFLM`` with two changes, both of which leave the computed function
alone (the same prompts, tokens, truncation, stop rules and text post-processing as ``HFLM``):

- greedy ``generate_until`` requests run through :class:`~.greedy.GreedyDecoder` (a static KV
  cache; on a GPU each decode step replayed from a CUDA graph), as many prompts a batch as the
  memory holds, longest first, a batch ending as soon as every row has ended;
- on a GPU, log-likelihood batches are sized to the memory by their padded length (short ARC
  items hundreds a batch, five-shot MMLU items fewer) instead of one fixed size, and the batch
  of rolling log-likelihoods (perplexity) is computed from the budget instead of probed.

Sampling requests, and models the static decoder does not reproduce (sliding-window
attention), go through ``HFLM``'s own path unchanged.
"""

from __future__ import annotations

import torch
from lm_eval.models.huggingface import HFLM
from lm_eval.models.utils import (
    Collator,
    handle_stop_sequences,
    normalize_gen_kwargs,
    postprocess_generated_text,
)
from tqdm.auto import tqdm

from .greedy import GreedyDecoder, kv_bytes_per_token, supports_static_greedy

__all__ = ["FastLM", "is_greedy"]

GPU_BUDGET = 20 << 30  # bytes a batch may take on a GPU: a constant, so that the batches (and
# with them the last bits of the arithmetic) do not depend on what else the card holds
MEMORY_SHARE = 0.5  # at most this share of the GPU memory free when a batch is planned
MAX_BATCH = 1024  # rows a batch at most, whatever the memory


def is_greedy(kwargs: dict) -> bool:
    """Whether lm-eval's generation kwargs ask for greedy decoding of one sequence."""
    sampling = kwargs.get("do_sample")
    temperature = kwargs.get("temperature", 0.0)
    if sampling or (sampling is None and temperature not in (0, 0.0, None)):
        return False
    plain = {"until", "max_gen_toks", "do_sample", "temperature", "max_length"}
    return all(k in plain for k in kwargs)


class FastLM(HFLM):
    """``HFLM`` over an in-memory model, greedy generation and batch sizes as described above.

    Args:
        memory_bytes: the budget of one batch; None: :data:`GPU_BUDGET`, or less where
            :data:`MEMORY_SHARE` of the free GPU memory is less; 2 GiB on a CPU.
        check_every: decode steps between two looks for stop strings and ended rows.
        **kwargs: as for ``HFLM`` (``pretrained`` is the model object).
    """

    def __init__(self, *, memory_bytes: int | None = None, check_every: int = 32, **kwargs):
        super().__init__(**kwargs)
        self._memory_bytes = memory_bytes
        self._check_every = check_every
        self._decoder: GreedyDecoder | None = None
        self._ll_plan = (-1, 0)  # (first index, rows) of the log-likelihood batch being filled

    # -- memory ------------------------------------------------------------------------------
    def _budget(self) -> int:
        if self._memory_bytes is not None:
            return self._memory_bytes
        if self.device.type == "cuda":
            free, _ = torch.cuda.mem_get_info(self.device)
            return min(GPU_BUDGET, int(free * MEMORY_SHARE))
        return 2 << 30

    def _gen_batch(self, prompt_len: int, new_tokens: int) -> int:
        """Rows of one generation batch: its KV cache, activations and masks within budget."""
        model = self.model
        length = prompt_len + new_tokens
        size = next(model.parameters()).element_size()
        c = model.config
        activations = prompt_len * (12 * c.hidden_size + 3 * c.intermediate_size) * size
        row = length * kv_bytes_per_token(model) + activations + prompt_len * length
        fixed = self.batch_size if isinstance(self.batch_size, int) else MAX_BATCH
        return max(1, min(MAX_BATCH, fixed, self._budget() // row))

    # -- log-likelihoods ---------------------------------------------------------------------
    def _loglikelihood_tokens(self, requests, disable_tqdm: bool = False, override_bs=None):
        # "auto" on a GPU: HFLM asks _batch_scheduler for each batch's size
        if self.device.type == "cuda" and self.batch_size == "auto" and override_bs is None:
            self._ll_plan = (-1, 0)
            self._ll_budget = self._budget()
        return super()._loglikelihood_tokens(requests, disable_tqdm, override_bs)

    def _ll_rows(self, length: int, budget: int) -> int:
        """Rows of ``length`` tokens whose float32 logits, log-softmax and slack fit ``budget``."""
        per_row = 3 * length * self.model.config.vocab_size * 4
        return max(1, min(MAX_BATCH, budget // per_row))

    def _detect_batch_size(self, requests=None, pos: int = 0) -> int:
        """Rows that fit the budget at the longest sequence (``HFLM`` probes for it instead,
        with full-context batches that run out of memory and retry: tens of seconds a task)."""
        length = self.max_length
        if requests:
            context, continuation = requests[pos][1], requests[pos][2]
            length = min(len(context) + len(continuation), self.max_length)
        return self._ll_rows(length, self._budget())

    def _batch_scheduler(self, pos, n_reordered_requests):
        """Rows of the batch that starts at ``pos``: its (longest, first) item's logits fit."""
        start, rows = self._ll_plan
        if pos < start + rows:
            return rows
        _, context, continuation = n_reordered_requests[pos]
        length = min(len(context) + len(continuation) - 1, self.max_length)
        rows = self._ll_rows(length, self._ll_budget)
        self._ll_plan = (pos, rows)
        return rows

    # -- generation --------------------------------------------------------------------------
    def generate_until(self, requests, disable_tqdm: bool = False) -> list[str]:
        greedy = [i for i, r in enumerate(requests) if is_greedy(r.args[1])]
        if not greedy or self.think_end_token is not None or not supports_static_greedy(self.model):
            return super().generate_until(requests, disable_tqdm)
        out: list[str | None] = [None] * len(requests)
        texts = self._greedy([requests[i] for i in greedy], disable_tqdm)
        for i, text in zip(greedy, texts, strict=True):
            out[i] = text
        others = sorted(set(range(len(requests))) - set(greedy))
        if others:
            rest = super().generate_until([requests[i] for i in others], disable_tqdm)
            for i, text in zip(others, rest, strict=True):
                out[i] = text
        return out

    def _greedy(self, requests, disable_tqdm: bool) -> list[str]:
        eos = self.tok_decode(self.eot_token_id, skip_special_tokens=False)
        eos_ids = _eos_ids(self.model, self.eot_token_id)
        order = Collator(
            [r.args for r in requests],
            sort_fn=lambda req: (-len(self.tok_encode(req[0])), req[0]),
            group_by="gen_kwargs",
            group_fn=lambda req: req[1],
        )
        res = []
        bar = tqdm(total=len(requests), disable=disable_tqdm, desc="greedy generation")
        for group in order.get_batched(n=0):  # one list per set of generation kwargs
            kwargs = normalize_gen_kwargs(dict(group[0][1]), self.max_gen_toks)
            until = handle_stop_sequences(kwargs.pop("until", None), eos=eos)
            new_tokens = kwargs.pop("max_gen_toks")
            max_ctx = self.max_length - new_tokens
            longest = min(len(self.tok_encode(group[0][0])), max_ctx)
            rows = self._gen_batch(longest, new_tokens)
            for first in range(0, len(group), rows):
                chunk = group[first : first + rows]
                contexts = [context for context, _ in chunk]
                res.extend(self._generate_batch(contexts, until, new_tokens, max_ctx, eos_ids))
                for context, gen_kwargs in chunk:
                    self.cache_hook.add_partial("generate_until", (context, gen_kwargs), res[-1])
                bar.update(len(chunk))
        bar.close()
        self._decoder = None
        return order.get_original(res)

    def _generate_batch(self, contexts, until, new_tokens, max_ctx, eos_ids) -> list[str]:
        """Greedy texts of one batch, encoded, cut and post-processed as ``HFLM`` does."""
        ids, mask = self.tok_batch_encode(
            list(contexts), left_truncate_len=max_ctx, truncation=self.truncation
        )
        n, length = ids.shape
        decoder = self._decoder  # the group's first batch is its longest and largest
        if (
            decoder is None
            or decoder.new_tokens != new_tokens
            or decoder.prompt_len < length
            or decoder.batch < n
        ):
            self._decoder = decoder = None  # frees the old cache before the new one is made
            decoder = GreedyDecoder(
                self.model, n, length, new_tokens, eos_ids=eos_ids, check_every=self._check_every
            )
            self._decoder = decoder
        # left-pad to the decoder's shape; rows beyond the batch repeat its first row
        pad_id = self.tokenizer.pad_token_id or 0
        ids = torch.nn.functional.pad(ids, (decoder.prompt_len - length, 0), value=pad_id)
        mask = torch.nn.functional.pad(mask, (decoder.prompt_len - length, 0), value=0)
        extra = decoder.batch - n
        ids = torch.cat([ids, ids[:1].expand(extra, -1)])
        mask = torch.cat([mask, mask[:1].expand(extra, -1)])
        eos = self.tok_decode(self.eot_token_id, skip_special_tokens=False)
        terms = [t for t in until if t and t != eos]  # the EOS string ends a row as its id
        stopped = self._stop_check(terms, eos_ids) if terms else None
        tokens, done = decoder.generate(ids, mask, stopped)
        out = []
        for row in tokens[:n, :done].tolist():
            text = self.tok_decode(_cut_at(row, eos_ids))
            out.append(postprocess_generated_text(text, until, None))
        return out

    def _stop_check(self, terms, eos_ids):
        """Which rows' text holds a stop string (decoded as lm-eval's stopping criterion does)."""

        def stopped(tokens: torch.Tensor, n: int) -> torch.Tensor:
            flags = []
            for row in tokens.tolist():
                text = self.tokenizer.decode(_cut_at(row, eos_ids))
                flags.append(any(t in text for t in terms))
            return torch.tensor(flags, dtype=torch.bool)

        return stopped


def _eos_ids(model, eot: int) -> tuple[int, ...]:
    """Token ids that end a sequence in ``model.generate``: the generation config's and EOT."""
    ids = getattr(model.generation_config, "eos_token_id", None)
    ids = [] if ids is None else [ids] if isinstance(ids, int) else list(ids)
    return tuple(sorted({*ids, eot}))


def _cut_at(row: list[int], eos_ids: tuple[int, ...]) -> list[int]:
    """The tokens before the first end-of-sequence id (``generate`` pads after it)."""
    for i, token in enumerate(row):
        if token in eos_ids:
            return row[:i]
    return row
