"""Batched greedy generation over a static KV cache, the decode step replayed from CUDA graphs.

lm-eval's Hugging Face path calls ``model.generate`` once per batch of 64: every decode step
goes through Python, the dynamic cache grows by concatenation, and stop strings are decoded on
the host after each token. For a small model that overhead, not arithmetic, is the time.
:class:`GreedyDecoder` computes the same greedy continuation (the argmax of the same logits, left
padding masked, positions counted from each row's first real token as ``generate`` counts
them) with every decode step on device tensors only, so that on a GPU one captured step is
replayed for the whole answer. Two more things keep a step's work to what it needs:

- **the cache read grows with the answer**: a step attends to the cache only up to the next
  multiple of ``window`` past its position (the columns beyond it are masked out anyway), not
  to the whole ``prompt_len + new_tokens`` it was sized for; one graph per such view;
- **ended rows leave the batch**: every ``check_every`` steps the rows that have ended (an
  end-of-sequence token, or a stop string the caller finds) are counted, and once at most half
  the rows are still running, the running ones are gathered into a batch half the size (or
  smaller), their cache with them. A batch whose answers mostly end early no longer pays for
  its longest answer at full width.

Neither changes the function computed: the masked columns carried weight zero, and each row's
arithmetic is its own. Only models whose every layer attends to the whole context are handled
(no sliding window): :func:`supports_static_greedy` says whether a model is one.
"""

from __future__ import annotations

import copy
from collections.abc import Callable

import torch
from torch import Tensor

__all__ = ["GreedyDecoder", "kv_bytes_per_token", "supports_static_greedy"]

WINDOW = 256  # cache columns a view grows by
MIN_ROWS = 8  # a batch is not narrowed below this many rows


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


def _layer_class():
    from transformers.cache_utils import StaticLayer

    class ViewLayer(StaticLayer):
        """A static cache layer that hands attention only its first ``view.columns`` columns."""

        def __init__(self, max_cache_len: int, view: _View):
            super().__init__(max_cache_len=max_cache_len)
            self.view = view

        def update(self, key_states, value_states, *args, **kwargs):
            keys, values = super().update(key_states, value_states, *args, **kwargs)
            n = self.view.columns
            return keys[:, :, :n], values[:, :, :n]

        def get_mask_sizes(self, *args, **kwargs):
            return self.view.columns, 0

    return ViewLayer


class _View:
    """The cache columns the next forward pass attends to (a host integer, fixed per graph)."""

    columns: int = 0


class GreedyDecoder:
    """Greedy continuation of left-padded prompts of one shape, reusable for many batches.

    Args:
        model: a causal LM in eval mode (see :func:`supports_static_greedy`).
        batch: rows per call.
        prompt_len: prompt columns per call (left padding included).
        new_tokens: tokens generated at most per row.
        eos_ids: token ids that end a row.
        graph: replay the decode step from CUDA graphs (CUDA only; default: on CUDA).
        check_every: decode steps between two looks at which rows have ended.
        window: cache columns a step's view grows by (see the module's notes).
        min_rows: the batch is narrowed to its running rows down to this many, not below.

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
        window: int = WINDOW,
        min_rows: int = MIN_ROWS,
    ):
        if not supports_static_greedy(model):
            raise ValueError(
                f"{type(model).__name__} has sliding-window or non-SDPA attention, which the "
                "static greedy decoder does not reproduce; use lm-eval's own generation."
            )
        if batch < 1 or prompt_len < 1 or new_tokens < 1 or window < 1:
            raise ValueError(
                f"need batch, prompt_len, new_tokens, window >= 1; got "
                f"{batch, prompt_len, new_tokens, window}"
            )
        self.model, self.batch, self.prompt_len = model, batch, prompt_len
        self.new_tokens, self.check_every = new_tokens, max(1, check_every)
        self.window, self.min_rows = window, max(1, min_rows)
        self.device = next(model.parameters()).device
        graph = self.device.type == "cuda" if graph is None else graph
        if graph and self.device.type != "cuda":
            raise ValueError(f"CUDA graphs need a CUDA device; the model is on {self.device}.")
        self.use_graph = graph
        self.length = prompt_len + new_tokens
        self._eager = getattr(model.config, "_attn_implementation", "sdpa") == "eager"
        kw = {"dtype": torch.long, "device": self.device}
        self._slot = torch.zeros(1, **kw)  # the next token's column in the output
        self._key = torch.zeros(1, **kw)  # its column in the cache
        self._keys = torch.arange(self.length, **kw)  # (length,) cache columns
        self._eos = torch.tensor(sorted(set(eos_ids)) or [-1], **kw)
        self._view = _View()
        self._pool = torch.cuda.graph_pool_handle() if graph else None
        self._full = self._new_rows(batch)  # the full batch's state, kept between calls
        self._graphs: dict[tuple[int, int], torch.cuda.CUDAGraph] = {}
        self.narrowed: list[int] = []  # rows of each narrowing of the last call (a record)

    # -- state ---------------------------------------------------------------------------------
    def _new_rows(self, rows: int) -> dict:
        from transformers import Cache

        kw = {"dtype": torch.long, "device": self.device}
        layer = _layer_class()
        layers = [
            layer(self.length, self._view) for _ in range(self.model.config.num_hidden_layers)
        ]
        return {
            "rows": rows,
            "cache": Cache(layers=layers),
            "tokens": torch.zeros(rows, self.new_tokens, **kw),  # the generated ids
            "tok": torch.zeros(rows, 1, **kw),  # the token fed to the next step
            "pos": torch.zeros(rows, 1, **kw),  # its position id (real tokens before it)
            "valid": torch.ones(rows, self.length, dtype=torch.bool, device=self.device),
            "ended": torch.zeros(rows, dtype=torch.bool, device=self.device),
        }

    def _use(self, state: dict) -> None:
        self._s = state
        self.cache, self.tokens = state["cache"], state["tokens"]
        self._tok, self._pos = state["tok"], state["pos"]
        self._valid, self._ended = state["valid"], state["ended"]

    def _narrow(self, keep: Tensor) -> dict:
        """A smaller state holding the rows ``keep`` (indices into the current rows)."""
        s = self._s
        rows = len(keep)
        out = {"rows": rows}
        for name in ("tokens", "tok", "pos", "valid", "ended"):
            out[name] = s[name].index_select(0, keep)
        layers = []
        for old in s["cache"].layers:
            new = copy.copy(old)
            new.keys = old.keys.index_select(0, keep)
            new.values = old.values.index_select(0, keep)
            new.cumulative_length = old.cumulative_length.clone()
            new.batch_size = rows
            layers.append(new)
        from transformers import Cache

        out["cache"] = Cache(layers=layers)
        return out

    def _columns(self, key: int) -> int:
        """The view that a step writing cache column ``key`` attends to."""
        return min(self.length, -(-(key + 1) // self.window) * self.window)

    # -- the model ---------------------------------------------------------------------------
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
        for layer in self.cache.layers:
            if layer.is_initialized:
                layer.cumulative_length.zero_()
        real = attention_mask.bool()
        n = self.prompt_len
        cols = self._view.columns = self._columns(n - 1)
        self._valid.fill_(True)  # generated slots are real; prompt padding is not
        self._valid[:, :n] = real
        keys = self._keys[None, :cols]  # (1, cols)
        queries = self._keys[:n, None]  # (n, 1)
        causal = (keys <= queries) & (keys < n)  # (n, cols)
        own = keys == queries  # a padding query sees itself, so that no row is empty (NaN)
        allowed = (causal[None] & self._valid[:, None, :cols]) | own[None]
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
        """One greedy step on device tensors only (what a graph replays)."""
        cols = self._view.columns
        allowed = self._valid[:, :cols] & (self._keys[None, :cols] <= self._key)
        nxt = self._forward(self._tok, self._pos, allowed[:, None, None, :])
        self._tok.copy_(nxt[:, None])
        self.tokens.index_copy_(1, self._slot, nxt[:, None])
        self._ended |= self._is_eos(nxt)
        self._pos.add_(1)
        self._key.add_(1)
        self._slot.add_(1)

    def _graph(self, cols: int) -> torch.cuda.CUDAGraph:
        """The captured step of the current rows at view ``cols``, captured on first use."""
        key = (self._s["rows"], cols)
        if key not in self._graphs:
            counters = [self._tok, self._pos, self._key, self._slot, self._ended]
            counters += [layer.cumulative_length for layer in self.cache.layers]
            saved = [t.clone() for t in counters]
            side = torch.cuda.Stream(self.device)
            side.wait_stream(torch.cuda.current_stream(self.device))
            with torch.cuda.stream(side):  # a warm-up off the capture stream, then undone: it
                self._step()  # writes the cache column and output slot the real step rewrites
            torch.cuda.current_stream(self.device).wait_stream(side)
            for t, old in zip(counters, saved, strict=True):
                t.copy_(old)
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph, pool=self._pool):
                self._step()
            self._graphs[key] = graph
        return self._graphs[key]

    # -- generation ----------------------------------------------------------------------------
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
            stopped: ``f(tokens, n) -> (rows,) bool``, called on the host every
                ``check_every`` steps with the first ``n`` generated columns of the rows still
                in the batch (on the CPU): which of them have met a stop string. Rows that
                ended by an end-of-sequence id need not be reported.

        Returns:
            ``(tokens, n)``: (batch, new_tokens) ids on the model's device, of which the first
            ``n`` columns were generated (every row has ended by then, or ``n = new_tokens``);
            a row's columns after its end are not defined.
        """
        if tuple(input_ids.shape) != (self.batch, self.prompt_len):
            raise ValueError(
                f"input_ids has shape {tuple(input_ids.shape)}; this decoder was built for "
                f"({self.batch}, {self.prompt_len})."
            )
        # graphs of narrowed batches hold tensors of the last call: drop them
        self._graphs = {k: g for k, g in self._graphs.items() if k[0] == self.batch}
        self._use(self._full)
        self.narrowed = []
        self._prefill(input_ids.to(self.device), attention_mask.to(self.device))
        out = self.tokens  # the full batch's output; narrowed rows are copied back into it
        origin = torch.arange(self.batch, device=self.device)  # each current row's origin
        key = self.prompt_len  # host copy of the cache column the next step writes
        done = 1
        while done < self.new_tokens:
            run = min(self.check_every, self.new_tokens - done)
            for _ in range(run):
                cols = self._view.columns = self._columns(key)
                if self.use_graph:
                    self._graph(cols).replay()
                else:
                    self._step()
                key += 1
            done += run
            if done >= self.new_tokens:
                break
            if stopped is not None:
                self._ended |= stopped(self.tokens[:, :done].cpu(), done).to(self.device)
            running = (~self._ended).nonzero().squeeze(1)
            live = len(running)
            if live == 0:
                break
            rows = self._s["rows"]
            if live <= rows // 2 and rows > self.min_rows:
                self._put_back(out, origin)
                narrow = max(self.min_rows, 1 << (live - 1).bit_length())
                ended = self._ended.nonzero().squeeze(1)
                keep = torch.cat([running, ended[: narrow - live]])
                origin = origin.index_select(0, keep)
                origin[live:] = -1  # rows kept only to fill the batch: never copied back
                state = self._narrow(keep)
                if self._s is not self._full:
                    self._graphs = {k: g for k, g in self._graphs.items() if k[0] == self.batch}
                self._use(state)
                self.narrowed.append(narrow)
        if self._s is not self._full:
            self._put_back(out, origin)
        return out, done

    def _put_back(self, out: Tensor, origin: Tensor) -> None:
        """Copy the current rows' tokens into the full batch's output at their origins."""
        if self._s is self._full:
            return
        real = origin >= 0
        out.index_copy_(0, origin[real], self.tokens[real])
