"""A real single-node Slurm cluster for the tests, and helpers to drive a sweep's jobs.

:func:`slurm_cluster` starts munged, slurmctld and slurmd from Debian's packages (slurm-wlm,
munge) in a temporary folder: a fresh munge key, free ports, and a slurm.conf whose node is
this host as ``slurmd -C`` describes it (real name, CPUs and memory). It needs root and the
packages; where either is missing it says why, and the test is skipped (failed under CI, where
.ci/run installs them). Every daemon it started is stopped by its pid at the end.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SLURM_TOOLS = ("slurmctld", "slurmd", "sbatch", "squeue", "scancel", "sinfo", "srun", "munged")


def wait_for(predicate, timeout: float, what: str, poll: float = 0.5):
    """Call ``predicate`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(poll)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def lock_holder(path: Path) -> int | None:
    """The process holding a flock on ``path`` (read from /proc/locks; takes no lock), or None."""
    try:
        inode = str(path.stat().st_ino)
    except FileNotFoundError:
        return None
    for line in Path("/proc/locks").read_text().splitlines():
        fields = line.split()
        if len(fields) > 5 and fields[1] == "FLOCK" and fields[5].rsplit(":", 1)[-1] == inode:
            return int(fields[4])
    return None


def lock_held(path: Path) -> bool:
    """Whether some process holds a flock on ``path``."""
    return lock_holder(path) is not None


def descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (children, their children, ...), from /proc."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def sweep_args(run: str, *extra: str) -> list[str]:
    """``widthprune sweep`` of the toy: its baseline and ppm at ratio 3, two items per task."""
    args = [sys.executable, "-m", "widthprune.cli", "sweep", "--criteria", "ppm"]
    args += ["--ratios", "3.0", "--limit", "2", "--run", run, "--results-dir", "results"]
    return [*args, "--poll", "1", *extra]


def workdir(tmp_path: Path) -> Path:
    """A folder to run the command line in: the chapters beside it, as in the repository."""
    (tmp_path / "notebooks").symlink_to(ROOT / "notebooks")
    return tmp_path


def record(folder: Path, run: str) -> dict:
    """The run's jobs.json, by label ({} before the sweep wrote it)."""
    try:
        data = json.loads((folder / "book/generated/sweep" / run / "jobs.json").read_text())
    except (OSError, ValueError):
        return {}
    return {entry["label"]: entry for entry in data["points"].values()}


def states(status: str) -> dict[str, str]:
    """``widthprune sweep --status`` output as {label: state}."""
    rows = {}
    for line in status.splitlines()[1:]:
        if line.startswith("  ") and not line.startswith("      "):
            rows[line[15:].split()[1]] = line[2:15].strip()
    return rows


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _missing() -> str | None:
    absent = [t for t in SLURM_TOOLS if shutil.which(t) is None]
    if absent:
        return f"Slurm is not installed (no {', '.join(absent)}): apt-get install slurm-wlm munge"
    if os.geteuid() != 0:
        return "the test cluster's slurmd must run as root"
    return None


def _stop(pidfile: Path) -> None:
    try:
        pid = int(pidfile.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    for _ in range(100):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


@contextlib.contextmanager
def slurm_cluster(folder: Path):
    """Start munged, slurmctld and slurmd on this host; yield the environment that reaches it.

    Yields:
        ``os.environ`` plus ``SLURM_CONF`` pointing at the cluster's slurm.conf.

    Raises:
        RuntimeError: with the reason, if Slurm is absent or does not start.
    """
    reason = _missing()
    if reason:
        raise RuntimeError(reason)
    folder.mkdir(parents=True, exist_ok=True)
    folder.chmod(0o700)
    key, sock = folder / "munge.key", folder / "munge.sock"
    key.write_bytes(os.urandom(1024))
    key.chmod(0o400)
    pids = [folder / "munged.pid", folder / "slurmd.pid", folder / "slurmctld.pid"]
    node = subprocess.run(["slurmd", "-C"], capture_output=True, text=True, check=True)
    node_line = node.stdout.splitlines()[0]  # NodeName=<host> CPUs=.. RealMemory=..
    fields = dict(f.split("=", 1) for f in node_line.split())
    host, cpus, memory = fields["NodeName"], int(fields["CPUs"]), int(fields["RealMemory"])
    conf = folder / "slurm.conf"
    conf.write_text(
        "\n".join(
            [
                "ClusterName=widthprune-test",
                f"SlurmctldHost={host}(127.0.0.1)",
                "SlurmUser=root",
                "AuthType=auth/munge",
                "CredType=cred/munge",
                f"AuthInfo=socket={sock}",
                f"SlurmctldPort={_free_port()}",
                f"SlurmdPort={_free_port()}",
                f"StateSaveLocation={folder / 'state'}",
                f"SlurmdSpoolDir={folder / 'spool'}",
                f"SlurmctldPidFile={pids[2]}",
                f"SlurmdPidFile={pids[1]}",
                f"SlurmctldLogFile={folder / 'slurmctld.log'}",
                f"SlurmdLogFile={folder / 'slurmd.log'}",
                "ProctrackType=proctrack/linuxproc",
                "TaskPlugin=task/none",
                "SelectType=select/cons_tres",
                "SelectTypeParameters=CR_Core_Memory",
                f"DefMemPerCPU={memory // cpus}",
                "MpiDefault=none",
                "ReturnToService=2",
                "KillWait=5",
                "AccountingStorageType=accounting_storage/none",
                "JobAcctGatherType=jobacct_gather/none",
                f"{node_line} NodeAddr=127.0.0.1 State=UNKNOWN",
                f"PartitionName=test Nodes={host} Default=YES MaxTime=INFINITE State=UP",
                "",
            ]
        )
    )
    env = {**os.environ, "SLURM_CONF": str(conf)}
    try:
        subprocess.run(
            ["munged", "--force", f"--key-file={key}", f"--socket={sock}"]
            + [f"--pid-file={pids[0]}", f"--log-file={folder / 'munged.log'}"]
            + [f"--seed-file={folder / 'munged.seed'}"],
            check=True,
            capture_output=True,
        )
        for daemon in ("slurmctld", "slurmd"):
            subprocess.run([daemon, "-f", str(conf)], env=env, check=True, capture_output=True)
    except subprocess.CalledProcessError as err:
        _stop_all(pids)
        raise RuntimeError(f"{err.cmd[0]} did not start: {err.stderr.decode().strip()}") from None

    def idle():
        out = subprocess.run(["sinfo", "-h", "-o", "%T"], env=env, capture_output=True)
        return out.stdout.decode().strip() == "idle"

    try:
        try:
            wait_for(idle, 60, "the test node to be idle")
        except AssertionError:
            logs = [folder / n for n in ("slurmctld.log", "slurmd.log", "munged.log")]
            tail = "\n".join(p.read_text()[-1500:] for p in logs if p.exists())
            raise RuntimeError(f"Slurm did not start:\n{tail}") from None
        yield env
    finally:
        subprocess.run(["scancel", "--user", "root"], env=env, capture_output=True)
        _stop_all(pids)


def _stop_all(pidfiles: list[Path]) -> None:
    for pidfile in reversed(pidfiles):
        _stop(pidfile)
