r"""Tidy the study's published efficiency runs into one CSV row per model, width and workload.

Source: the ``*_carbon_complete_results_latest.json`` files of the study's experiment repository
(github.com/peremartra/llama-glu-expansion-pruning, commit 97f9190; NVIDIA L4, bf16, six
workloads, each the mean of up to three seeded runs). Values are copied as published: the
energy columns carry the suffix ``_reported`` because they are CodeCarbon's kg CO2-eq, not
energy (see widthprune.energy.correct_published_energy).

    python benchmarks/published_efficiency.py --source DIR \
        --out src/widthprune/data/published_efficiency.csv
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pandas as pd

FILES = {
    "llama-3.2-1b": "llama_1b_carbon_complete_results_latest.json",
    "llama-3.2-3b": "llama_3b_carbon_complete_results_latest.json",
}
CITATION = "Martra, arXiv:2512.22671; github.com/peremartra/llama-glu-expansion-pruning@97f9190"


def rows_of(shape: str, path: Path) -> list[dict]:
    data = json.loads(path.read_text())
    gpu = data["experiment_metadata"]["hardware_details"]["gpu_model"]
    max_new = {b["name"]: b["max_new_tokens"] for b in data["benchmarks"]}
    rows = []
    for entry in data["models_evaluated"].values():
        pct = int(entry["pruning_pct"])
        for workload, r in entry["results"].items():
            rows.append(
                {
                    "model": data["experiment_metadata"]["model_family"],
                    "shape": shape,
                    "pruning_pct": pct,
                    "width": 8192 - (pct * 8192) // 100,
                    "workload": workload,
                    "batch_size": r["batch_size"],
                    "num_prompts": r["num_prompts"],
                    "max_new_tokens": max_new[workload],
                    "num_runs": r["num_runs_aggregated"],
                    "throughput_tok_s": r["throughput_mean"],
                    "ttlt_ms": r["ttlt_mean"],
                    "energy_kwh_reported": r["energy_kwh_mean"],
                    "joules_per_token_reported": r["joules_per_token_mean"],
                    "gpu": gpu,
                    "source": path.name,
                    "citation": CITATION,
                }
            )
    return rows


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--source", type=Path, required=True, help="the study's results/ folder")
    p.add_argument("--out", type=Path, required=True)
    args = p.parse_args(argv)
    rows = [row for shape, name in FILES.items() for row in rows_of(shape, args.source / name)]
    frame = pd.DataFrame(rows).sort_values(["shape", "pruning_pct", "workload"])
    args.out.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(args.out, index=False, float_format="%.10g")
    print(f"wrote {len(frame)} rows to {args.out}")


if __name__ == "__main__":
    main()
