"""The published Llama-3.2 width-pruning results as tidy tables (package data).

The figures are those of P. Martra, "Fragile Knowledge, Robust Instruction-Following: The Width
Pruning Dichotomy in Llama-3.2" (arXiv:2512.22671), as released in the result files of its
experiment repository (github.com/peremartra/llama-glu-expansion-pruning, commit 97f9190).
:func:`build_published_tables` turns those files into three tables, which the package ships as
CSV files under ``widthprune/analysis/data/``; :func:`published` reads them back, so nothing
here needs the original files at run time.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from importlib import resources
from pathlib import Path

import pandas as pd

from ..filemodes import ordinary_modes

__all__ = ["CITATION", "KINDS", "build_published_tables", "published", "write_published_tables"]

CITATION = (
    "Martra, P. (2025). Fragile Knowledge, Robust Instruction-Following: The Width Pruning "
    "Dichotomy in Llama-3.2. arXiv:2512.22671. Data: github.com/peremartra/"
    "llama-glu-expansion-pruning @97f9190"
)
CITE = "Martra (2025), arXiv:2512.22671"  # the short form carried by every row
KINDS = {  # kind -> file name under widthprune/analysis/data/
    "benchmarks": "published.csv",
    "efficiency": "published_efficiency.csv",
    "criteria": "published_criteria.csv",
}
# The CodeCarbon figure the repository called "kWh" is kg CO2-eq: energy times this grid factor.
GRID_KG_PER_KWH = 0.3492

_BENCHMARK_FILES = {  # result file -> (model, variant)
    "llama_1b_complete_results_latest.json": ("Llama-3.2-1B", "base"),
    "llama_3b_complete_results_latest.json": ("Llama-3.2-3B", "base"),
    "llama_1b_I_complete_results_latest.json": ("Llama-3.2-1B-Instruct", "instruct"),
}
_CARBON_FILES = {
    "llama_1b_carbon_complete_results_latest.json": "Llama-3.2-1B",
    "llama_3b_carbon_complete_results_latest.json": "Llama-3.2-3B",
}
# Items in each task's evaluation split (lm-eval 0.4 defaults), for binomial standard errors.
_TASK_ITEMS = {
    "mmlu": 14042,
    "arc_challenge": 1172,
    "hellaswag": 10042,
    "winogrande": 1267,
    "piqa": 1838,
    "boolq": 3270,
    "truthfulqa_mc1": 817,
    "truthfulqa_mc2": 817,
    "gsm8k": 1319,
    "leaderboard_musr": 756,
}
_PIQA_NOTE = (
    "the study's own summary mixes PIQA metrics (acc for the baseline, acc_norm for pruned "
    "configurations); both are kept here as lm-eval reported them"
)
# Repository name -> (honest name, unit); kg CO2-eq figures are energy x GRID_KG_PER_KWH
_EFFICIENCY_QUANTITIES = {
    "energy_kwh": ("emissions_net", "kg CO2-eq"),
    "energy_raw_kwh": ("emissions_raw", "kg CO2-eq"),
    "energy_idle_kwh": ("emissions_idle", "kg CO2-eq"),
    "joules_per_token": ("emissions_per_token", "kg CO2-eq x 3.6e6 per token"),
    "throughput": ("throughput", "tokens/s"),
    "ttlt_ms": ("generate_wall_time", "ms per generate() call"),
    "total_new_tokens": ("new_tokens", "tokens"),
    "inference_duration_sec": ("duration", "s"),
}
_SUMMARY_QUANTITIES = {
    "total_energy_kwh": ("emissions_net_total", "kg CO2-eq"),
    "avg_joules_per_token": ("emissions_per_token", "kg CO2-eq x 3.6e6 per token"),
    "avg_throughput_tok_s": ("throughput", "tokens/s"),
    "avg_ttlt_ms": ("generate_wall_time", "ms per generate() call"),
    "model_size_gb": ("model_size", "GB"),
}
_SORT = (
    "model variant pruning_pct criterion notebook_version task metric filter workload run".split()
)
_SORT.append("quantity")
_FIRST = "model variant pruning_pct width hidden_size expansion_ratio parameters".split()
_READ_DTYPES = {c: "Int64" for c in ("batch_size", "num_prompts", "max_new_tokens", "run", "seed")}
_ENERGY_UNITS = {"kg CO2-eq": "kWh", "kg CO2-eq x 3.6e6 per token": "J/token"}


def _architectures(reference: Path) -> pd.DataFrame:
    """One row per (base model id, pruning_pct): width, hidden size and parameters."""
    doc = json.loads((reference / "paper-repo-data/architectures/expansion_rates.json").read_text())
    rows = []
    for m in doc["models"]:
        for pct, arch in (
            (0, m["original_architecture"]),
            (m["pruning_pct"], m["pruned_architecture"]),
        ):
            rows.append(
                {
                    "model": m["base_model"].split("/")[-1],
                    "pruning_pct": pct,
                    "width": arch["intermediate_size"],
                    "hidden_size": arch["hidden_size"],
                    "parameters": arch["total_parameters"],
                }
            )
    arch = pd.DataFrame(rows).drop_duplicates(["model", "pruning_pct"])
    arch["expansion_ratio"] = arch["width"] / arch["hidden_size"]
    return arch


def _items(task: str, metric: str) -> float:
    """Items behind a per-item mean (NaN where the metric is not one, e.g. perplexity)."""
    if "perplexity" in metric or "bits_per_byte" in metric:
        return math.nan
    if task == "ifeval":  # 541 prompts; the instruction-level count is not in the files
        return 541 if metric.startswith("prompt_level") else math.nan
    return _TASK_ITEMS.get(task, math.nan)


def _metric(key: str) -> tuple[str, str]:
    """lm-eval key of the repository's json -> (metric, filter)."""
    name, _, filt = key.partition(",")
    return {"accuracy": "acc"}.get(name, name), filt or "none"


def _benchmarks(reference: Path) -> pd.DataFrame:
    rows = []
    for fname, (model, variant) in _BENCHMARK_FILES.items():
        source = f"paper-repo-data/results/{fname}"
        doc = json.loads((reference / source).read_text())
        shots = {b["name"]: b["num_fewshot"] for b in doc["benchmarks"]}
        for cfg in doc["models_evaluated"].values():
            for task, values in cfg["results"].items():
                for key, value in values.items():
                    if "_stderr" in key or not isinstance(value, (int, float)):
                        continue  # stderr goes with its metric; "N/A" marks an absent metric
                    if task == "lambada_openai" and key != "perplexity" and value == 0.0:
                        continue  # word_perplexity, bits_per_byte: not run, 0.0 in the file
                    metric, filt = _metric(key)
                    name, _, suffix = key.partition(",")
                    stderr = values.get(f"{name}_stderr" + (f",{suffix}" if suffix else ""))
                    rows.append(
                        {
                            "model": model,
                            "variant": variant,
                            "pruning_pct": cfg["pruning_pct"],
                            "task": task,
                            "metric": metric,
                            "filter": filt,
                            "num_fewshot": shots[task],
                            "value": float(value),
                            "stderr": stderr if isinstance(stderr, float) else math.nan,
                            "n": _items(task, metric),
                            "original_metric": key,
                            "hf_repo": cfg["hf_repo"],
                            "note": _PIQA_NOTE if task == "piqa" else "",
                            "source": source,
                        }
                    )
    return pd.DataFrame(rows)


def _quantity_rows(base: dict, original: str, value, table: dict) -> list[dict]:
    """The row of one repository figure under its honest name (none for unlisted figures)."""
    if original not in table or value is None:
        return []
    name, unit = table[original]
    return [
        {**base, "quantity": name, "value": float(value), "unit": unit, "original_name": original}
    ]


def _with_energy(frame: pd.DataFrame) -> pd.DataFrame:
    """Add, for each emissions row, the energy it stands for (the grid factor is a constant)."""
    frame = frame.assign(derived=False)
    scaled = frame[frame["unit"].isin(_ENERGY_UNITS)].copy()
    scaled["quantity"] = scaled["quantity"].str.replace("emissions", "energy")
    scaled["value"] = scaled["value"] / GRID_KG_PER_KWH
    scaled["unit"] = scaled["unit"].map(_ENERGY_UNITS)
    scaled["derived"] = True
    return pd.concat([frame, scaled], ignore_index=True)


def _efficiency(reference: Path) -> pd.DataFrame:
    rows = []
    for fname, model in _CARBON_FILES.items():
        source = fname
        doc = json.loads((reference / "paper-repo-data/results" / fname).read_text())
        tokens = {b["name"]: b["max_new_tokens"] for b in doc["benchmarks"]}
        for cfg in doc["models_evaluated"].values():
            for workload, res in cfg["results"].items():
                excluded = {o["run_key"] for o in res.get("outliers_excluded") or []}
                for run_key, run in res["raw_runs_data"].items():
                    run_no = int(run_key.split("_")[1])
                    base = {
                        "model": model,
                        "pruning_pct": cfg["pruning_pct"],
                        "hf_repo": cfg["hf_repo"],
                        "workload": workload,
                        "batch_size": res["batch_size"],
                        "num_prompts": res["num_prompts"],
                        "max_new_tokens": tokens[workload],
                        "run": run_no,
                        "seed": (42, 123, 456)[run_no - 1],
                        "excluded_by_study": run_key in excluded,
                        "source": source,
                    }
                    for original, value in run.items():
                        rows += _quantity_rows(base, original, value, _EFFICIENCY_QUANTITIES)
        stats = doc["summary_statistics"]
        for summary in [stats["baseline"], *stats["pruned_models"]]:
            base = {
                "model": model,
                "pruning_pct": summary["pruning_pct"],
                "workload": "summary",
                "excluded_by_study": False,
                "source": f"{source} summary_statistics",
            }
            for original, value in summary.items():
                rows += _quantity_rows(base, original, value, _SUMMARY_QUANTITIES)
    frame = pd.DataFrame(rows)
    for col in ("batch_size", "num_prompts", "max_new_tokens", "run", "seed"):
        frame[col] = frame[col].astype("Int64")
    return frame


def _criteria(reference: Path) -> pd.DataFrame:
    source = "derived/paper_neuron_selection_comparison.csv"
    wide = pd.read_csv(reference / source)
    columns = {
        "wikitext_word_ppl": ("wikitext", "word_perplexity"),
        "lambada_openai_ppl": ("lambada_openai", "perplexity"),
        "boolq_acc": ("boolq", "acc"),
        "piqa_acc": ("piqa", "acc"),
        "piqa_acc_norm": ("piqa", "acc_norm"),
    }
    rows = []
    for rec in wide.to_dict("records"):
        for col, (task, metric) in columns.items():
            if pd.isna(rec[col]):
                continue
            rows.append(
                {
                    "model": rec["model"].split("/")[-1],
                    "pruning_pct": rec["pruning_pct"],
                    "criterion": rec["method"],
                    "notebook_version": rec["notebook_version"],
                    "dtype": rec["dtype"],
                    "task": task,
                    "metric": metric,
                    "num_fewshot": rec["lm_eval_fewshot"],
                    "value": float(rec[col]),
                    "source": f"{source}, from {rec['source']}",
                }
            )
    return pd.DataFrame(rows)


def build_published_tables(reference_dir: str | Path) -> dict[str, pd.DataFrame]:
    """Build the three published tables from the study's result files.

    Args:
        reference_dir: folder holding ``paper-repo-data/`` (the repository's files, unchanged)
            and ``derived/`` (the criterion comparison, read from the repository's notebook).

    Returns:
        ``{kind: frame}`` for every kind in :data:`KINDS`, with configuration columns (width,
        expansion_ratio, parameters, hidden_size) joined from the architecture file and a
        ``citation`` column. See :func:`published` for the columns.
    """
    reference = Path(reference_dir)
    if not (reference / "paper-repo-data").is_dir():
        raise FileNotFoundError(f"{reference} has no paper-repo-data/ folder of result files")
    arch = _architectures(reference)
    arch = pd.concat(  # the Instruct model shares the base model's shapes
        [arch, arch[arch.model == "Llama-3.2-1B"].assign(model="Llama-3.2-1B-Instruct")]
    ).drop_duplicates(["model", "pruning_pct"])
    tables = {}
    for kind, builder in (
        ("benchmarks", _benchmarks),
        ("efficiency", _efficiency),
        ("criteria", _criteria),
    ):
        frame = builder(reference).merge(arch, on=["model", "pruning_pct"], how="left")
        if frame[["width", "parameters"]].isna().any().any():
            raise ValueError(f"{kind}: a configuration has no entry in the architecture file")
        frame["citation"] = CITE
        keys = [c for c in _SORT if c in frame]
        order = [c for c in _FIRST if c in frame] + [c for c in frame if c not in _FIRST]
        tables[kind] = frame[order].sort_values(keys, kind="stable").reset_index(drop=True)
    return tables


def _data_dir() -> Path:
    return Path(__file__).parent / "data"


def write_published_tables(
    reference_dir: str | Path, out_dir: str | Path | None = None
) -> list[Path]:
    """Rebuild the CSV files of :data:`KINDS`, atomically, in ``out_dir`` (default: package)."""
    out = Path(out_dir) if out_dir is not None else _data_dir()
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for kind, frame in build_published_tables(reference_dir).items():
        path = out / KINDS[kind]
        fd, tmp = tempfile.mkstemp(dir=out, suffix=".tmp")
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
            frame.to_csv(fh, index=False, lineterminator="\n")
        ordinary_modes(tmp)
        os.replace(tmp, path)
        written.append(path)
    return written


def published(kind: str = "benchmarks") -> pd.DataFrame:
    """The published results as a tidy long table, read from the package's data.

    Args:
        kind: ``"benchmarks"`` (lm-eval scores), ``"efficiency"`` (the energy/latency runs) or
            ``"criteria"`` (the study's comparison of neuron-selection rules on 1B at 10 %).

    Returns:
        Common columns: model (``Llama-3.2-1B``, ``Llama-3.2-3B``, ``Llama-3.2-1B-Instruct``),
        pruning_pct (0 = unpruned), width (MLP intermediate size), hidden_size,
        expansion_ratio (width / hidden_size, exact), parameters (total, tied embeddings once),
        value, source (file under the reference folder), citation.

        ``benchmarks``, one row per model x configuration x task x metric x filter: variant
        (base / instruct), task, metric (lm-eval name; the repository's "accuracy" is ``acc``),
        filter, num_fewshot, stderr (NaN where the files give none), n (items of the split, NaN
        for perplexities), original_metric (the key in the json), hf_repo, note (flags the
        PIQA acc / acc_norm mixing of the study's summary). Lambada's word_perplexity and
        bits_per_byte were not run (the files hold 0.0) and are left out.

        ``efficiency``, one row per model x configuration x workload x run x quantity (plus
        ``workload == "summary"`` rows: the study's averages over the six workloads):
        hf_repo (as recorded; the 1B baseline row names the Instruct model), workload,
        batch_size, num_prompts, max_new_tokens, run, seed, excluded_by_study (the study left
        this run out of its mean), quantity, unit, derived, original_name. The repository's
        "kWh" figures are CodeCarbon emissions in kg CO2-eq (energy x 0.3492): they appear as
        ``emissions_*`` as reported and as ``energy_*`` (derived, divided by 0.3492). Its "TTFT"
        / "ttlt_ms" is the wall time of a whole ``generate()`` call: ``generate_wall_time``.

        ``criteria``: criterion (the study's names: MAW, PPM, VOW, PON, L2, Base),
        notebook_version, dtype, task, metric, num_fewshot.
    """
    if kind not in KINDS:
        raise ValueError(f"unknown kind {kind!r}; valid: {sorted(KINDS)}")
    with resources.as_file(resources.files(__package__) / "data" / KINDS[kind]) as path:
        frame = pd.read_csv(path, dtype=_READ_DTYPES)
    if "note" in frame:
        frame["note"] = frame["note"].fillna("")
    return _with_energy(frame) if kind == "efficiency" else frame
