"""Sweeps as jobs of submitit's local executor: real subprocesses, one configuration each.

A killed job fails alone and its resubmission recomputes nothing else; two jobs of one
configuration, each on its own GPU slot, compute it once (the store's lock serialises them);
and the executors' options are checked before anything is submitted.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
from clusterkit import ROOT, descendants, lock_held, record, states, sweep_args, wait_for, workdir
from tqdm.auto import tqdm

from widthprune.cli import main
from widthprune.runs import store
from widthprune.runs.config import EvalConfig
from widthprune.runs.engines import gpu_slots
from widthprune.runs.executors import (
    ExecutorConfig,
    JobTask,
    parse_minutes,
    run_job,
    run_jobs,
    run_point,
)
from widthprune.runs.jobs import JobsRecord


def test_time_limits_read_as_slurm_writes_them():
    assert [parse_minutes(t) for t in ("90", "1:30", "02:00:00", "1-00", "1-2:30", 45)] == [
        90,
        2,
        120,
        1440,
        1590,
        45,
    ]
    for bad in ("abc", "0", "1:2:3:4", "-5"):
        with pytest.raises(ValueError, match="time"):
            parse_minutes(bad)


def test_gpu_slots_are_disjoint_and_whole():
    assert gpu_slots((0, 1, 2, 3), 1) == [(0,), (1,), (2,), (3,)]
    assert gpu_slots((0, 1, 2, 3), 2) == [(0, 1), (2, 3)]
    assert gpu_slots((4, 6, 7), 2) == [(4, 6)]  # a GPU left over is not half a slot
    assert gpu_slots((0,), 2) == []


def test_executor_options_are_checked_before_anything_runs(monkeypatch, capsys):
    with pytest.raises(ValueError, match="slurm executor only"):
        ExecutorConfig(kind="local", partition="gpu")
    with pytest.raises(ValueError, match="local and slurm executors only"):
        ExecutorConfig(gpus_per_job=1)
    with pytest.raises(ValueError, match="executor must be one of"):
        ExecutorConfig(kind="ray")
    local = ExecutorConfig(kind="local")
    assert local.resolved({"cpu"}).gpus_per_job == 0
    with pytest.raises(ValueError, match="numbered from 0"):
        local.resolved({"cuda:1"})
    with pytest.raises(ValueError, match="device is"):
        ExecutorConfig(kind="local", gpus_per_job=1).resolved({"cpu"})
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    with pytest.raises(ValueError, match="this host shows 0"):
        local.resolved({"cuda"})
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1")
    assert local.resolved({"cuda"}).gpus_per_job == 1  # one GPU a job by default
    monkeypatch.setenv("PATH", "")
    with pytest.raises(ValueError, match="sbatch is not on PATH"):
        ExecutorConfig(kind="slurm").resolved({"cuda"})
    for argv, expected in (
        (["sweep", "--executor", "local", "--partition", "gpu"], "slurm executor only"),
        (["sweep", "--executor", "slurm", "--time", "soon"], "time must be"),
        (["sweep", "--executor", "local", "--max-jobs", "0"], "max_jobs"),
        (["sweep", "--status", "no-such-run"], "No sweep record"),
    ):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert expected in err and "Traceback" not in err


def test_local_sweep_killed_job_is_resubmitted_alone(tmp_path):
    folder = workdir(tmp_path)
    run = "local-toy"
    args = sweep_args(run, "--executor", "local", "--max-jobs", "2")
    sweep = subprocess.Popen(args, cwd=folder, stdout=subprocess.PIPE, text=True)
    target = wait_for(lambda: record(folder, run).get("ppm-ratio3", {}).get("job_id"), 120, "ids")
    entry = record(folder, run)["ppm-ratio3"]
    # a second sweep of the same run refuses while the first one's jobs run
    clash = subprocess.run(args, cwd=folder, capture_output=True, text=True)
    assert clash.returncode == 2 and "still has configurations queued or running" in clash.stderr
    lock = folder / "results" / run / ".locks" / f"{entry['config_id']}.lock"
    wait_for(lambda: lock_held(lock), 300, "the ppm job to hold its configuration's lock")
    processes = [int(target), *descendants(int(target))]  # the job's controller and worker
    assert len(processes) >= 2
    for pid in processes:
        os.kill(pid, signal.SIGKILL)
    out, _ = sweep.communicate(timeout=600)
    assert sweep.returncode == 1, out
    assert "1 run now, 1 failed" in out and f"FAILED toy ppm-ratio3 (job {target})" in out
    assert "died without writing a result (killed?)" in out and "log: " in out
    status = subprocess.run(args[:4] + ["--status", run], cwd=folder, capture_output=True)
    assert states(status.stdout.decode()) == {"baseline": "done", "ppm-ratio3": "failed"}

    first = record(folder, run)
    baseline = folder / "results" / run / first["baseline"]["config_id"] / "COMPLETE"
    stamp = (baseline.stat().st_ino, baseline.stat().st_mtime_ns)
    again = subprocess.run(args, cwd=folder, capture_output=True, text=True)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "1 already stored, 1 run now, 0 failed" in again.stdout
    second = record(folder, run)
    assert second["baseline"]["job_id"] == first["baseline"]["job_id"]  # not submitted again
    assert second["ppm-ratio3"]["job_id"] not in (target, None)
    logs = folder / "book/generated/sweep" / run / "logs"
    assert len(list(logs.glob("*_submitted.pkl"))) == 3  # two jobs, then one
    assert (baseline.stat().st_ino, baseline.stat().st_mtime_ns) == stamp  # not recomputed
    assert store.is_complete(lock.parent.parent / entry["config_id"])
    history = json.loads((logs.parent / "sweep.json").read_text())["history"]
    assert [[p["status"] for p in h["points"]] for h in history] == [
        ["done", "failed"],
        ["stored", "done"],
    ]


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _local_sweep_at_work(folder: Path, run: str):
    """``widthprune sweep --executor local`` of the toy, once its ppm job holds its lock.

    Returns the sweep's process, its arguments, the ppm job's id, its jobs.json entry and lock.
    """
    args = sweep_args(run, "--executor", "local", "--max-jobs", "2")
    sweep = subprocess.Popen(args, cwd=folder, stdout=subprocess.PIPE, text=True)
    target = wait_for(lambda: record(folder, run).get("ppm-ratio3", {}).get("job_id"), 120, "ids")
    entry = record(folder, run)["ppm-ratio3"]
    lock = folder / "results" / run / ".locks" / f"{entry['config_id']}.lock"
    wait_for(lambda: lock_held(lock), 300, "the ppm job to hold its configuration's lock")
    return sweep, args, target, entry, lock


def test_a_killed_job_wrapper_stops_its_job_and_the_record_matches_the_store(tmp_path):
    # widthprune sweep --executor local ..., then SIGKILL of one job's submitit controller
    folder = workdir(tmp_path)
    run = "wrapper-killed"
    sweep, args, target, entry, lock = _local_sweep_at_work(folder, run)
    under = descendants(int(target))  # the job's worker (and a report's kernel, if any)
    assert len(under) >= 1
    try:
        os.kill(int(target), signal.SIGKILL)  # the wrapper only
        out, _ = sweep.communicate(timeout=600)
        left = [pid for pid in under if _alive(pid)]
        assert left == [], f"the given-up job's processes run on: {left}"
        recorded = record(folder, run)["ppm-ratio3"]["state"]
        stored = store.is_complete(Path(entry["result"]))
        assert recorded == ("done" if stored else "failed"), (recorded, stored, out)
        assert sweep.returncode == (0 if stored else 1), out
        status = subprocess.run(args[:4] + ["--status", run], cwd=folder, capture_output=True)
        assert states(status.stdout.decode())["ppm-ratio3"] == recorded
    finally:
        for pid in under:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def test_two_jobs_of_one_configuration_compute_it_once(tmp_path):
    point = EvalConfig(criterion="ppm", expansion_ratio=3.0, limit=2)
    result = store.result_folder(point, "lock", tmp_path / "results")
    paths = dict(source=str(ROOT / "notebooks" / "04_evaluate.ipynb"), cwd=str(tmp_path))
    paths["results_dir"] = str(tmp_path / "results")
    args = (dataclasses.asdict(point), "lock")
    tasks = [
        JobTask(k, k, *args, {**paths, "output": str(tmp_path / f"{k}.ipynb")}, point.config_id)
        for k in "ab"
    ]
    jobs = JobsRecord(tmp_path / "jobs.json")
    entry = dict(model="toy", result=str(result), state="queued")
    entries = [dict(config_id=k, label=k, **entry) for k in "ab"]
    jobs.start("lock", "local", entries, tmp_path / "results")
    executor = ExecutorConfig(kind="local", gpus_per_job=1, poll_s=1)
    with tqdm(total=2) as bar:  # two GPU slots: both jobs start at once
        outcomes = run_jobs(tasks, executor, tmp_path / "logs", jobs, bar, visible=(0, 1))
    assert {k: o["state"] for k, o in outcomes.items()} == {"a": "done", "b": "done"}
    gpus = [JobsRecord(tmp_path / "jobs.json").entries[k]["gpus"] for k in "ab"]
    assert sorted(gpus) == ["0", "1"]  # each job saw its own slot as CUDA_VISIBLE_DEVICES
    assert store.is_complete(result)
    logs = {k: Path(outcomes[k]["log"]).read_text() for k in "ab"}  # the jobs' stderr
    computed = [k for k, text in logs.items() if "Running loglikelihood requests" in text]
    waited = [k for k, text in logs.items() if "waiting for another process holding" in text]
    assert len(computed) == 1 and waited == [k for k in "ab" if k not in computed], logs


def test_the_job_function_pickles_by_reference():
    import pickle

    import cloudpickle

    for function in (run_point, run_job):
        data = cloudpickle.dumps(function)
        assert pickle.loads(data) is function and b"widthprune.runs.executors" in data
        assert len(data) < 200  # a name to import on the node, not the function's code


def test_a_cancelled_job_stops_at_sigterm_and_stores_nothing(tmp_path):
    # scancel sends SIGTERM, which submitit only logs: the job must not compute on and store
    folder = workdir(tmp_path)
    run = "cancelled"
    sweep, args, target, entry, lock = _local_sweep_at_work(folder, run)
    worker = descendants(int(target))[0]  # the process that runs run_job
    os.kill(worker, signal.SIGTERM)
    t0 = time.monotonic()
    wait_for(lambda: not _alive(worker), 30, "the cancelled job to stop")
    stopped_after = time.monotonic() - t0
    out, _ = sweep.communicate(timeout=600)
    assert stopped_after < 5, stopped_after  # not the job's remaining evaluation
    assert sweep.returncode == 1, out
    assert "1 run now, 1 failed" in out and "the job was cancelled (signal 15)" in out, out
    assert not store.is_complete(Path(entry["result"])) and not lock_held(lock)


def test_states_follow_the_processes_and_the_record(tmp_path):
    from widthprune.runs.jobs import live_states, process_start

    sweeper = subprocess.Popen(["sleep", "60"])  # stands for a sweep still waiting on its jobs
    job = subprocess.Popen(["sleep", "60"])  # and for a local job's controller
    ended = subprocess.Popen(["true"])
    ended.wait()  # a job that is over
    result = str(tmp_path / "results" / "r" / "0123456789ab")  # never complete here
    path = tmp_path / "jobs.json"
    common = dict(model="toy", result=result)
    entries = [
        dict(common, config_id="waiting", label="waiting", state="queued"),
        dict(common, config_id="running", label="running", state="running", job_id=str(job.pid)),
        dict(common, config_id="failed", label="failed", state="failed", error="boom"),
    ]
    entries[2]["job_id"] = str(ended.pid)
    entries[1]["job_start"] = process_start(job.pid)
    jobs = JobsRecord(path)
    jobs.start("r", "local", entries, tmp_path)
    jobs.data["sweep"].update(pid=sweeper.pid, start=process_start(sweeper.pid))
    jobs.save()

    def now():
        return {r["label"]: (r["state"], r["reason"]) for r in live_states(JobsRecord(path))}

    assert now() == {
        "waiting": ("queued", ""),  # its sweep, alive, has not submitted it yet
        "running": ("running", ""),
        "failed": ("failed", "boom"),
    }
    for process in (sweeper, job):
        process.kill()
        process.wait()
    gone = now()
    assert gone["waiting"][0] == "not submitted" and "no longer running" in gone["waiting"][1]
    assert gone["running"][0] == "failed" and "without a complete result" in gone["running"][1]
    jobs = JobsRecord(path)
    jobs.data["executor"] = "inline"
    jobs.data["points"]["running"].pop("job_id")
    jobs.save()
    assert now()["running"] == ("failed", "the sweep stopped while running it")
    jobs.data["sweep"]["host"] = "another-host"
    jobs.save()
    assert now()["running"] == ("running", "as recorded by the sweep on another-host")
