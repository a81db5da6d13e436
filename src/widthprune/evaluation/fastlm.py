"""lm-eval's Hugging Face model, greedy answers on a static cache, batches sized to memory.

:class:`FastLM` is lm-eval's ``HFLM`` with two changes, both of which leave the computed function
alone (the same prompts, tokens, truncation, stop rules and text post-processing as ``HFLM``):

- greedy ``generate_until`` requests run through :class:`~.greedy.GreedyDecoder` (a static KV
  cache; on a GPU each decode step replayed from a CUDA graph), as many prompts a batch as the
  memory holds, longest first, a batch ending as soon as every row has ended;
- log-likelihoods are computed from the positions that are scored alone: the model's body
  runs over each distinct input once (requests that share it, as MMLU's four one-token answers
  do, share the pass), its head and log-softmax only over the continuation's positions, not
  over every position of every row; batches are filled to a memory budget by their padded
  length, longest first, with one transfer to the host a batch instead of several a request;
- rolling log-likelihoods (perplexity) go through that path as one set of windows, batched by
  length, instead of ``HFLM``'s batches of as many full-context rows as fit.

A model whose head this module does not know (see :data:`HEADS`) keeps ``HFLM``'s path, its
log-likelihood batches still sized to the budget on a GPU.

Sampling requests, and models the static decoder does not reproduce (sliding-window
attention), go through ``HFLM``'s own path unchanged.
"""

from __future__ import annotations

import os

import torch
import torch.nn.functional as F
from lm_eval.models.huggingface import HFLM
from lm_eval.models.utils import (
    Collator,
    handle_stop_sequences,
    normalize_gen_kwargs,
    postprocess_generated_text,
)
from tqdm.auto import tqdm

from .greedy import WINDOW, GreedyDecoder, kv_bytes_per_token, supports_static_greedy

__all__ = ["FastLM", "gpu_budget", "is_greedy"]

GPU_BUDGET = 20 << 30  # bytes a batch may take on a GPU: a constant, so that the batches (and
# with them the last bits of the arithmetic) do not depend on what else the card holds; several
# evaluations sharing one card each take less: WIDTHPRUNE_GPU_BUDGET_GB (e.g. 12 for four on 80 GB)
MEMORY_SHARE = 0.5  # at most this share of the GPU memory free when a batch is planned
MAX_BATCH = 1024  # rows a batch at most, whatever the memory
# model types whose logits are the head's output of the body's last hidden state, with the
# soft-capping of Gemma's config where it sets one
HEADS = frozenset({"llama", "gemma", "gemma2", "gemma3", "gemma3_text", "mistral", "qwen2"})


def gpu_budget() -> int:
    """Bytes a batch may take on a GPU: ``WIDTHPRUNE_GPU_BUDGET_GB`` where set, else
    :data:`GPU_BUDGET`."""
    value = os.environ.get("WIDTHPRUNE_GPU_BUDGET_GB")
    if not value:
        return GPU_BUDGET
    try:
        gb = float(value)
    except ValueError:
        gb = -1.0
    if not 0 < gb < 10_000:
        raise ValueError(f"WIDTHPRUNE_GPU_BUDGET_GB must be a positive number of GB, got {value!r}")
    return int(gb * (1 << 30))


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
            return min(gpu_budget(), int(free * MEMORY_SHARE))
        return 2 << 30

    def _gen_batch(self, prompt_len: int, new_tokens: int) -> int:
        """Rows of one generation batch: its KV cache, activations and masks within budget."""
        model = self.model
        length = prompt_len + new_tokens
        size = next(model.parameters()).element_size()
        c = model.config
        activations = prompt_len * (12 * c.hidden_size + 3 * c.intermediate_size) * size
        # the prefill's attention scores, float32, over the cache columns it sees (its view)
        view = min(length, -(-prompt_len // WINDOW) * WINDOW)
        scores = 3 * 4 * c.num_attention_heads * prompt_len * view
        row = length * kv_bytes_per_token(model) + activations + scores + prompt_len * length
        fixed = self.batch_size if isinstance(self.batch_size, int) else MAX_BATCH
        return max(1, min(MAX_BATCH, fixed, self._budget() // row))

    # -- log-likelihoods ---------------------------------------------------------------------
    def _loglikelihood_tokens(self, requests, disable_tqdm: bool = False, override_bs=None):
        if self._lean():
            return self._lean_loglikelihood(requests, disable_tqdm)
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

    # -- log-likelihoods from the scored positions alone -------------------------------------
    def _lean(self) -> bool:
        model = self.model
        return (
            self.backend == "causal"
            and getattr(model.config, "model_type", None) in HEADS
            and hasattr(model, "model")
            and hasattr(model, "lm_head")
        )

    def _head(self, hidden: torch.Tensor) -> torch.Tensor:
        """The model's logits of ``hidden`` (its final norm already applied by the body)."""
        logits = self.model.lm_head(hidden)
        cap = getattr(self.model.config, "final_logit_softcapping", None)
        if cap is not None:
            logits = torch.tanh(logits / cap) * cap
        return logits

    def _token_bytes(self) -> int:
        """Bytes of activations one input token takes in the body's forward pass (a bound)."""
        c = self.model.config
        size = next(self.model.parameters()).element_size()
        return size * (16 * c.hidden_size + 4 * c.intermediate_size)

    def _row_bytes(self, length: int) -> int:
        """Bytes one row of ``length`` tokens takes in the body's forward pass: its activations
        and the attention scores of a layer (heads x length x length, as SDPA's math kernel
        holds them in float32 where no fused kernel applies, e.g. float32 with grouped keys)."""
        heads = self.model.config.num_attention_heads
        return length * self._token_bytes() + 3 * 4 * heads * length * length

    def _lean_loglikelihood(self, requests, disable_tqdm: bool) -> list[tuple[float, bool]]:
        """``HFLM._loglikelihood_tokens`` for a causal model: the same inputs (context and
        continuation, cut on the left to ``max_length + 1`` tokens, the last dropped), the same
        sums of the continuation's log-probabilities and the same greedy flags."""
        rows: dict[tuple[int, ...], int] = {}  # distinct inputs
        plan = []  # (row, first scored position, continuation) of each request
        for _, context, continuation in requests:
            if not context or not continuation:
                raise ValueError("a log-likelihood request needs a context and a continuation")
            inp = tuple((context + continuation)[-(self.max_length + 1) :][:-1])
            row = rows.setdefault(inp, len(rows))
            plan.append((row, len(inp) - len(continuation), continuation))
        inputs = list(rows)
        order = sorted(range(len(inputs)), key=lambda i: (-len(inputs[i]), inputs[i]))
        of_row: dict[int, list[int]] = {}
        for j, (row, _, _) in enumerate(plan):
            of_row.setdefault(row, []).append(j)
        budget = self._budget()
        per_scored = 3 * 4 * self.model.config.vocab_size  # float32 logits, log-softmax, slack
        results: list[tuple[float, bool] | None] = [None] * len(plan)
        # described as HFLM describes it, so that a log reads alike whichever engine wrote it
        desc = "Running loglikelihood requests"
        bar = tqdm(total=len(plan), disable=disable_tqdm, desc=desc)
        first = 0
        while first < len(order):
            width = len(inputs[order[first]])
            per_row = self._row_bytes(width)
            last, scored = first, 0
            while last < len(order) and last - first < MAX_BATCH:
                more = sum(len(plan[j][2]) for j in of_row[order[last]])
                rows_after = last - first + 1
                if last > first and rows_after * per_row + (scored + more) * per_scored > budget:
                    break
                scored += more
                last += 1
            batch = order[first:last]
            self._lean_batch(batch, inputs, plan, of_row, width, results)
            bar.update(sum(len(of_row[r]) for r in batch))
            first = last
        bar.close()
        for (request, _, _), answer in zip(requests, results, strict=True):
            if request is not None:
                self.cache_hook.add_partial("loglikelihood", request, answer)
        return results

    @torch.no_grad()
    def _lean_batch(self, batch, inputs, plan, of_row, width, results) -> None:
        device = self.device
        ids = torch.zeros(len(batch), width, dtype=torch.long)
        at, where, targets, owner, jobs = [], [], [], [], []
        for b, row in enumerate(batch):
            inp = inputs[row]
            ids[b, : len(inp)] = torch.tensor(inp, dtype=torch.long)
            for j in of_row[row]:
                _, start, continuation = plan[j]
                n = len(continuation)
                at.extend([b] * n)
                where.extend(range(start, start + n))
                targets.extend(continuation)
                owner.extend([len(jobs)] * n)
                jobs.append(j)
        hidden = self.model.model(input_ids=ids.to(device)).last_hidden_state
        at_t = torch.tensor(at, device=device)
        where_t = torch.tensor(where, device=device)
        target_t = torch.tensor(targets, device=device)
        owner_t = torch.tensor(owner, device=device)
        logits = self._head(hidden[at_t, where_t])
        del hidden
        logp = F.log_softmax(logits, dim=-1, dtype=self.softmax_dtype)
        chosen = logp.gather(1, target_t[:, None]).squeeze(1)
        missed = (logp.argmax(-1) != target_t).to(chosen.dtype)
        sums = torch.zeros(len(jobs), dtype=chosen.dtype, device=device).index_add_(
            0, owner_t, chosen
        )
        misses = torch.zeros(len(jobs), dtype=chosen.dtype, device=device).index_add_(
            0, owner_t, missed
        )
        for j, total, miss in zip(jobs, sums.tolist(), misses.tolist(), strict=True):
            results[j] = (float(total), miss == 0)

    def loglikelihood_rolling(self, requests, disable_tqdm: bool = False) -> list[float]:
        """Perplexity: every request's disjoint windows (as ``HFLM`` makes them) scored as
        one set through the lean path, summed per request."""
        if not self._lean() or self.world_size > 1:
            return super().loglikelihood_rolling(requests, disable_tqdm)
        from lm_eval import utils

        windows, owners = [], []
        for i, req in enumerate(requests):
            (text,) = req.args
            for window in utils.get_rolling_token_windows(
                token_list=self.tok_encode(text),
                prefix_token=self.prefix_token_id,
                max_seq_len=self.max_length,
                context_len=1,
            ):
                windows.append((None, *utils.make_disjoint_window(window)))
                owners.append(i)
        scores = self._lean_loglikelihood(windows, disable_tqdm)
        totals = [0.0] * len(requests)
        for i, (logp, _) in zip(owners, scores, strict=True):
            totals[i] += logp
        for req, total in zip(requests, totals, strict=True):
            self.cache_hook.add_partial("loglikelihood_rolling", (req.args[0],), total)
        return totals

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
