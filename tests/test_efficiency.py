"""Fixed-length generation, the energy meter, measurement schema and roofline arithmetic."""

from __future__ import annotations

import math
import sys
import types

import numpy as np
import pandas as pd
import pytest
import torch

from widthprune.efficiency.energy import EnergyMeter, correct_published_energy, relative_energy
from widthprune.efficiency.generation import StaticGenerator, generate_plain
from widthprune.efficiency.roofline import (
    aligned_neighbours,
    alignment_table,
    copy_bandwidth,
    decompose_published_latency,
    kv_bytes_per_token,
    marginal_bandwidth,
    model_weight_bytes,
    roofline_table,
    weight_bytes,
)
from widthprune.efficiency.timing import (
    COLUMNS,
    BenchSettings,
    load_measurements,
    measure,
    run_window,
)

N = 9  # new tokens in the generation tests


def test_plain_generation_ignores_eos(tiny_model, input_ids):
    # make the first greedy token of row 0 the EOS token: plain generate would stop at once
    first = tiny_model.generate(input_ids, max_new_tokens=1, do_sample=False)[0, -1].item()
    tiny_model.config.eos_token_id = tiny_model.generation_config.eos_token_id = first
    free = tiny_model.generate(input_ids, max_new_tokens=N, do_sample=False, pad_token_id=0)
    assert (free[0, input_ids.shape[1] :] == first).any()  # EOS was emitted
    out = generate_plain(tiny_model, input_ids, N)
    assert out.shape == (3, N)
    assert not (out == first).any()  # suppressed until the length is reached: none stopped


def test_static_path_equals_plain_generate(tiny_model, input_ids):
    tiny_model.generation_config.eos_token_id = None
    plain = generate_plain(tiny_model, input_ids, N)
    gen = StaticGenerator(tiny_model, 3, input_ids.shape[1], N, graph=False)
    fast = gen.generate(input_ids).clone()
    assert fast.shape == (3, N)
    assert torch.equal(fast, plain)
    other = torch.flip(input_ids, dims=[1])
    gen.generate(other)  # the cache and positions restart with each prompt
    assert torch.equal(gen.generate(input_ids), plain)


def test_static_generator_rejects_bad_input(tiny_model, input_ids):
    with pytest.raises(ValueError, match="CUDA graphs need a CUDA device"):
        StaticGenerator(tiny_model, 3, 11, N, graph=True)
    gen = StaticGenerator(tiny_model, 3, 11, N, graph=False)
    with pytest.raises(ValueError, match=r"built for \(3, 11\)"):
        gen.prefill(input_ids[:, :5])


def test_energy_meter_without_nvml_package(monkeypatch):
    monkeypatch.setitem(sys.modules, "pynvml", None)  # import pynvml -> ImportError
    meter = EnergyMeter(0)
    assert not meter.available
    assert "not installed" in meter.reason
    assert math.isnan(meter.read_joules()) and math.isnan(meter.idle_power(0.0))


def _fake_nvml(init_error: Exception | None = None, counter_mj=(1000, 1500)):
    readings = iter(counter_mj)
    fake = types.ModuleType("pynvml")

    def init():
        if init_error is not None:
            raise init_error

    fake.nvmlInit = init
    fake.nvmlDeviceGetHandleByIndex = lambda i: f"handle{i}"
    fake.nvmlDeviceGetTotalEnergyConsumption = lambda h: next(readings)
    fake.nvmlDeviceGetName = lambda h: b"Fake GPU"
    fake.nvmlSystemGetDriverVersion = lambda: "1.2.3"
    return fake


def test_energy_meter_init_failure(monkeypatch):
    monkeypatch.setitem(sys.modules, "pynvml", _fake_nvml(RuntimeError("driver not loaded")))
    meter = EnergyMeter(0)
    assert not meter.available
    assert "driver not loaded" in meter.reason
    assert math.isnan(meter.read_joules())


def test_energy_meter_reads_millijoules(monkeypatch):
    monkeypatch.setitem(sys.modules, "pynvml", _fake_nvml(counter_mj=(7, 12_345, 20_000)))
    meter = EnergyMeter(0)  # the first reading (7) is the support probe
    assert meter.available and meter.reason == ""
    assert meter.gpu_name == "Fake GPU" and meter.driver == "1.2.3"
    assert meter.read_joules() == pytest.approx(12.345)
    assert meter.read_joules() == pytest.approx(20.0)
    assert EnergyMeter(None).reason.startswith("no GPU")


def test_run_window_meets_runs_and_seconds(monkeypatch):
    monkeypatch.setitem(sys.modules, "pynvml", _fake_nvml(counter_mj=(0, 2_000, 7_000)))
    calls = []
    window = run_window(
        lambda: calls.append(1) or {"request": 0.001},
        meter=EnergyMeter(0),
        min_runs=4,
        min_seconds=0.02,
        device=torch.device("cpu"),
    )
    assert len(calls) >= 4 and len(window.phases["request"]) == len(calls)
    assert window.seconds >= 0.02
    assert window.joules == pytest.approx(5.0)


def test_measure_returns_documented_schema(tiny_model):
    settings = BenchSettings(prompt_len=7, new_tokens=5, min_runs=2, min_window_s=0.0)
    meter = EnergyMeter(None)
    plain = measure(
        tiny_model, shape="tiny", batch=2, path="hf_generate", settings=settings, meter=meter
    )
    static = measure(
        tiny_model, shape="tiny", batch=2, path="static_cudagraph", settings=settings, meter=meter
    )
    for frame in (plain, static):
        assert list(frame.columns) == COLUMNS
        assert (
            frame[["width", "batch", "prompt_len", "new_tokens"]].iloc[0] == [37, 2, 7, 5]
        ).all()
    v = plain.set_index("metric")
    assert set(v.index) == {
        "ttft",
        "tpot",
        "request_time",
        "throughput",
        "energy_per_token",
        "energy_per_token_net",
        "power",
    }
    for metric in ("ttft", "request_time", "throughput"):
        assert v.loc[metric, "value"] > 0 and v.loc[metric, "reason"] == ""
        assert v.loc[metric, "n"] >= 2
    assert v.loc["throughput", "value"] == pytest.approx(
        2 * 5 / v.loc["request_time", "value"] * 1e3
    )
    assert v.loc["ttft", "unit"] == "ms" and v.loc["energy_per_token", "unit"] == "J/token"
    energy = plain[plain["unit"].isin(["J/token", "W"])]
    assert energy["value"].isna().all() and (energy["reason"].str.startswith("no GPU")).all()
    # on a CPU the graph path says why it did not run, and the eager loop is named as such
    graph = static[static["path"] == "static_cudagraph"]
    assert graph["value"].isna().all() and graph["reason"].str.contains("CUDA graph").all()
    eager = static[static["path"] == "static_eager"].set_index("metric")
    assert eager.loc["tpot", "value"] > 0 and eager.loc["tpot", "n"] >= 2
    compiled = measure(
        tiny_model, shape="tiny", batch=2, path="compiled_cudagraph", settings=settings, meter=meter
    )
    assert set(compiled["path"]) == {"compiled_cudagraph"}  # no other loop under its name
    assert compiled["value"].isna().all() and compiled["reason"].str.contains("failed").all()
    with pytest.raises(ValueError, match="valid paths"):
        measure(tiny_model, shape="t", batch=1, path="compiled", settings=settings, meter=meter)


def test_results_survive_a_csv_round_trip(tiny_model, tmp_path):
    settings = BenchSettings(prompt_len=7, new_tokens=3, min_runs=1, min_window_s=0.0)
    frame = measure(
        tiny_model,
        shape="tiny",
        batch=1,
        path="hf_generate",
        settings=settings,
        meter=EnergyMeter(None),
    )
    frame.to_csv(tmp_path / "r.csv", index=False)
    back = load_measurements(tmp_path / "r.csv")
    assert back["width"].dtype == "Int64" and back["batch"].tolist() == [1] * len(frame)
    pd.testing.assert_frame_equal(back.astype(frame.dtypes.to_dict()), frame)
    pd.DataFrame({"x": [1]}).to_csv(tmp_path / "bad.csv", index=False)
    with pytest.raises(ValueError, match="missing columns"):
        load_measurements(tmp_path / "bad.csv")


def test_bench_settings_validate():
    with pytest.raises(ValueError, match="new_tokens >= 2"):
        BenchSettings(new_tokens=1)


def test_weight_and_kv_bytes_by_hand(tiny_model):
    # 1B: per layer q 2048*2048, k and v 2*2048*512, o 2048*2048, mlp 3*2048*8192, 2 norms
    layer = 2048 * 2048 + 2 * 2048 * 512 + 2048 * 2048 + 3 * 2048 * 8192 + 2 * 2048
    params = 16 * layer + 2048 + 128_256 * 2048  # + final norm + tied embedding
    assert params == 1_235_814_400
    assert weight_bytes("llama-3.2-1b") == 2 * params
    assert weight_bytes("llama-3.2-1b", 4096) == 2 * (params - 16 * 3 * 2048 * 4096)
    assert kv_bytes_per_token("llama-3.2-1b") == 2 * 16 * 8 * 64 * 2
    assert model_weight_bytes(tiny_model) == 4 * sum(
        p.numel() for n, p in tiny_model.named_parameters() if n != "lm_head.weight"
    )


def test_roofline_table_by_hand():
    row = {
        "device": "gpu",
        "shape": "llama-3.2-1b",
        "batch": 1,
        "prompt_len": 512,
        "new_tokens": 128,
        "path": "static_cudagraph",
        "metric": "tpot",
    }
    results = pd.DataFrame(
        [{**row, "width": 8192, "value": 2.0}, {**row, "width": 4096, "value": 1.5}]
    )
    t = roofline_table(results, bandwidth=2e12).set_index("width")
    kv = 1 * (512 + 64) * 32_768  # batch * mean live context * bytes per token
    full, half = 2_471_628_800 + kv, 2_471_628_800 - 2 * 16 * 3 * 2048 * 4096 + kv
    assert t.loc[8192, "roofline_ms"] == pytest.approx(full / 2e12 * 1e3)
    assert t.loc[4096, "moved_gb"] == pytest.approx(half / 1e9)
    assert t.loc[8192, "pct_of_roofline"] == pytest.approx(100 * full / 2e12 * 1e3 / 2.0)
    assert t.loc[4096, "speedup"] == pytest.approx(2.0 / 1.5)
    assert t.loc[4096, "ideal_speedup"] == pytest.approx(full / half)
    assert t.loc[4096, "speedup_vs_ideal"] == pytest.approx((2.0 / 1.5) / (full / half))
    assert t.loc[8192, "speedup"] == 1.0
    ideal_saved_ms = (full - half) / 2e12 * 1e3
    assert t.loc[4096, "saved_vs_ideal"] == pytest.approx(0.5 / ideal_saved_ms)
    assert math.isnan(t.loc[8192, "saved_vs_ideal"])
    bw_row = {"device": "gpu", "metric": "copy_bandwidth", "value": 2000.0}  # GB/s
    from_rows = roofline_table(pd.concat([results, pd.DataFrame([bw_row])])).set_index("width")
    assert from_rows["roofline_ms"].tolist() == pytest.approx(t["roofline_ms"].tolist())
    with pytest.raises(ValueError, match="copy_bandwidth"):
        roofline_table(results)


def test_marginal_bandwidth_recovers_a_line():
    # tpot = 0.7 ms + bytes / 2.5e12 B/s, exactly
    moved = [2.5e9, 2.0e9, 1.5e9]
    table = pd.DataFrame(
        {
            "width": [8192, 6144, 4096],
            "moved_gb": [m / 1e9 for m in moved],
            "tpot_ms": [0.7 + m / 2.5e12 * 1e3 for m in moved],
        }
    )
    fixed_ms, bandwidth = marginal_bandwidth(table)
    assert fixed_ms == pytest.approx(0.7)
    assert bandwidth == pytest.approx(2.5e12)
    with pytest.raises(ValueError, match="two widths"):
        marginal_bandwidth(table.iloc[:1])


def test_alignment_by_hand():
    assert aligned_neighbours(7373) == (7296, 7424)
    assert aligned_neighbours(4096) == (4096, 4096)
    with pytest.raises(ValueError):
        aligned_neighbours(0)
    base = {"device": "gpu", "shape": "s", "batch": 1, "metric": "ttft", "path": "static_cudagraph"}
    results = pd.DataFrame(
        [{**base, "width": w, "value": v} for w, v in [(7296, 10.0), (7373, 13.0), (7424, 12.0)]]
    )
    t = alignment_table(results)
    assert len(t) == 1
    interp = 10.0 + (7373 - 7296) / 128 * 2.0
    assert t.loc[0, "interpolated"] == pytest.approx(interp)
    assert t.loc[0, "excess_pct"] == pytest.approx(100 * (13.0 / interp - 1))


def test_published_latency_decomposition():
    frame = pd.DataFrame(
        {
            "model": ["A", "A", "A"],
            "pruning_pct": [0, 40, 0],
            "workload": ["w", "w", "throughput_b8"],
            "ttlt_ms": [100.0, 440.0, float("nan")],
            "throughput_tok_s": [50.0, 55.0, 300.0],
        }
    )
    d = decompose_published_latency(frame).set_index(["pruning_pct", "component"])
    assert d.loc[(0, "tokens_per_request"), "value"] == pytest.approx(5.0)
    assert d.loc[(40, "tokens_per_request"), "value"] == pytest.approx(24.2)
    assert d.loc[(40, "ms_per_token"), "ratio"] == pytest.approx(50 / 55)
    r = d["ratio"].xs(40)
    assert r["latency"] == pytest.approx(r["tokens_per_request"] * r["ms_per_token"])
    assert len(d) == 6  # the row without ttlt_ms is dropped
    with pytest.raises(KeyError, match="ttlt_ms"):
        decompose_published_latency(frame.drop(columns="ttlt_ms"))


def test_published_energy_correction():
    frame = pd.DataFrame(
        {"joules_per_token_reported": [0.3492, 0.1746], "energy_kwh_reported": [0.3492e-3, 0.0]}
    )
    out = correct_published_energy(frame)
    assert out["joules_per_token"].tolist() == pytest.approx([1.0, 0.5])
    assert out["energy_kwh"].tolist() == pytest.approx([1e-3, 0.0])
    with pytest.raises(KeyError, match="joules_per_token_reported"):
        correct_published_energy(pd.DataFrame({"x": [1]}))


def test_copy_bandwidth_on_cpu():
    bw = copy_bandwidth("cpu", nbytes=1 << 20, repeats=3)
    assert math.isfinite(bw) and bw > 0


def test_relative_energy_by_hand():
    published = pd.DataFrame(
        {
            "shape": ["s"] * 4,
            "width": [8192, 8192, 4096, 4096],
            "batch_size": [1] * 4,
            "gpu": ["L4"] * 4,
            "joules_per_token": [1.0, 3.0, 1.0, 2.0],
        }
    )
    measured = pd.DataFrame(
        {
            "device": ["H"] * 3,
            "shape": ["s"] * 3,
            "width": [8192, 4096, 4096],
            "batch": [1] * 3,
            "path": ["p"] * 3,
            "value": [0.5, 0.4, float("nan")],
        }
    )
    r = relative_energy(published, measured).set_index(["source", "width"])
    assert r.loc[("study, L4, batch 1", 8192), "joules_per_token"] == 2.0  # workload mean
    assert r.loc[("study, L4, batch 1", 4096), "relative"] == pytest.approx(0.75)
    assert r.loc[("measured, H, p, batch 1", 4096), "relative"] == pytest.approx(0.8)
    assert r.loc[("measured, H, p, batch 1", 4096), "pruning_pct"] == 50.0
    assert relative_energy(published.assign(width=7373), measured)["pruning_pct"].iloc[0] == 10.0
    assert len(r) == 4  # the NaN measurement is dropped


def test_efficiency_plots_draw_their_data():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from widthprune import plotting

    row = {
        "device": "gpu",
        "shape": "llama-3.2-1b",
        "batch": 1,
        "prompt_len": 512,
        "new_tokens": 128,
        "metric": "tpot",
    }
    results = pd.DataFrame(
        [
            {**row, "width": w, "path": p, "value": v}
            for p, k in [("a", 1.0), ("b", 2.0)]
            for w, v in [(8192, 2.0 * k), (7373, 2.2 * k), (4096, 1.5 * k)]
        ]
    )
    table = roofline_table(results, bandwidth=3e12)
    ax = plotting.plot_time_per_token(table)
    dashed = [ln for ln in ax.lines if ln.get_linestyle() == "--" and len(ln.get_xdata())]
    assert len(dashed) == 1  # one roofline for the one batch size
    assert list(dashed[0].get_xdata()) == [4096, 7373, 8192]
    floor = table.drop_duplicates("width").sort_values("width")["roofline_ms"].tolist()
    assert list(dashed[0].get_ydata()) == pytest.approx(floor)
    assert "memory roofline" in [t.get_text() for t in ax.get_legend().get_texts()]
    ax = plotting.plot_roofline_fraction(table)
    assert sorted(round(p.get_height(), 6) for p in ax.patches if p.get_height() > 0) == sorted(
        table["pct_of_roofline"].round(6)
    )
    prefill = results[results["path"] == "a"].assign(metric="ttft")
    ax = plotting.plot_alignment(prefill)
    grey = ax.lines[0]
    assert list(grey.get_xdata()) == [4096, 8192]  # only the multiples of 128 are joined
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels == ["multiple of 128", "unaligned"]
    decomposed = decompose_published_latency(
        pd.DataFrame(
            {
                "model": ["A", "A"],
                "pruning_pct": [0, 40],
                "workload": ["w", "w"],
                "ttlt_ms": [100.0, 400.0],
                "throughput_tok_s": [50.0, 50.0],
            }
        )
    )
    ax = plotting.plot_latency_decomposition(decomposed)
    ys = {tuple(np.round(ln.get_ydata(), 6)) for ln in ax.lines if len(ln.get_xdata()) == 2}
    assert {(1.0, 4.0), (1.0, 1.0)} <= ys  # latency and tokens x4, time per token x1
    energy = pd.DataFrame(
        {
            "source": ["s", "s"],
            "shape": ["x", "x"],
            "width": [8192, 4096],
            "pruning_pct": [0.0, 50.0],
            "joules_per_token": [2.0, 1.5],
            "relative": [1.0, 0.75],
        }
    )
    ax = plotting.plot_energy_comparison(energy)
    assert list(ax.lines[0].get_ydata()) == [1.0, 0.75]
    measured = results.assign(metric="energy_per_token")
    ax = plotting.plot_energy_per_token(measured)
    assert ax.get_yscale() == "log"
    plt.close("all")


def test_published_workloads_average_the_study_runs():
    from widthprune.analysis.published import published
    from widthprune.analysis.workloads import published_workloads

    long = published("efficiency")
    table = published_workloads(long)
    assert len(table) == table[["model", "pruning_pct", "workload"]].drop_duplicates().shape[0]
    row = table.query(
        "model == 'Llama-3.2-1B' and pruning_pct == 0 and workload == 'mmlu_latency_b1'"
    )
    runs = long.query(
        "model == 'Llama-3.2-1B' and pruning_pct == 0 and workload == 'mmlu_latency_b1' "
        "and quantity == 'throughput' and not excluded_by_study"
    )
    assert row["num_runs"].item() == runs["run"].nunique() == len(runs)
    assert row["throughput_tok_s"].item() == pytest.approx(runs["value"].mean())
    assert set(table["shape"]) == {"llama-3.2-1b", "llama-3.2-3b"}
