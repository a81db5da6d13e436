"""A GGUF file to a plain Hugging Face checkpoint folder, checked against the GGUF-read model.

transformers reads a GGUF file into a model whose config carries a quantisation entry and which
refuses ``save_pretrained``. :func:`convert_gguf` copies its dequantised weights into a plain
model of the same class, saves it with the tokenizer (and its chat template), reloads the folder
and requires its logits to equal the GGUF-read model's.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

__all__ = ["CHECK_MESSAGES", "CHECK_TEXT", "convert_gguf", "read_gguf"]

# The conversion's check runs the chat template on this conversation.
CHECK_MESSAGES = [{"role": "user", "content": "What is the capital of France?"}]
# ... and a base model (no chat template) this text.
CHECK_TEXT = "Question: What is the capital of France?\nAnswer:"
_CHECK_ATOL = 1e-4  # largest accepted logit difference (float32 dequantised weights give 0.0)


def read_gguf(path: str | os.PathLike):
    """``(model, tokenizer)`` as transformers reads them from a GGUF file (float32, eval mode).

    Raises:
        FileNotFoundError: the ``gguf`` package, which transformers reads GGUF with, is absent.
    """
    import importlib.util

    from transformers import AutoModelForCausalLM, AutoTokenizer

    if importlib.util.find_spec("gguf") is None:
        raise FileNotFoundError(
            "Reading a GGUF file needs the gguf package: pip install gguf "
            "(or the project's extra: pip install -e '.[real]')"
        )
    path = Path(path)
    tokenizer = AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name)
    model = AutoModelForCausalLM.from_pretrained(
        path.parent, gguf_file=path.name, dtype=torch.float32
    )
    return model.eval(), tokenizer


def _plain_copy(quantised):
    """The same weights in a plain model of the same class, without the quantisation config."""
    from transformers import AutoConfig

    settings = quantised.config.to_dict()
    settings.pop("quantization_config", None)
    settings = {k: v for k, v in settings.items() if not k.startswith("_")}  # the GGUF's name
    config = AutoConfig.for_model(**settings)
    model = type(quantised).from_pretrained(
        None, config=config, state_dict=quantised.state_dict(), dtype=torch.float32
    )
    model.generation_config = quantised.generation_config
    return model.eval()


def _check_logits(model, tokenizer, chat: bool) -> torch.Tensor:
    """``(1, tokens, vocab)`` float32 logits of the check conversation (templated) or text."""
    if chat:
        ids = tokenizer.apply_chat_template(
            CHECK_MESSAGES, add_generation_prompt=True, return_tensors="pt", return_dict=True
        )["input_ids"]
    else:
        ids = tokenizer(CHECK_TEXT, return_tensors="pt")["input_ids"]
    with torch.no_grad():
        return model(ids).logits.float()


def convert_gguf(path: str | os.PathLike, out: str | os.PathLike, *, chat: bool = True) -> dict:
    """Write the model and tokenizer of GGUF file ``path`` as a checkpoint folder ``out``.

    The check compares the logits of :data:`CHECK_MESSAGES` in the file's chat template
    (``chat``: an instruction-tuned model, whose file must carry one), else of
    :data:`CHECK_TEXT` (a base model).

    Returns:
        ``{"parameters": unique parameter count, "max_abs_logit_difference": the check's}``.

    Raises:
        ValueError: ``chat`` and the file carries no chat template.
        RuntimeError: the saved folder's logits differ from the GGUF-read model's.
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    quantised, tokenizer = read_gguf(path)
    if chat and not tokenizer.chat_template:
        raise ValueError(f"{path} carries no chat template")
    model = _plain_copy(quantised)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    expected = _check_logits(quantised, tokenizer, chat)
    got = _check_logits(
        AutoModelForCausalLM.from_pretrained(out).eval(), AutoTokenizer.from_pretrained(out), chat
    )
    difference = (expected - got).abs().max().item() if got.shape == expected.shape else None
    if difference is None or not difference <= _CHECK_ATOL:
        raise RuntimeError(f"The converted logits differ from the GGUF model's: {difference}")
    parameters = sum(p.numel() for p in model.parameters())
    return {"parameters": parameters, "max_abs_logit_difference": difference}
