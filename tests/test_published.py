"""The published table: complete, consistent with the shapes, and rebuilt identically."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats as st

import widthprune as wp
from widthprune.analysis.published import (
    KINDS,
    build_published_tables,
    published,
    write_published_tables,
)

REFERENCE = Path("/work/shared/reference")
WIDTHS = [8192, 7373, 6554, 5735, 4916, 4096, 3277]


def _pair(bench: pd.DataFrame, model: str, task: str) -> np.ndarray:
    rows = bench[(bench.model == model) & (bench.task == task) & (bench.metric == "acc")]
    return rows.sort_values("pruning_pct")["value"].to_numpy()


def test_headline_correlation_reproduced():
    bench = published()
    res = st.pearsonr(
        _pair(bench, "Llama-3.2-3B", "mmlu"), _pair(bench, "Llama-3.2-3B", "truthfulqa_mc2")
    )
    assert round(res.statistic, 3) == -0.864
    assert round(res.pvalue, 3) == 0.012


def test_every_configuration_and_width():
    bench = published()
    pcts = bench.groupby("model")["pruning_pct"].unique().map(sorted).to_dict()
    assert pcts == {
        "Llama-3.2-1B": [0, 10, 20, 30, 40, 50, 60],
        "Llama-3.2-3B": [0, 10, 20, 30, 40, 50, 60],
        "Llama-3.2-1B-Instruct": [0, 10, 40, 60],
    }
    for model in ("Llama-3.2-1B", "Llama-3.2-3B"):
        widths = bench[bench.model == model].groupby("pruning_pct")["width"].unique()
        assert [w for (w,) in widths] == WIDTHS
    ratio = bench[(bench.model == "Llama-3.2-3B") & (bench.pruning_pct == 10)]["expansion_ratio"]
    assert ratio.iloc[0] == pytest.approx(7373 / 3072)


def test_parameters_match_the_shapes():
    bench = published().drop_duplicates(["model", "pruning_pct"])
    for row in bench.itertuples():
        shape = wp.get_shape("llama-3.2-3b" if "3B" in row.model else "llama-3.2-1b")
        assert row.parameters == wp.count_shape_parameters(shape, row.width)


def test_metrics_kept_as_reported():
    bench = published()
    piqa = bench[
        (bench.model == "Llama-3.2-3B") & (bench.task == "piqa") & (bench.pruning_pct == 0)
    ]
    assert piqa.set_index("metric")["value"].to_dict() == {"acc": 0.7677, "acc_norm": 0.7748}
    assert (piqa["note"].str.contains("acc_norm")).all()
    ifeval = bench[(bench.model == "Llama-3.2-1B-Instruct") & (bench.pruning_pct == 40)]
    strict = ifeval[ifeval.metric == "prompt_level_strict_acc"].iloc[0]
    assert (strict.value, strict.stderr, strict.num_fewshot) == (0.146, 0.0152, 0)
    mmlu = bench[bench.task == "mmlu"]
    assert set(mmlu.num_fewshot) == {5} and mmlu.stderr.isna().all()
    # lambada's zero placeholders are not scores
    assert set(bench[bench.task == "lambada_openai"].metric) == {"perplexity"}


def test_binomial_n_agrees_with_reported_stderr():
    bench = published()
    rows = bench[(bench.task.isin(["gsm8k", "ifeval"])) & bench.stderr.notna() & bench.n.notna()]
    binom = np.sqrt(rows.value * (1 - rows.value) / rows.n)
    assert len(rows) > 50
    np.testing.assert_allclose(binom, rows.stderr, atol=6e-4)


def test_efficiency_units_are_honest():
    eff = published("efficiency")
    net = eff[(eff.quantity == "emissions_net") & (eff.model == "Llama-3.2-1B") & (eff.run == 1)]
    row = net[(net.pruning_pct == 0) & (net.workload == "hellaswag_latency_b1")].iloc[0]
    assert row.unit == "kg CO2-eq" and row.original_name == "energy_kwh"
    assert row.value == pytest.approx(3.331158857837227e-05)
    energy = eff[eff.quantity == "energy_net"]
    pair = energy.merge(net, on=["model", "pruning_pct", "workload", "run"], suffixes=("", "_r"))
    np.testing.assert_allclose(pair.value * 0.3492, pair.value_r)
    wall = eff[eff.quantity == "generate_wall_time"]
    assert set(wall.original_name) == {"ttlt_ms", "avg_ttlt_ms"}
    # 2 models x 7 configs x 6 workloads x 3 runs
    runs = eff[(eff.quantity == "throughput") & (eff.workload != "summary")]
    assert len(runs) == 2 * 7 * 6 * 3


def test_unknown_kind_names_the_valid_ones():
    with pytest.raises(ValueError, match="benchmarks"):
        published("bench")


def test_rebuild_is_identical(tmp_path):
    if not REFERENCE.is_dir():
        pytest.skip(f"the published result files are not at {REFERENCE}")
    write_published_tables(REFERENCE, tmp_path)
    data = Path(wp.__file__).parent / "analysis" / "data"
    for name in KINDS.values():
        assert (tmp_path / name).read_bytes() == (data / name).read_bytes(), name
    tables = build_published_tables(REFERENCE)
    assert set(tables) == set(KINDS)


def test_cli_prints_and_rebuilds(tmp_path, capsys):
    from widthprune.cli import main

    assert main(["published", "--kind", "criteria"]) == 0
    printed = capsys.readouterr().out
    assert printed.splitlines()[0].startswith("model,pruning_pct,width,hidden_size")
    assert "PPM" in printed and printed.count("\n") == len(published("criteria")) + 1
    assert main(["published", "--rebuild", str(tmp_path)]) == 2
    assert "no paper-repo-data" in capsys.readouterr().err
