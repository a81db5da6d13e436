"""Time, memory and energy of generation at a fixed output length.

Two generation paths, each greedy and emitting exactly ``new_tokens`` tokens per sequence (EOS
ignored, so a pruned model is never charged for talking longer):

- ``hf_generate``: plain ``model.generate`` with its dynamic KV cache, as most users run it.
  Time to first token (TTFT) is a ``max_new_tokens=1`` call; time per output token (TPOT) is
  ``(T(N) - T(1)) / (N - 1)``.
- ``static_cudagraph``: a static KV cache, an eager prefill, and every decode step replayed from
  one captured CUDA graph (no Python or launch overhead per step). If the capture fails, its
  rows say why (value NaN) and the same loop is timed without the graph under the honest name
  ``static_eager``.
- ``compiled_cudagraph``: the same with the decode step compiled by torch.compile first, which
  fuses its small kernels: what the hardware can do. If compilation fails, its rows say why
  (value NaN); nothing else is timed under its name.

Every measurement is one tidy row of :data:`COLUMNS`: median over repeated requests, quartiles
and count. Energy is read from NVML over a window of whole requests of at least
``min_window_s`` seconds, raw and minus the idle power; energy per token is the window's energy
over its generated tokens (requests x batch x new_tokens), the prompt's prefill included, as in
the study's J/token.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import pandas as pd
import torch

from .energy import EnergyMeter
from .generation import StaticGenerator, generate_plain

__all__ = [
    "COLUMNS",
    "PATHS",
    "BenchSettings",
    "Window",
    "load_measurements",
    "measure",
    "run_window",
]

COLUMNS = [
    "device",  # GPU name or "cpu"
    "shape",  # registered shape name, e.g. "llama-3.2-1b"
    "width",  # MLP intermediate size
    "batch",  # sequences per request
    "prompt_len",  # prompt tokens per sequence
    "new_tokens",  # generated tokens per sequence
    "path",  # generation path, see PATHS
    "round",  # repetition of the whole set of measurements (0 in files written before rounds)
    "metric",  # ttft, tpot, request_time, throughput, peak_memory, energy_per_token, ...
    "value",  # median (energy: the window's figure); NaN when unavailable
    "unit",  # ms, tok/s, GiB, J/token, W
    "q1",  # first quartile over requests (NaN for one-window figures)
    "q3",  # third quartile over requests
    "n",  # requests behind the value
    "reason",  # why the value is NaN, else ""
]
PATHS = ("hf_generate", "static_cudagraph", "compiled_cudagraph", "static_eager")


@dataclass(frozen=True)
class BenchSettings:
    """What one measurement does."""

    prompt_len: int = 512  # prompt tokens per sequence (random ids)
    new_tokens: int = 128  # tokens generated per sequence, EOS ignored
    min_runs: int = 3  # timed requests per measurement, at least
    min_window_s: float = 1.0  # the energy window holds whole requests and lasts at least this
    warmup: int = 1  # untimed requests of the same batch and path first, never counted in n
    seed: int = 0  # seed of the prompt ids

    def __post_init__(self):
        if self.prompt_len < 1 or self.new_tokens < 2:
            raise ValueError(
                f"Need prompt_len >= 1 and new_tokens >= 2 (TPOT needs two tokens), "
                f"got {self.prompt_len} and {self.new_tokens}."
            )
        if self.min_runs < 1 or self.warmup < 0:
            raise ValueError(f"Need min_runs >= 1 and warmup >= 0, got {self}")


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@dataclass(frozen=True)
class Window:
    """Repeated requests and the energy of the whole window."""

    phases: dict[str, list[float]] = field(default_factory=dict)  # seconds per request, by phase
    seconds: float = 0.0  # wall time of the window
    joules: float = float("nan")  # energy counter difference over the window (NaN: no meter)


def run_window(
    request: Callable[[], dict[str, float]],
    *,
    meter: EnergyMeter,
    min_runs: int,
    min_seconds: float,
    device: torch.device,
) -> Window:
    """Call ``request`` until both ``min_runs`` calls and ``min_seconds`` have passed.

    ``request`` returns its own phase times in seconds (it synchronises the device).
    """
    phases: dict[str, list[float]] = {}
    runs = 0
    _sync(device)
    start_j, start = meter.read_joules(), time.perf_counter()
    while runs < min_runs or time.perf_counter() - start < min_seconds:
        for name, seconds in request().items():
            phases.setdefault(name, []).append(seconds)
        runs += 1
    _sync(device)
    seconds = time.perf_counter() - start
    return Window(phases=phases, seconds=seconds, joules=meter.read_joules() - start_j)


def _timed(device: torch.device, *steps: Callable[[], object]) -> list[float]:
    """Run ``steps`` one after another; the seconds each took, device synchronised."""
    _sync(device)
    marks = [time.perf_counter()]
    for step in steps:
        step()
        _sync(device)
        marks.append(time.perf_counter())
    return [b - a for a, b in zip(marks, marks[1:], strict=False)]


def _quartiles(xs: list[float], scale: float) -> tuple[float, float, float]:
    if len(xs) == 1:
        return xs[0] * scale, xs[0] * scale, xs[0] * scale
    q1, q2, q3 = statistics.quantiles(xs, n=4, method="inclusive")
    return q2 * scale, q1 * scale, q3 * scale


@torch.no_grad()
def measure(
    model,
    *,
    shape: str,
    batch: int,
    path: str,
    settings: BenchSettings,
    meter: EnergyMeter,
    idle_watts: float = float("nan"),
    round_index: int = 0,
) -> pd.DataFrame:
    """Time (and meter) greedy fixed-length requests of one model, batch size and path.

    Args:
        model: a causal LM in eval mode (its device decides CUDA or CPU timing).
        shape: label of the model's shape, written to the ``shape`` column.
        batch: sequences per request.
        path: ``"hf_generate"``, ``"static_cudagraph"`` or ``"compiled_cudagraph"`` (see the
            module docstring).
        settings: prompt length, output length, repeats, energy window.
        meter: the NVML energy meter (``available=False`` gives NaN energy with its reason).
        idle_watts: idle power subtracted in ``energy_per_token_net``.
        round_index: written to the ``round`` column (see :mod:`widthprune.efficiency.rounds`).

    Returns:
        Tidy rows of :data:`COLUMNS`: ttft, tpot, request_time (ms), throughput (tok/s),
        peak_memory (GiB, CUDA only: all the process held at the peak) and workload_memory
        (GiB: the peak above what was held before, i.e. KV cache, activations, graph pools),
        energy_per_token and energy_per_token_net (J/token),
        power (W).

    Raises:
        ValueError: an unknown path; the message lists the valid ones.
    """
    if path not in PATHS[:3]:
        raise ValueError(f"Unknown path {path!r}; valid paths: {list(PATHS[:3])}.")
    device = next(model.parameters()).device
    gen = torch.Generator().manual_seed(settings.seed)
    vocab = model.config.vocab_size
    ids = torch.randint(0, vocab, (batch, settings.prompt_len), generator=gen).to(device)
    n_new = settings.new_tokens
    base = {
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "shape": shape,
        "width": model.config.intermediate_size,
        "batch": batch,
        "prompt_len": settings.prompt_len,
        "new_tokens": n_new,
    }
    rows: list[dict] = []

    def add(path_, metric, unit, value, q1=float("nan"), q3=float("nan"), n=1, reason=""):
        row = {"path": path_, "round": round_index, "metric": metric, "value": value}
        rows.append({**base, **row, "unit": unit, "q1": q1, "q3": q3, "n": n, "reason": reason})

    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
        held = torch.cuda.memory_allocated(device)  # the weights, and anything left over
    if path == "hf_generate":
        for _ in range(settings.warmup):  # the whole request: the cache grows to its full size
            generate_plain(model, ids, n_new)
        first = [
            _timed(device, lambda: generate_plain(model, ids, 1))[0]
            for _ in range(settings.min_runs)
        ]
        t_first = statistics.median(first)
        window = run_window(
            lambda: {"request": _timed(device, lambda: generate_plain(model, ids, n_new))[0]},
            meter=meter,
            min_runs=settings.min_runs,
            min_seconds=settings.min_window_s,
            device=device,
        )
        phases = {
            "ttft": first,
            "decode": [t - t_first for t in window.phases["request"]],
            "request": window.phases["request"],
        }
    else:
        compiled = path == "compiled_cudagraph"
        try:
            runner = StaticGenerator(
                model, batch, settings.prompt_len, n_new, graph=True, compile=compiled
            )
        except Exception as err:  # report why; time the graph-less loop only under its own name
            reason = f"{path} failed: {type(err).__name__}: {str(err)[:300]}"
            for metric, unit in (("ttft", "ms"), ("tpot", "ms"), ("energy_per_token", "J/token")):
                add(path, metric, unit, float("nan"), n=0, reason=reason)
            if compiled:
                return pd.DataFrame(rows, columns=COLUMNS)
            path = "static_eager"
            runner = StaticGenerator(model, batch, settings.prompt_len, n_new, graph=False)

        def request() -> dict[str, float]:
            runner.cache.reset()
            ttft, decode = _timed(device, lambda: runner.prefill(ids), runner.decode)
            return {"ttft": ttft, "decode": decode, "request": ttft + decode}

        for _ in range(settings.warmup):
            request()
        window = run_window(
            request,
            meter=meter,
            min_runs=settings.min_runs,
            min_seconds=settings.min_window_s,
            device=device,
        )
        phases = window.phases
    runs = len(phases["request"])
    add(path, "ttft", "ms", *_quartiles(phases["ttft"], 1e3), n=len(phases["ttft"]))
    add(path, "tpot", "ms", *_quartiles(phases["decode"], 1e3 / (n_new - 1)), n=runs)
    add(path, "request_time", "ms", *_quartiles(phases["request"], 1e3), n=runs)
    med = statistics.median(phases["request"])
    add(path, "throughput", "tok/s", batch * n_new / med, n=runs)
    if device.type == "cuda":
        peak = torch.cuda.max_memory_allocated(device)
        add(path, "peak_memory", "GiB", peak / 2**30)
        add(path, "workload_memory", "GiB", (peak - held) / 2**30)
    tokens = runs * batch * n_new
    reason = "" if meter.available else meter.reason
    add(path, "energy_per_token", "J/token", window.joules / tokens, n=runs, reason=reason)
    net = (window.joules - idle_watts * window.seconds) / tokens
    net_reason = reason or ("" if idle_watts == idle_watts else "idle power not measured")
    add(path, "energy_per_token_net", "J/token", net, n=runs, reason=net_reason)
    add(path, "power", "W", window.joules / window.seconds, n=runs, reason=reason)
    return pd.DataFrame(rows, columns=COLUMNS)


def load_measurements(path) -> pd.DataFrame:
    """Read a results CSV written by ``benchmarks/bench_efficiency.py``.

    Integer columns come back as integers (nullable: the run-level rows, copy bandwidth and
    idle power, have no shape, width or batch) and an empty reason as "". A file written before
    rounds existed reads as round 0.

    Raises:
        ValueError: the file lacks columns of :data:`COLUMNS`; the message names them.
    """
    frame = pd.read_csv(path, dtype={"path": object, "reason": object})  # all empty: still text
    missing = [c for c in COLUMNS if c not in frame and c != "round"]
    if missing:
        raise ValueError(f"{path} is not an efficiency results file: missing columns {missing}.")
    if "round" not in frame:  # written before rounds: every measurement is the first round
        frame.insert(COLUMNS.index("round"), "round", frame["width"].where(frame.width.isna(), 0))
    ints = {c: "Int64" for c in ("width", "batch", "prompt_len", "new_tokens", "round", "n")}
    return frame.astype(ints).fillna({"reason": "", "path": ""})
