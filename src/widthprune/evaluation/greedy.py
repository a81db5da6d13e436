"""Batched greedy generation over a static KV cache, the decode step replayed from a CUDA graph.

lm-eval's Hugging Face path calls ``model.generate`` once per batch of 64: every decode step
goes through Python, the dynamic cache grows by concatenation, and stop strings are decoded on
the host after each token. For a small model that overhead, not arithmetic, is the time.
:class:`GreedyDecoder` computes the same greedy continuation (the argmax of the same logits, left
padding masked, positions counted from each row's first real token as ``generate`` counts
them) with every decode step on device tensors only, so that on a GPU one captured step is
replayed for the whole answer; rows that end (an end-of-sequence token, or a stop string the
caller checks every ``check_every`` steps) stop the batch once all have ended.

Only models whose every layer attends to the whole context are handled (no sliding window):
:func:`supports_static_greedy` says whether a model is one.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

__all__ = ["GreedyDecoder", "kv_bytes_per_token", "supports_static_greedy"]


def supports_static_greedy(model) -> bool:
    """Whether :class:`GreedyDecoder` reproduces ``model.generate`` for ``model``.

    It needs a decoder whose layers all attend to the full context (a Llama; not Gemma-3's
    sliding-window layers) through SDPA or eager attention.
    """
    config = model.config
    kinds = set(getattr(config, "layer_types", None) or ["full_attention"])
    window = getattr(config, "sliding_window", None)
    attention = getattr(config, "_attn_implementation", "sdpa")
    return kinds == {"full_attention"} and not window and attention in ("sdpa", "eager")


def kv_bytes_per_token(model) -> int:
    """Bytes of key and value cache one token takes in every layer of ``model``."""
    c = model.config
    head_dim = getattr(c, "head_dim", None) or c.hidden_size // c.num_attention_heads
    kv_heads = getattr(c, "num_key_value_heads", None) or c.num_attention_heads
    itemsize = next(model.parameters()).element_size()
    return 2 * c.num_hidden_layers * kv_heads * head_dim * itemsize


class GreedyDecoder:
    """Greedy continuation of left-padded prompts of one shape, reusable for many batches.

    Args:
        model: a causal LM in eval mode (see :func:`supports_static_greedy`).
        batch: rows per call.
        prompt_len: prompt columns per call (left padding included).
        new_tokens: tokens generated at most per row.
        eos_ids: token ids that end a row.
        graph: replay the decode step from a CUDA graph (CUDA only; default: on CUDA).
        check_every: decode steps between two looks at whether every row has ended.

    Raises:
        ValueError: a model this decoder does not reproduce, or ``graph=True`` off CUDA.
    """

    @torch.no_grad()
    def __init__(
        self,
        model,
        batch: int,
        prompt_len: int,
        new_tokens: int,
        *,
        eos_ids: tuple[int, ...],
        graph: bool | None = None,
        check_every: int = 32,
    ):
        from transformers import StaticCache

        if not supports_static_greedy(model):
            raise ValueError(
                f"{type(model).__name__} has sliding-window or non-SDPA attention, which the "
                "static greedy decoder does not reproduce; use lm-eval's own generation."
            )
        if batch < 1 or prompt_len < 1 or new_tokens < 1:
            raise ValueError(f"need batch, prompt_len, new_tokens >= 1; got {batch, prompt_len}")
        self.model, self.batch, self.prompt_len = model, batch, prompt_len
        self.new_tokens, self.check_every = new_tokens, max(1, check_every)
        self.device = next(model.parameters()).device
        graph = self.device.type == "cuda" if graph is None else graph
        if graph and self.device.type != "cuda":
            raise ValueError(f"CUDA graphs need a CUDA device; the model is on {self.device}.")
        length = prompt_len + new_tokens
        self.cache = StaticCache(config=model.config, max_cache_len=length)
        kw = {"dtype": torch.long, "device": self.device}
        self.tokens = torch.zeros(batch, new_tokens, **kw)  # (batch, new_tokens) the output
        self._tok = torch.zeros(batch, 1, **kw)  # the token fed to the next step
        self._pos = torch.zeros(batch, 1, **kw)  # its position id (real tokens before it)
        self._slot = torch.zeros(1, **kw)  # its column in self.tokens
        self._key = torch.zeros(1, **kw)  # its index in the cache
        self._keys = torch.arange(length, **kw)  # (length,) cache indices
        self._valid = torch.zeros(batch, length, dtype=torch.bool, device=self.device)
        self._ended = torch.zeros(batch, dtype=torch.bool, device=self.device)
        self._eos = torch.tensor(sorted(set(eos_ids)) or [-1], **kw)
        self._eager = getattr(model.config, "_attn_implementation", "sdpa") == "eager"
        self.graph = None
        if graph:
            self._prefill(torch.zeros(batch, prompt_len, **kw), torch.ones(batch, prompt_len, **kw))
            side = torch.cuda.Stream(self.device)
            side.wait_stream(torch.cuda.current_stream(self.device))
            with torch.cuda.stream(side):  # warm-up off the capture stream
                for _ in range(2):
                    self._step()
            torch.cuda.current_stream(self.device).wait_stream(side)
            self.graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(self.graph):
                self._step()

    def _mask(self, allowed: Tensor) -> Tensor:
        """A (batch, 1, q, keys) bool mask as SDPA takes it, or the additive one eager takes."""
        if not self._eager:
            return allowed
        dtype = next(self.model.parameters()).dtype
        zero = torch.zeros((), dtype=dtype, device=self.device)
        return torch.where(allowed, zero, torch.finfo(dtype).min)

    def _forward(self, ids: Tensor, pos: Tensor, allowed: Tensor) -> Tensor:
        """Greedy next token (batch,) after ``ids`` (batch, n) at ``pos``, keys ``allowed``."""
        logits = self.model(
            input_ids=ids,
            position_ids=pos,
            attention_mask=self._mask(allowed),
            past_key_values=self.cache,
            use_cache=True,
            logits_to_keep=1,
        ).logits
        return logits[:, -1].argmax(-1)

    def _prefill(self, input_ids: Tensor, attention_mask: Tensor) -> None:
        self.cache.reset()
        real = attention_mask.bool()
        n = self.prompt_len
        self._valid.fill_(True)  # generated slots are real; prompt padding is not
        self._valid[:, :n] = real
        keys = self._keys[None, :]  # (1, length)
        queries = self._keys[:n, None]  # (n, 1)
        causal = (keys <= queries) & (keys < n)  # (n, length)
        own = keys == queries  # a padding query sees itself, so that no row is empty (NaN)
        allowed = (causal[None] & self._valid[:, None, :]) | own[None]
        # positions as generate() counts them: real tokens before, padding at 1
        pos = (real.long().cumsum(-1) - 1).masked_fill(~real, 1)
        first = self._forward(input_ids, pos, allowed[:, None])
        self._tok.copy_(first[:, None])
        self.tokens.zero_()
        self.tokens[:, 0] = first
        self._pos.copy_(real.sum(-1, keepdim=True))
        self._key.fill_(n)
        self._slot.fill_(1)
        self._ended.copy_(self._is_eos(first))

    def _is_eos(self, tokens: Tensor) -> Tensor:
        return (tokens[:, None] == self._eos[None, :]).any(-1)

    def _step(self) -> None:
        """One greedy step on device tensors only (what the graph replays)."""
        allowed = self._valid & (self._keys[None, :] <= self._key)  # (batch, length)
        nxt = self._forward(self._tok, self._pos, allowed[:, None, None, :])
        self._tok.copy_(nxt[:, None])
        self.tokens.index_copy_(1, self._slot, nxt[:, None])
        self._ended |= self._is_eos(nxt)
        self._pos.add_(1)
        self._key.add_(1)
        self._slot.add_(1)

    @torch.no_grad()
    def generate(
        self,
        input_ids: Tensor,
        attention_mask: Tensor,
        stopped: Callable[[Tensor, int], Tensor] | None = None,
    ) -> tuple[Tensor, int]:
        """Greedy tokens after each left-padded prompt.

        Args:
            input_ids: (batch, prompt_len) token ids, padding on the left.
            attention_mask: (batch, prompt_len), 0 at padding.
            stopped: ``f(tokens, n) -> (batch,) bool``, called on the host every
                ``check_every`` steps with the first ``n`` generated columns (on the CPU): which
                rows have met a stop string. Rows that ended by an end-of-sequence id need not
                be reported.

        Returns:
            ``(tokens, n)``: (batch, new_tokens) ids on the model's device, of which the first
            ``n`` columns were generated (every row has ended by then, or ``n = new_tokens``).
        """
        if tuple(input_ids.shape) != (self.batch, self.prompt_len):
            raise ValueError(
                f"input_ids has shape {tuple(input_ids.shape)}; this decoder was built for "
                f"({self.batch}, {self.prompt_len})."
            )
        self._prefill(input_ids.to(self.device), attention_mask.to(self.device))
        done = 1
        while done < self.new_tokens:
            run = min(self.check_every, self.new_tokens - done)
            for _ in range(run):
                if self.graph is not None:
                    self.graph.replay()
                else:
                    self._step()
            done += run
            if done < self.new_tokens:
                if stopped is not None:
                    self._ended |= stopped(self.tokens[:, :done].cpu(), done).to(self.device)
                if bool(self._ended.all()):
                    break
        return self.tokens, done
