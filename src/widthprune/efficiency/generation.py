"""Greedy generation of exactly N tokens per sequence, on two paths.

- :func:`generate_plain`: ``model.generate`` with its dynamic KV cache and EOS suppressed until
  the length is reached (``min_new_tokens``), as most users run it.
- :class:`StaticGenerator`: a static KV cache, an eager prefill, and each decode step replayed
  from one captured CUDA graph, so no Python or kernel-launch overhead remains per step;
  optionally the step is compiled first (torch.compile), which fuses its many small kernels.
"""

from __future__ import annotations

import inspect

import torch
from torch import Tensor

__all__ = ["StaticGenerator", "generate_plain"]


def generate_plain(model, input_ids: Tensor, new_tokens: int) -> Tensor:
    """Greedy ``model.generate`` of exactly ``new_tokens`` tokens.

    Args:
        input_ids: (batch, prompt_len) token ids on the model's device.

    Returns:
        (batch, new_tokens) generated ids.
    """
    out = model.generate(
        input_ids,
        attention_mask=torch.ones_like(input_ids),
        max_new_tokens=new_tokens,
        min_new_tokens=new_tokens,  # suppresses EOS until the length is reached
        do_sample=False,
        pad_token_id=model.config.eos_token_id,
    )
    return out[:, input_ids.shape[1] :]


def _next_token(model, cache, ids: Tensor, pos: Tensor, explicit: bool) -> Tensor:
    """Greedy next token (batch, 1) after ``ids`` (batch, n) at positions ``pos`` (1, n)."""
    kwargs = {"cache_position": pos[0]} if explicit else {}
    logits = model(
        input_ids=ids,
        position_ids=pos,
        past_key_values=cache,
        use_cache=True,
        logits_to_keep=1,
        **kwargs,
    ).logits
    return logits[:, -1].argmax(-1, keepdim=True)


def _decode_step(model, cache, tok: Tensor, pos: Tensor, slot: Tensor, out: Tensor, explicit: bool):
    """One greedy step on device tensors only: read ``tok`` at ``pos``, write the next token."""
    nxt = _next_token(model, cache, tok, pos, explicit)
    tok.copy_(nxt)
    out.scatter_(1, slot.expand(tok.shape[0], 1), nxt)
    pos.add_(1)
    slot.add_(1)


_COMPILED: list = []  # the compiled step, built once per process so its graphs are shared


def _compiled_step():
    """``_decode_step`` through torch.compile (inductor), one graph for every width and batch.

    Every dimension is symbolic (``dynamic=True``), parameters included, so a model of another
    MLP width reuses the compiled code instead of compiling again (batch 1 is compiled apart).
    """
    if not _COMPILED:
        torch._dynamo.config.force_parameter_static_shapes = False
        torch._dynamo.config.force_nn_module_property_static_shapes = False
        torch._dynamo.config.recompile_limit = max(torch._dynamo.config.recompile_limit, 32)
        _COMPILED.append(torch.compile(_decode_step, dynamic=True, fullgraph=True))
    return _COMPILED[0]


class StaticGenerator:
    """Greedy fixed-length generation over a static KV cache, decode steps from a CUDA graph.

    All decode state (next token, position, output slot) lives in device tensors that the step
    updates in place, so a captured step can be replayed ``new_tokens - 1`` times without the
    host. :meth:`prefill` restarts from a new prompt.

    Args:
        model: a causal LM (Llama-style) in eval mode.
        batch: sequences per request.
        prompt_len: prompt tokens per sequence.
        new_tokens: tokens to emit per sequence.
        graph: capture the decode step as a CUDA graph (CUDA only).
        compile: run the decode step through torch.compile first (fuses the small kernels);
            compilation happens here, in the warm-up, not in the timed calls.

    Raises:
        ValueError: ``graph=True`` on a model that is not on a CUDA device.
    """

    @torch.no_grad()
    def __init__(
        self,
        model,
        batch: int,
        prompt_len: int,
        new_tokens: int,
        *,
        graph: bool,
        compile: bool = False,
    ):
        from transformers import StaticCache

        self.model, self.batch, self.prompt_len = model, batch, prompt_len
        self.new_tokens = new_tokens
        self.device = next(model.parameters()).device
        if graph and self.device.type != "cuda":
            raise ValueError(f"CUDA graphs need a CUDA device; the model is on {self.device}.")
        self.cache = StaticCache(config=model.config, max_cache_len=prompt_len + new_tokens)
        # older transformers index the cache by an explicit cache_position argument
        self._explicit = "cache_position" in inspect.signature(model.forward).parameters
        self._step_fn = _compiled_step() if compile else _decode_step
        kw = {"dtype": torch.long, "device": self.device}
        self.tokens = torch.zeros(batch, new_tokens, **kw)  # (batch, new_tokens) the output
        self._tok = torch.zeros(batch, 1, **kw)  # token fed to the next step
        self._pos = torch.zeros(1, 1, **kw)  # its position
        self._slot = torch.zeros(1, 1, **kw)  # its column in self.tokens
        self.graph = None
        if compile or graph:
            self.prefill(torch.zeros(batch, prompt_len, **kw))  # allocates the cache
        if compile and not graph:
            self._step()  # compiles
        if graph:
            side = torch.cuda.Stream(self.device)
            side.wait_stream(torch.cuda.current_stream(self.device))
            with torch.cuda.stream(side):  # warm-up (and compilation) off the capture stream
                for _ in range(2):
                    self._step()
            torch.cuda.current_stream(self.device).wait_stream(side)
            self.graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(self.graph):
                self._step()

    def _step(self) -> None:
        self._step_fn(
            self.model, self.cache, self._tok, self._pos, self._slot, self.tokens, self._explicit
        )

    @torch.no_grad()
    def prefill(self, input_ids: Tensor) -> None:
        """Reset the cache, run the prompt (batch, prompt_len) and emit the first token."""
        if tuple(input_ids.shape) != (self.batch, self.prompt_len):
            raise ValueError(
                f"input_ids has shape {tuple(input_ids.shape)}; this generator was built for "
                f"({self.batch}, {self.prompt_len})."
            )
        self.cache.reset()
        pos = torch.arange(self.prompt_len, device=self.device)[None]
        first = _next_token(self.model, self.cache, input_ids, pos, self._explicit)
        self._tok.copy_(first)
        self.tokens[:, :1].copy_(first)
        self._pos.fill_(self.prompt_len)
        self._slot.fill_(1)

    @torch.no_grad()
    def decode(self) -> Tensor:
        """Emit the remaining ``new_tokens - 1`` tokens; returns (batch, new_tokens) ids."""
        for _ in range(self.new_tokens - 1):
            if self.graph is not None:
                self.graph.replay()
            else:
                self._step()
        return self.tokens

    def generate(self, input_ids: Tensor) -> Tensor:
        """Prefill then decode: (batch, prompt_len) -> (batch, new_tokens) ids."""
        self.prefill(input_ids)
        return self.decode()
