"""Score + select + prune of the Llama-3.2-1B shape (bf16, CPU) against the obvious loop.

Usage: python benchmarks/bench_prune.py [--repeats 3] [--pct 40] [--shape llama-3.2-1b]

Model building is excluded from both timings. The baseline is a plain per-layer loop written
the way pruning scripts usually are: cast each matrix to float32, score, take the top-k, and
replace the three projections by freshly constructed nn.Linear modules that are then filled.
Both must keep neurons of the same scores (they may differ only among tied scores, which the
two break differently); the script checks it and prints the median times and their ratio.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

import widthprune as wp


def obvious_loop(model, width: int) -> dict[int, torch.Tensor]:
    """Prune every MLP to ``width`` neurons by PPM, one layer at a time, the obvious way."""
    kept = {}
    for i, layer in enumerate(model.model.layers):
        mlp = layer.mlp
        g = mlp.gate_proj.weight.data.float()
        u = mlp.up_proj.weight.data.float()
        scores = g.max(dim=1).values + g.min(dim=1).values.abs()
        scores = scores + u.max(dim=1).values + u.min(dim=1).values.abs()
        idx = torch.sort(torch.topk(scores, width).indices).values
        hidden, dtype = g.shape[1], mlp.gate_proj.weight.dtype
        new_gate = torch.nn.Linear(hidden, width, bias=False, dtype=dtype)
        new_up = torch.nn.Linear(hidden, width, bias=False, dtype=dtype)
        new_down = torch.nn.Linear(width, hidden, bias=False, dtype=dtype)
        new_gate.weight.data = mlp.gate_proj.weight.data[idx, :].clone()
        new_up.weight.data = mlp.up_proj.weight.data[idx, :].clone()
        new_down.weight.data = mlp.down_proj.weight.data[:, idx].clone()
        mlp.gate_proj, mlp.up_proj, mlp.down_proj = new_gate, new_up, new_down
        kept[i] = idx
    model.config.intermediate_size = width
    return kept


def widthprune_path(model, width: int) -> dict[int, torch.Tensor]:
    keep = wp.select_neurons(wp.score(model, "ppm"), width)
    wp.prune_mlp_(model, keep)
    return keep


def timed(fn, shape: str, width: int) -> tuple[float, dict]:
    """Seconds of ``fn`` on a fresh model, and the kept scores of each layer, sorted."""
    model = wp.random_model(shape, dtype=torch.bfloat16, seed=0)
    scores = wp.score(model, "ppm")
    t0 = time.perf_counter()
    with torch.no_grad():
        kept = fn(model, width)
    seconds = time.perf_counter() - t0
    del model
    return seconds, {i: scores[i][idx].sort().values for i, idx in kept.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shape", default="llama-3.2-1b")
    parser.add_argument("--pct", type=float, default=40.0)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    shape = wp.get_shape(args.shape)
    width = wp.target_width(wp.llama_config(shape), pruning_pct=args.pct)
    threads = torch.get_num_threads()
    print(f"{args.shape} bf16, {threads} threads: prune {args.pct}% -> width {width}")
    ours, base = [], []
    for r in range(args.repeats):
        t_ours, kept_ours = timed(widthprune_path, args.shape, width)
        t_base, kept_base = timed(obvious_loop, args.shape, width)
        same = all(torch.equal(kept_ours[i], kept_base[i]) for i in kept_ours)
        print(
            f"  repeat {r}: widthprune {t_ours:.3f} s, obvious loop {t_base:.3f} s, "
            f"same kept scores: {same}"
        )
        if not same:
            raise SystemExit("the two paths kept different neurons")
        ours.append(t_ours)
        base.append(t_base)
    m_ours, m_base = statistics.median(ours), statistics.median(base)
    print(
        f"median: widthprune {m_ours:.3f} s | obvious loop {m_base:.3f} s | "
        f"speedup {m_base / m_ours:.2f}x"
    )
    print(f"target <= 1.0 s: {'met' if m_ours <= 1.0 else 'NOT met'}")


if __name__ == "__main__":
    main()
