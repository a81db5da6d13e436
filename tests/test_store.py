"""The results store: config ids, atomic folders, reuse, killed runs, two processes at once."""

from __future__ import annotations

import dataclasses
import gzip
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from evalkit import make_byte_llama, write_tasks

import widthprune as wp
import widthprune.runs.experiment as experiment
import widthprune.runs.store as store
from widthprune.evaluation.metrics import SAMPLE_COLUMNS, SUMMARY_COLUMNS, tidy_summary
from widthprune.runs.config import EvalConfig

SRC = Path(wp.__file__).resolve().parent.parent
FILES = {"config.json", "summary.csv", "samples.jsonl.gz", "provenance.json", "COMPLETE"}

# A child process: evaluate one configuration, logging each real run; optionally hold inside
# the run until a file appears, or hang just before the completion marker is written.
CHILD = """
import json, os, sys, time
import widthprune.runs.experiment as experiment
import widthprune.runs.store as store
from widthprune.runs.config import EvalConfig
config, mode, log, root = EvalConfig(**json.loads(sys.argv[1])), *sys.argv[2:5]
real_run, real_sha = experiment.run_config, store._sha256
def run(c, **kwargs):
    with open(log, "a") as fh:
        fh.write(f"{os.getpid()}\\n")
    while mode == "hold" and not os.path.exists(log + ".go"):
        time.sleep(0.05)
    return real_run(c, **kwargs)
def sha(path):
    if mode == "hang" and ".tmp-" in str(path):
        open(log + ".ready", "w").close()
        time.sleep(600)
    return real_sha(path)
experiment.run_config, store._sha256 = run, sha
res = experiment.evaluate_config(config, run="r", root=root)
print(json.dumps({"id": config.config_id, "values": res.summary["value"].tolist()}))
"""


@pytest.fixture(scope="module")
def configs(model_dir, tasks_dir):
    base = EvalConfig(model=str(model_dir), tasks=("tiny",), include_path=(str(tasks_dir),))
    pruned = dataclasses.replace(base, criterion="ppm", pruning_pct=40)
    return base, pruned


@pytest.fixture(scope="module")
def stored(configs, tmp_path_factory):
    root = tmp_path_factory.mktemp("results")
    for config in configs:
        experiment.evaluate_config(config, run="r", root=root)
    return root


def _child(config: EvalConfig, mode: str, log: Path, root: Path, stderr=None):
    env = {**os.environ, "PYTHONPATH": str(SRC), "HF_HUB_OFFLINE": "1"}
    env["HF_DATASETS_OFFLINE"] = "1"
    args = json.dumps(dataclasses.asdict(config))
    return subprocess.Popen(
        [sys.executable, "-c", CHILD, args, mode, str(log), str(root)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=stderr if stderr is not None else subprocess.DEVNULL,
        text=True,
    )


def _wait_for(predicate, what: str, timeout: float = 120.0):
    end = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > end:
            raise TimeoutError(f"gave up waiting for {what}")
        time.sleep(0.05)


def test_config_id_changes_with_every_result_field(configs, tmp_path):
    base, _ = configs
    other_tasks = write_tasks(tmp_path / "other-tasks")
    (other_tasks / "extra.yaml").write_text("task: unused_extra\n")
    changed = {
        "model": "toy",
        "tasks": ("tiny_text",),
        "num_fewshot": 1,
        "limit": 3,
        "chat_template": True,
        "seed": 1,
        "dtype": "bfloat16",
        "device": "cuda",
        "batch_size": 2,
        "include_path": (str(other_tasks),),
        "engine": "lm-eval",
    }
    ids = {base.config_id}
    for name, value in changed.items():
        ids.add(dataclasses.replace(base, **{name: value}).config_id)
    assert len(ids) == 1 + len(changed)
    # the target counts through the width it gives (byte model: hidden 32, width 37)
    widths = {}
    for target in ({"pruning_pct": 40}, {"expansion_ratio": 0.5}, {"width": 20}):
        for criterion in ("ppm", "l2"):
            config = dataclasses.replace(base, criterion=criterion, **target)
            widths.setdefault(config.resolved_width(), set()).add(config.config_id)
            ids.add(config.config_id)
    assert sorted(widths) == [16, 20, 23] and len(ids) == 1 + len(changed) + 6
    aligned = dataclasses.replace(base, criterion="ppm", width=20, round_to=8)
    assert aligned.resolved_width() == 16
    assert aligned.config_id == dataclasses.replace(base, criterion="ppm", width=16).config_id
    # calibration settings count for a criterion that reads text, and only there
    text = tmp_path / "c.txt"
    text.write_text("some text to calibrate on")
    wanda = dataclasses.replace(base, criterion="wanda", width=20, calibration=str(text))
    for name, value in (("calibration", "toy"), ("calibration_samples", 8), ("seq_len", 32)):
        assert dataclasses.replace(wanda, **{name: value}).config_id != wanda.config_id
        ppm = dataclasses.replace(base, criterion="ppm", width=20)
        assert dataclasses.replace(ppm, **{name: value}).config_id == ppm.config_id
    # recovery counts for a pruned configuration (test_recovery.py checks each of its settings)
    ppm = dataclasses.replace(base, criterion="ppm", width=20)
    assert dataclasses.replace(ppm, recovery="kd:steps=2").config_id != ppm.config_id
    covered = set(changed) | {"criterion", "pruning_pct", "expansion_ratio", "width"}
    covered |= {"round_to", "rounding", "calibration", "calibration_samples", "seq_len"}
    covered |= {"recovery"}
    assert {f.name for f in dataclasses.fields(EvalConfig)} == covered
    # equal values spelled differently are one configuration
    a = dataclasses.replace(base, criterion="ppm", pruning_pct=40, num_fewshot={"x": 1})
    b = dataclasses.replace(base, criterion="ppm", pruning_pct=40.0, num_fewshot=(("x", 1),))
    assert a.config_id == b.config_id and a.label == "ppm-pct40"


def test_config_id_follows_package_versions_and_model_files(configs, model_dir, monkeypatch):
    base, _ = configs
    before = base.config_id
    monkeypatch.setattr("widthprune.runs.config.package_version", lambda p: "0.0-other")
    assert base.config_id != before
    monkeypatch.undo()
    assert base.config_id == before
    copy = model_dir.parent / "byte-model-copy"
    shutil.copytree(model_dir, copy)
    moved = dataclasses.replace(base, model=str(copy))
    first = moved.config_id
    with (copy / "config.json").open("a") as fh:
        fh.write("\n")
    assert dataclasses.replace(base, model=str(copy)).config_id != first


def test_invalid_configs_say_what_is_wrong():
    with pytest.raises(ValueError, match="at most one"):
        EvalConfig(criterion="ppm", pruning_pct=10, expansion_ratio=2.0)
    with pytest.raises(ValueError, match="baseline has neither"):
        EvalConfig(criterion="ppm")
    with pytest.raises(ValueError, match="baseline has neither"):
        EvalConfig(pruning_pct=10)
    with pytest.raises(ValueError, match="dtype"):
        EvalConfig(dtype="float64")


def test_folder_layout_and_round_trip(stored, configs):
    base, pruned = configs
    folder = store.result_folder(pruned, "r", stored)
    assert {p.name for p in folder.iterdir()} == FILES
    identity = json.loads((folder / "config.json").read_text())
    assert identity["id"] == pruned.config_id and identity["request"]["pruning_pct"] == 40.0
    assert identity["config"]["width"] == 23
    assert identity["versions"]["lm_eval"] == "0.4.13"
    provenance = json.loads((folder / "provenance.json").read_text())
    assert provenance["width"] == wp.target_width(make_byte_llama().config, pruning_pct=40)
    assert provenance["prune_report"]["criterion"] == "ppm"
    assert set(provenance["seconds"]) == {"load", "prune", "evaluate", "total"}
    res = experiment.evaluate_config(pruned, run="r", root=stored)
    again = tidy_summary(res.details, res.records)
    pd.testing.assert_frame_equal(res.summary, again)
    with gzip.open(folder / "samples.jsonl.gz", "rt") as fh:
        assert sum(1 for _ in fh) == len(res.records) == 12 + 5


def test_complete_result_is_reused_and_damage_is_redone(stored, configs, tmp_path, monkeypatch):
    base, _ = configs
    root = tmp_path / "results"
    shutil.copytree(stored, root)
    runs = []
    real = experiment.run_config
    monkeypatch.setattr(experiment, "run_config", lambda c, **kw: runs.append(c) or real(c, **kw))
    first = experiment.evaluate_config(base, run="r", root=root)
    assert runs == []
    folder = store.result_folder(base, "r", root)
    with gzip.open(folder / "samples.jsonl.gz", "wt") as fh:  # damaged: one item left
        fh.write(json.dumps(first.records[0]) + "\n")
    redone = experiment.evaluate_config(base, run="r", root=root)
    assert runs == [base]
    pd.testing.assert_frame_equal(redone.summary, first.summary)
    pd.testing.assert_frame_equal(redone.samples, first.samples)
    (folder / "COMPLETE").unlink()  # a folder without its marker is not a result
    with pytest.warns(UserWarning, match=folder.name):
        assert set(wp.load_results("r", root)["config_id"]) == {configs[1].config_id}


def test_load_results_and_samples_are_tidy(stored, configs):
    base, pruned = configs
    frame = wp.load_results("r", stored)
    fields = [f.name for f in dataclasses.fields(EvalConfig)]
    assert list(frame.columns) == [
        "config_id",
        "label",
        *fields,
        "final_width",
        "final_ratio",
        "removed_pct",
        "model_fingerprint",
        "versions",
        "tasks_data",
        "calibration_digest",
        "resolved_dtype",
        *SUMMARY_COLUMNS,
    ]
    assert set(frame["label"]) == {"baseline", "ppm-pct40"}
    widths = frame.groupby("label")["final_width"].first().to_dict()
    assert widths == {"baseline": 37, "ppm-pct40": 23}
    assert frame.query("label == 'baseline'")["pruning_pct"].isna().all()
    samples = wp.load_samples("r", stored)
    assert list(samples.columns) == ["config_id", "label", *SAMPLE_COLUMNS]
    assert len(samples) == 2 * (12 * 2 + 5 * 3)


def test_killed_run_leaves_nothing_complete(configs, tmp_path):
    base, _ = configs
    root, log = tmp_path / "results", tmp_path / "log"
    child = _child(base, "hang", log, root)
    try:
        _wait_for(lambda: Path(f"{log}.ready").exists() or child.poll() is not None, "the write")
        assert child.poll() is None, "the child ended before it was killed"
        child.send_signal(signal.SIGKILL)
        child.wait(30)
    finally:
        child.kill()
    folder = store.result_folder(base, "r", root)
    assert not folder.exists()
    assert len(list((root / "r").glob(f".tmp-{folder.name}-*"))) == 1  # the half-written one
    assert wp.load_results("r", root).empty and wp.load_samples("r", root).empty
    res = experiment.evaluate_config(base, run="r", root=root)  # the lock died with the child
    assert {p.name for p in folder.iterdir()} == FILES
    assert not list((root / "r").glob(".tmp-*"))
    assert set(res.summary["task"]) == {"tiny", "tiny_knowledge", "tiny_text"}


def test_two_processes_on_one_config(configs, tmp_path):
    _, pruned = configs
    root, log = tmp_path / "results", tmp_path / "log"
    errs = [tmp_path / f"{i}.err" for i in range(2)]
    # both start at once; whichever locks first holds inside its run until told to go on
    procs = [_child(pruned, "hold", log, root, stderr=e.open("w")) for e in errs]
    try:
        waiting = "waiting for another process"
        _wait_for(
            lambda: (
                (log.exists() and any(waiting in e.read_text() for e in errs))
                or any(p.poll() is not None for p in procs)
            ),
            "one process to run and the other to block on the lock",
        )
        Path(f"{log}.go").touch()
        outs = [p.communicate(timeout=120)[0] for p in procs]
    finally:
        for proc in procs:
            proc.kill()
    assert [p.returncode for p in procs] == [0, 0]
    assert len(log.read_text().split()) == 1  # one evaluation; the other process reused it
    one, two = (json.loads(o) for o in outs)
    assert one == two
    assert one["id"] == pruned.config_id  # the id is the same in every process
    assert {p.name for p in store.result_folder(pruned, "r", root).iterdir()} == FILES


def test_load_toy_pairs_a_stored_sweep(stored, configs):
    from widthprune.analysis.claims import load_toy, toy_status

    assert load_toy("absent", stored) is None
    assert "skipped" in toy_status(None, "absent")
    results, samples = load_toy("r", stored)
    base, pruned = configs
    # the shared baseline is repeated for the sweep's criterion, at 0 %
    assert set(results["criterion"]) == {"ppm"}
    pcts = results.drop_duplicates("config").set_index("config")["pruning_pct"]
    width = json.loads((stored / "r" / pruned.config_id / "provenance.json").read_text())["width"]
    full = json.loads((stored / "r" / base.config_id / "provenance.json").read_text())["width"]
    assert pcts[base.config_id] == 0.0
    assert pcts[pruned.config_id] == pytest.approx(100 * (1 - width / full))
    assert list(samples.columns) == ["config", "task", "doc_id", "metric", "value"]
    per_config = samples.groupby("config").size()
    assert per_config[base.config_id] == per_config[pruned.config_id] > 0
    assert toy_status((results, samples), "r").startswith("The toy section below analyses")


def test_cli_evaluate_stores_and_reuses(model_dir, tasks_dir, tmp_path, capsys):
    from widthprune.cli import main

    args = ["evaluate", str(model_dir), "--tasks", "tiny", "--include-path", str(tasks_dir)]
    args += ["--criterion", "ppm", "--pct", "40", "--run", "cli", "--root", str(tmp_path)]
    assert main(args) == 0
    first = capsys.readouterr()
    folders = [p for p in (tmp_path / "cli").iterdir() if not p.name.startswith(".")]
    assert len(folders) == 1 and (folders[0] / "COMPLETE").exists()
    assert json.loads((folders[0] / "config.json").read_text())["request"]["pruning_pct"] == 40.0
    assert main(args) == 0  # the stored result is read back, the same table printed
    assert capsys.readouterr().out == first.out
    assert main(["evaluate", str(model_dir), "--pct", "40", "--root", str(tmp_path)]) == 2
    assert "criterion" in capsys.readouterr().err


def test_a_recorded_run_reads_back_as_the_stored_run(stored, tmp_path):
    from widthprune.analysis.claims import load_toy
    from widthprune.analysis.recorded import export_run, recorded_provenance, recorded_run

    out = export_run("r", stored, tmp_path / "rec", provenance={"command": "sweep", "device": "x"})
    results, samples = recorded_run(out)
    live_results, live_samples = load_toy("r", stored)
    order = ["config", "task", "metric", "filter", "criterion"]

    def plain(frame):  # a column that is all None reads back from CSV as NaN
        frame = frame.sort_values(order, ignore_index=True).astype(object)
        return frame.where(frame.notna(), None)

    pd.testing.assert_frame_equal(plain(results), plain(live_results), check_dtype=False)
    keys = ["config", "task", "doc_id", "metric"]
    pd.testing.assert_frame_equal(
        samples.sort_values(keys, ignore_index=True),
        live_samples.sort_values(keys, ignore_index=True),
        check_dtype=False,
    )
    record = recorded_provenance(out)
    assert record["device"] == "x" and record["run"] == "r"
    assert set(record["configurations"]) == set(results["config"])
    with pytest.raises(FileNotFoundError, match="no recorded run"):
        recorded_run(tmp_path / "absent")
    with pytest.raises(FileNotFoundError, match="No run .absent."):
        export_run("absent", stored, tmp_path / "x", provenance={})
