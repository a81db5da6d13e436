"""Shared fixtures: a tiny seeded Llama (odd sizes catch transposition bugs) and a tokenizer."""

from __future__ import annotations

import os

# Tests never touch the network: set before transformers / huggingface_hub read it at import.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"

import pytest  # noqa: E402
import torch  # noqa: E402


def make_tiny_llama(
    seed: int = 0, *, intermediate_size: int = 37, bias: bool = False, std: float = 0.2, **config
):
    """hidden 32, intermediate 37, 2 layers, 4 query / 2 key-value heads, float32, seeded.

    ``config`` overrides LlamaConfig fields (another vocabulary or hidden size); matrices and
    biases are drawn with standard deviation ``std``.
    """
    from transformers import LlamaConfig, LlamaForCausalLM

    fields = dict(
        vocab_size=61,
        hidden_size=32,
        intermediate_size=intermediate_size,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        head_dim=8,
        max_position_embeddings=64,
        tie_word_embeddings=True,
        mlp_bias=bias,
        bos_token_id=1,
        eos_token_id=2,
        pad_token_id=0,
    )
    torch.manual_seed(seed)
    model = LlamaForCausalLM(LlamaConfig(**{**fields, **config})).eval()
    with torch.no_grad():  # default init is too small to make neurons differ much
        for name, p in model.named_parameters():
            if p.ndim == 2 or "bias" in name:
                p.normal_(0.0, std)
    return model


@pytest.fixture
def tiny_model():
    return make_tiny_llama()


@pytest.fixture
def input_ids():
    gen = torch.Generator().manual_seed(1)
    return torch.randint(3, 61, (3, 11), generator=gen)


def make_tiny_tokenizer():
    """A word-level tokenizer over 61 ids, built offline."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {"<pad>": 0, "<s>": 1, "</s>": 2, "<unk>": 3}
    for i in range(4, 61):
        vocab[f"w{i}"] = i
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        pad_token="<pad>",
        bos_token="<s>",
        eos_token="</s>",
        unk_token="<unk>",
    )


@pytest.fixture
def tiny_tokenizer():
    return make_tiny_tokenizer()


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory):
    """A saved byte-level tiny Llama and tokenizer (tests/evalkit.py), shared by the session."""
    from evalkit import make_byte_llama, make_byte_tokenizer

    folder = tmp_path_factory.mktemp("byte-model")
    make_byte_llama().save_pretrained(folder)
    make_byte_tokenizer().save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def tasks_dir(tmp_path_factory):
    """The local lm-eval task YAMLs of tests/evalkit.py, written once per session."""
    from evalkit import write_tasks

    return write_tasks(tmp_path_factory.mktemp("tasks"))


def convert_packaged(name: str, root):
    """Convert packaged model ``name`` into the fresh cache ``root``, keeping the model and
    tokenizer transformers read from its GGUF (the reference the conversion is checked against).

    Returns:
        A namespace with ``root``, ``folder`` (the converted checkpoint), ``model``, ``tokenizer``.
    """
    import types

    from widthprune.models import gguf as gguf_conversion
    from widthprune.models import registry

    kept = {}
    real_read = gguf_conversion.read_gguf

    def read_and_keep(path):
        kept["model"], kept["tokenizer"] = real_read(path)
        return kept["model"], kept["tokenizer"]

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(gguf_conversion, "read_gguf", read_and_keep)
        folder = registry.ensure_checkpoint(name, cache=root)
    return types.SimpleNamespace(root=root, folder=folder, **kept)
