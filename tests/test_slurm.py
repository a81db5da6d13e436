"""A sweep as a Slurm job array on a real single-node cluster: cancel a job, resubmit, resume.

The cluster is Debian's slurm-wlm and munge, started for this module (tests/clusterkit.py).
"""

from __future__ import annotations

import os
import signal
import subprocess
import time

import pytest
from clusterkit import (
    lock_held,
    lock_holder,
    record,
    slurm_cluster,
    states,
    sweep_args,
    wait_for,
    workdir,
)


def _interrupt(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


@pytest.fixture(scope="module")
def slurm(tmp_path_factory):
    # a terminated test run still stops the daemons it started (pytest tears down on ^C)
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        with slurm_cluster(tmp_path_factory.mktemp("slurm")) as env:
            yield env
    except RuntimeError as err:
        if os.environ.get("CI"):  # .ci/run installs Slurm: its absence there is a failure
            pytest.fail(f"Slurm test cluster: {err}")
        pytest.skip(f"no Slurm test cluster: {err}")
    finally:
        signal.signal(signal.SIGTERM, previous)


def test_slurm_sweep_cancelled_job_is_resubmitted_alone(slurm, tmp_path):
    folder = workdir(tmp_path)
    run = "slurm-toy"
    args = sweep_args(run, "--executor", "slurm", "--cpus-per-job", "1", "--mem", "2G")
    args += ["--time", "15", "--array-parallelism", "2", "--slurm-option", "comment=wp-test"]
    events, t0 = [], time.monotonic()

    def event(what: str) -> None:
        events.append((round(time.monotonic() - t0, 1), what))

    def status() -> str:
        out = subprocess.run(
            args[:4] + ["--status", run], cwd=folder, env=slurm, capture_output=True, text=True
        )
        assert out.returncode == 0, out.stderr
        return out.stdout

    sweep = subprocess.Popen(args, cwd=folder, env=slurm, stdout=subprocess.PIPE, text=True)
    try:
        event("submit")
        jobs = wait_for(lambda: record(folder, run).get("ppm-ratio3", {}).get("job_id"), 120, "ids")
        event(f"job ids recorded: ppm-ratio3 is {jobs}")
        target = record(folder, run)["ppm-ratio3"]
        lock = folder / "results" / run / ".locks" / f"{target['config_id']}.lock"
        holder = wait_for(lambda: lock_holder(lock), 300, "the ppm job to hold its lock")
        # frozen mid-evaluation, so that it cannot finish before the cancel reaches it; Slurm
        # sends SIGCONT with the cancel's SIGTERM, and the job stops at SIGTERM
        os.kill(holder, signal.SIGSTOP)
        event(f"job {jobs} frozen (pid {holder}) while it holds the lock")
        assert states(status())["ppm-ratio3"] == "running"
        subprocess.run(["scancel", jobs], env=slurm, check=True)
        event(f"scancel {jobs} while it holds the lock")
        out, _ = sweep.communicate(timeout=600)
    finally:
        if sweep.poll() is None:  # a failed check leaves no sweep behind
            sweep.kill()
            sweep.communicate()
    event(f"first sweep exits {sweep.returncode}")
    assert sweep.returncode == 1, out
    assert "1 run now, 1 failed" in out and f"FAILED toy ppm-ratio3 (job {jobs})" in out
    assert "CANCELLED" in out and "log: " in out  # why, from the last lines of its log
    assert not lock_held(lock)
    now = status()
    assert states(now) == {"baseline": "done", "ppm-ratio3": "failed"}
    assert "CANCELLED" in now  # the reason, from its log
    logs = folder / "book/generated/sweep" / run / "logs"
    assert "#SBATCH --comment=wp-test" in next(logs.glob("*_submission.sh")).read_text()

    first = record(folder, run)
    baseline = folder / "results" / run / first["baseline"]["config_id"] / "COMPLETE"
    stamp = (baseline.stat().st_ino, baseline.stat().st_mtime_ns)
    event("resubmit the same sweep")
    again = subprocess.run(args, cwd=folder, env=slurm, capture_output=True, text=True)
    event(f"resubmitted sweep exits {again.returncode}")
    assert again.returncode == 0, again.stdout + again.stderr
    assert "1 already stored, 1 run now, 0 failed" in again.stdout
    second = record(folder, run)
    assert second["baseline"]["job_id"] == first["baseline"]["job_id"]  # not submitted again
    assert second["ppm-ratio3"]["job_id"] not in (jobs, None)
    assert len(list(logs.glob("*_submission.sh"))) == 2  # the array, then one job
    assert (baseline.stat().st_ino, baseline.stat().st_mtime_ns) == stamp  # not recomputed
    assert states(status()) == {"baseline": "done", "ppm-ratio3": "done"}
    assert (lock.parent.parent / target["config_id"] / "COMPLETE").is_file()
    print("\nSlurm timeline (s since the first submission):")
    for seconds, what in events:
        print(f"  {seconds:7.1f}  {what}")
