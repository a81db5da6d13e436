"""Self-checks for the exercises: a reader's criterion, surgery or statistic against the library.

Each check runs the reader's function and the library's on the same small input (a tiny seeded
Llama, or a few seeded samples), prints ``PASS`` or ``FAIL`` with the first difference found, and
returns a :class:`CheckResult`, true when the two agree. A chapter's exercise cell ends with::

    result = check_criterion(my_ppm, "ppm")
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

__all__ = [
    "STATISTICS",
    "CheckResult",
    "SolutionNotWritten",
    "check_criterion",
    "check_statistic",
    "check_surgery",
    "tiny_llama",
]

_RTOL, _ATOL = 1e-5, 1e-6  # float32 scores: the reader may reduce in another order


class SolutionNotWritten(Exception):
    """Raised by the student edition's exercise functions until the student writes them."""


@dataclass(frozen=True)
class CheckResult:
    """What one self-check found."""

    check: str  # what was compared, e.g. "criterion 'ppm'"
    passed: bool  # the reader's function agreed with the library on every case
    detail: str  # the first difference, or what agreed

    def __bool__(self) -> bool:
        return self.passed

    def __str__(self) -> str:
        return f"{'PASS' if self.passed else 'FAIL'} {self.check}: {self.detail}"


def _passed(check: str, detail: str) -> CheckResult:
    result = CheckResult(check, True, detail)
    print(result)
    return result


def _failed(check: str, detail: str) -> CheckResult:
    result = CheckResult(check, False, detail)
    print(result)
    return result


def tiny_llama(seed: int = 0, *, bias: bool = False):
    """A seeded float32 Llama: hidden 32, intermediate 37, 2 layers, 4/2 heads, 61 tokens.

    Odd sizes make a transposed index fail loudly; weights are N(0, 0.2) so that neurons differ.
    """
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(
        vocab_size=61,
        hidden_size=32,
        intermediate_size=37,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        head_dim=8,
        max_position_embeddings=64,
        tie_word_embeddings=True,
        mlp_bias=bias,
    )
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config).eval()
    with torch.no_grad():
        for p in model.parameters():
            if p.ndim == 2 or bias and p.ndim == 1 and p.shape[0] != config.hidden_size:
                p.normal_(0.0, 0.2)
    return model


def _token_batches(seed: int, n: int = 2) -> list[torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    return [torch.randint(0, 61, (2, 12), generator=gen) for _ in range(n)]


def _first_difference(name: str, yours: torch.Tensor, ref: torch.Tensor, exact: bool) -> str | None:
    """Where ``yours`` first departs from ``ref`` (shape, then values), or None."""
    if not isinstance(yours, torch.Tensor):
        return f"{name} is a {type(yours).__name__}, expected a tensor"
    if tuple(yours.shape) != tuple(ref.shape):
        return f"{name} has shape {tuple(yours.shape)}, expected {tuple(ref.shape)}"
    a, b = yours.detach().cpu().double(), ref.detach().cpu().double()
    close = a == b if exact else torch.isclose(a, b, rtol=_RTOL, atol=_ATOL)
    if bool(close.all()):
        return None
    where = tuple(int(i) for i in (~close).nonzero()[0])
    index = ", ".join(map(str, where))
    return (
        f"{name}[{index}] is {a[where].item():.6g}, expected {b[where].item():.6g} "
        f"({int((~close).sum())} of {close.numel()} entries differ)"
    )


def check_criterion(fn: Callable, name: str, *, seed: int = 0) -> CheckResult:
    """Does ``fn`` score neurons as the library's criterion ``name`` does?

    Args:
        fn: the reader's criterion, ``fn(model, *, calibration=None, seed=0) -> {layer: (I,)}``.
        name: the library criterion it should equal, a key of ``widthprune.CRITERIA``.
        seed: seed of the tiny model, the calibration batches and the ``random`` criterion.
    """
    from ..pruning.scoring import get_criterion, score

    get_criterion(name)  # an unknown name is the caller's error, not a failed check
    check = f"criterion {name!r}"
    model = tiny_llama(seed)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    calibration = _token_batches(seed)
    reference = score(model, name, calibration=calibration, seed=seed)
    try:
        with torch.no_grad():
            yours = fn(model, calibration=calibration, seed=seed)
    except Exception as exc:  # the reader's code: report, never crash the notebook
        return _failed(check, f"your function raised {type(exc).__name__}: {exc}")
    changed = [k for k, v in model.state_dict().items() if not torch.equal(v, before[k])]
    if changed:
        return _failed(check, f"your function changed the model's weights ({changed[0]})")
    if not isinstance(yours, dict):
        return _failed(check, f"returned a {type(yours).__name__}, expected {{layer: scores}}")
    if sorted(yours) != sorted(reference):
        return _failed(check, f"layers {sorted(yours)}, expected {sorted(reference)}")
    for layer in sorted(reference):
        problem = _first_difference(f"layer {layer}: score", yours[layer], reference[layer], False)
        if problem:
            return _failed(check, problem)
    n = sum(s.numel() for s in reference.values())
    return _passed(check, f"all {n} scores of {len(reference)} layers match wp.score")


def _mlp_tensors(model) -> dict[str, torch.Tensor]:
    from ..pruning.architectures import gated_mlps

    out = {}
    for i, mlp in gated_mlps(model):
        for proj in ("gate_proj", "up_proj", "down_proj"):
            linear = getattr(mlp, proj)
            out[f"layer {i}: {proj}.weight"] = linear.weight
            if linear.bias is not None:
                out[f"layer {i}: {proj}.bias"] = linear.bias
    return out


def _mlp_sizes(model) -> dict[str, int]:
    from ..pruning.architectures import gated_mlps

    sizes = {"config.intermediate_size": model.config.intermediate_size}
    for i, mlp in gated_mlps(model):
        sizes[f"layer {i}: gate_proj.out_features"] = mlp.gate_proj.out_features
        sizes[f"layer {i}: up_proj.out_features"] = mlp.up_proj.out_features
        sizes[f"layer {i}: down_proj.in_features"] = mlp.down_proj.in_features
    return sizes


def check_surgery(fn: Callable, *, seed: int = 0) -> CheckResult:
    """Does ``fn`` cut neurons as ``widthprune.prune_mlp_`` does?

    The reader's surgery and the library's each prune a copy of a tiny Llama with biases, to
    the same kept neurons (a different set in every layer); their tensors, sizes and logits must
    agree exactly.

    Args:
        fn: the reader's surgery, ``fn(model, keep)`` in place, ``keep = {layer: sorted indices}``.
        seed: seed of the model, the kept sets and the input.
    """
    from ..pruning.surgery import prune_mlp_

    check = "surgery"
    model = tiny_llama(seed, bias=True)
    gen = torch.Generator().manual_seed(seed)
    keep = {i: torch.randperm(37, generator=gen)[:23].sort().values for i in range(2)}
    ids = torch.randint(0, 61, (2, 9), generator=gen)
    library, yours = prune_mlp_(copy.deepcopy(model), keep), copy.deepcopy(model)
    try:
        with torch.no_grad():
            fn(yours, {i: k.clone() for i, k in keep.items()})
    except Exception as exc:  # the reader's code: report, never crash the notebook
        return _failed(check, f"your function raised {type(exc).__name__}: {exc}")
    expected, got = _mlp_tensors(library), _mlp_tensors(yours)
    for name, ref in expected.items():
        problem = _first_difference(name, got.get(name), ref, True)
        if problem:
            return _failed(check, problem)
    for name, size in _mlp_sizes(library).items():
        if _mlp_sizes(yours)[name] != size:
            return _failed(check, f"{name} is {_mlp_sizes(yours)[name]}, expected {size}")
    with torch.no_grad():
        ref_logits, your_logits = library(input_ids=ids).logits, yours(input_ids=ids).logits
    problem = _first_difference("logits", your_logits, ref_logits, True)
    if problem:
        return _failed(check, problem)
    sizes = len(_mlp_sizes(library))
    return _passed(
        check, f"{len(expected)} tensors, {sizes} sizes and the logits equal prune_mlp_'s"
    )


def _holm(p: np.ndarray) -> np.ndarray:
    from ..analysis.stats import adjust

    return adjust(pd.DataFrame({"p": p}), method="holm")["p_adj"].to_numpy()


def _bh(p: np.ndarray) -> np.ndarray:
    from ..analysis.stats import adjust

    return adjust(pd.DataFrame({"p": p}), method="bh")["p_adj"].to_numpy()


def _correlation(name: str) -> Callable:
    def reference(x: np.ndarray, y: np.ndarray) -> float:
        from ..analysis import correlation

        return float(getattr(correlation, name)(x, y))

    return reference


# name -> (library reference, what the reader's function takes and returns)
STATISTICS: dict[str, tuple[Callable, str]] = {
    "pearson": (_correlation("pearson"), "fn(x, y) -> float, x and y 1-D arrays"),
    "spearman": (_correlation("spearman"), "fn(x, y) -> float, x and y 1-D arrays"),
    "kendall": (_correlation("kendall"), "fn(x, y) -> float, x and y 1-D arrays"),
    "holm": (_holm, "fn(p) -> adjusted p-values, p a 1-D array"),
    "bh": (_bh, "fn(p) -> adjusted p-values, p a 1-D array"),
}


def _cases(name: str, seed: int) -> list[tuple[str, tuple]]:
    rng = np.random.default_rng(seed)
    if name in ("holm", "bh"):
        return [
            ("8 uniform p-values", (rng.uniform(0, 0.2, 8),)),
            ("p-values with ties", (np.array([0.01, 0.04, 0.04, 0.03, 0.5, 0.01]),)),
            ("p-values near 1", (np.array([0.3, 0.9, 0.6, 0.02]),)),
        ]
    x = rng.normal(size=7)
    return [
        ("7 normal pairs", (x, 0.5 * x + rng.normal(size=7))),
        ("pairs with ties", (np.round(rng.normal(size=12), 0), np.round(rng.normal(size=12), 0))),
        ("a monotone curve", (np.arange(9.0), np.exp(np.arange(9.0)))),
    ]


def check_statistic(fn: Callable, name: str, *, seed: int = 0) -> CheckResult:
    """Does ``fn`` compute the statistic ``name`` as the library does (``widthprune.analysis``)?

    Args:
        fn: the reader's statistic; its signature is listed in :data:`STATISTICS`.
        name: ``pearson``, ``spearman``, ``kendall`` (of two samples) or ``holm``, ``bh``
            (adjusted p-values of one family of tests).
        seed: seed of the samples.
    """
    if name not in STATISTICS:
        raise KeyError(f"Unknown statistic {name!r}; valid: {sorted(STATISTICS)}")
    reference, signature = STATISTICS[name]
    check = f"statistic {name!r}"
    cases = _cases(name, seed)
    for label, args in cases:
        want = np.asarray(reference(*args), dtype=float)
        try:
            got = np.asarray(fn(*(a.copy() for a in args)), dtype=float)
        except Exception as exc:  # the reader's code: report, never crash the notebook
            return _failed(check, f"on {label}: your function raised {type(exc).__name__}: {exc}")
        if got.size != want.size:
            return _failed(
                check, f"on {label}: {got.size} values, expected {want.size} ({signature})"
            )
        got = got.reshape(want.shape)
        bad = ~np.isclose(got, want, rtol=1e-9, atol=1e-12, equal_nan=True)
        if bad.any():
            k = int(np.flatnonzero(bad)[0])
            value = f"value [{k}]" if want.ndim else "the value"
            return _failed(
                check, f"on {label}: {value} is {got.flat[k]:.6g}, expected {want.flat[k]:.6g}"
            )
    return _passed(check, f"matches widthprune.analysis on {len(cases)} cases")
