"""The record of a sweep's jobs (``jobs.json`` in its run folder) and their live states.

The sweep that submitted the jobs is the record's only writer, and every write is atomic
(temporary file, then rename), so ``widthprune sweep --status`` may read it at any time. A
configuration's state is decided in this order: the results store (a complete result is
``done``); the engine (Slurm's ``squeue``, then ``sacct`` where accounting is kept, or the
process table of this host: ``queued`` or ``running``); then the record (a job that ended
without a complete result is ``failed``, with its log). A configuration waiting in the queue
of a sweep process that is gone is ``not submitted``.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import time
from pathlib import Path

__all__ = [
    "STATES",
    "JobsRecord",
    "engine_reason",
    "live_states",
    "log_tail",
    "process_start",
    "slurm_states",
    "status_report",
]

STATES = ("done", "running", "queued", "failed", "not submitted")
SLURM_QUEUED = {"PENDING", "REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED", "CONFIGURING", "RESIZING"}
SLURM_RUNNING = {"RUNNING", "COMPLETING", "SUSPENDED", "STAGE_OUT", "SIGNALING", "STOPPED"}


def now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


def process_start(pid: int) -> str | None:
    """The start time of process ``pid`` in clock ticks since boot (Linux), to tell a reused
    pid from the process recorded; None where /proc does not say."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]


def _alive(pid: int | None, start: str | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, PermissionError, OSError):
        return False
    return start is None or process_start(pid) in (None, start)


_ENTRY_FIELDS = ("config_id", "label", "model", "result")


def _damage(data) -> str:
    """What is wrong with a parsed record, or "" if it has the record's shape."""
    if not isinstance(data, dict):
        return "not a JSON object"
    points = data.get("points")
    if not isinstance(points, dict) or not all(isinstance(e, dict) for e in points.values()):
        return "its points are not an object of entries"
    for key, entry in points.items():
        missing = [f for f in _ENTRY_FIELDS if f not in entry]
        if missing:
            return f"entry {key!r} lacks {', '.join(missing)}"
    return ""


class JobsRecord:
    """``jobs.json``: the sweep's executor and process, and one entry per configuration.

    Each entry holds label, model, config_id, result (folder), notebook, state, job_id, log,
    error and times; it is keyed by the configuration id.
    """

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.damaged = ""  # why a record that exists cannot be read ("" when it can)
        try:
            text = self.path.read_text()
        except OSError:
            self.data = {}
            return
        try:
            self.data = json.loads(text)
            self.damaged = _damage(self.data)
        except ValueError:
            self.damaged = "not JSON"
        if self.damaged:
            self.data = {}  # a new sweep writes the record afresh

    @property
    def entries(self) -> dict[str, dict]:
        return self.data.get("points", {})

    def start(self, run: str, executor: str, entries: list[dict], results_dir: Path) -> None:
        """Begin a new sweep's record; entries already done keep their earlier job's details."""
        earlier = self.entries
        points = {}
        for entry in entries:
            old = earlier.get(entry["config_id"], {})
            kept = {k: old[k] for k in ("job_id", "log", "gpus", "finished") if k in old}
            points[entry["config_id"]] = {**(kept if entry["state"] == "done" else {}), **entry}
        pid = os.getpid()
        self.data = {
            "run": run,
            "executor": executor,
            "results_dir": str(Path(results_dir).resolve()),
            "sweep": {"pid": pid, "start": process_start(pid), "host": platform.node()},
            "started": now(),
            "points": points,
        }
        self.save()

    def check_idle(self) -> None:
        """Refuse to start a sweep while configurations of its run are queued or running.

        Raises:
            ValueError: naming them and their jobs.
        """
        active = [r for r in live_states(self) if r["state"] in ("queued", "running")]
        if active:
            run = self.data["run"]
            names = ", ".join(f"{r['label']} (job {r.get('job_id')})" for r in active)
            raise ValueError(
                f"run {run!r} still has configurations queued or running: {names}. Follow "
                f"them with `widthprune sweep --status {run}`, or cancel them first."
            )

    def update(self, key: str, **fields) -> None:
        """Change one entry and write the record."""
        self.entries[key].update(fields)
        self.save()

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(self.data, indent=2, default=str) + "\n")
        os.replace(tmp, self.path)


def slurm_states(job_ids: list[str]) -> dict[str, str] | None:
    """Slurm's state of each job (``123`` or array element ``123_4``) it still knows.

    Returns:
        ``{job id: state}`` from squeue (jobs the controller still holds), completed by sacct
        for the others where accounting is kept; None if squeue could not be asked.
    """
    if not job_ids:
        return {}
    import pwd

    bases = sorted({j.split("_")[0] for j in job_ids})
    user = pwd.getpwuid(os.getuid()).pw_name
    command = ["squeue", "-h", "-r", "-t", "all", "-u", user, "-o", "%i|%T", "-j", ",".join(bases)]
    try:
        out = subprocess.run(command, capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.SubprocessError):
        return None
    if out.returncode != 0 and "Invalid job id" not in out.stderr:
        return None
    states = dict(line.split("|", 1) for line in out.stdout.split() if "|" in line)
    missing = [j for j in job_ids if j not in states]
    if missing:
        command = ["sacct", "-n", "-P", "-X", "-o", "JobID,State", "-j", ",".join(missing)]
        try:
            acct = subprocess.run(command, capture_output=True, text=True, timeout=60)
        except (OSError, subprocess.SubprocessError):
            acct = None
        if acct is not None and acct.returncode == 0:
            for line in acct.stdout.split("\n"):
                job, _, state = line.partition("|")
                if job in missing and state:
                    states[job] = state.split()[0]  # "CANCELLED by 0" -> CANCELLED
    return states


def log_tail(path: str | os.PathLike | None, lines: int = 10) -> str:
    """The last ``lines`` non-empty lines of a log file ("" if it cannot be read)."""
    if not path:
        return ""
    try:
        text = Path(path).read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join([line for line in text.splitlines() if line.strip()][-lines:])


def engine_reason(log: str | os.PathLike | None) -> str:
    """What the engine said when it ended a job, from its log: Slurm's ``*** JOB 12 ON node
    CANCELLED AT ... ***`` (or DUE TO TIME LIMIT, PREEMPTION) and out-of-memory kills; "" if
    nothing."""
    said = [
        line.strip()
        for line in log_tail(log, 200).splitlines()
        if ("slurmstepd" in line and "***" in line) or "oom-kill" in line or "oom_kill" in line
    ]
    return said[-1] if said else ""


def live_states(record: JobsRecord) -> list[dict]:
    """Every configuration of the record with its state now; never waits.

    Returns:
        One dict per configuration, in sweep order: the record's entry with ``state`` (one of
        :data:`STATES`) and ``reason`` (why it failed or is not submitted, else "").
    """
    from . import store

    executor = record.data.get("executor")
    sweep = record.data.get("sweep", {})
    here = sweep.get("host") == platform.node()
    # a sweep that is this very process has ended: run_sweep returns only when it is done
    pid = sweep.get("pid")
    sweep_alive = here and pid != os.getpid() and _alive(pid, sweep.get("start"))
    entries = list(record.entries.values())
    engine: dict | None = {}
    if executor == "slurm":
        engine = slurm_states([e["job_id"] for e in entries if e.get("job_id")])
    rows = []
    for entry in entries:
        row = {**entry, "reason": ""}
        job = entry.get("job_id")
        if store.is_complete(Path(entry["result"])):
            row["state"] = "done"
        elif engine is None and job:
            row["state"] = entry.get("state", "queued")
            row["reason"] = "as recorded: squeue could not be asked"
        elif executor == "slurm" and job and engine.get(job) in SLURM_QUEUED:
            row["state"] = "queued"
        elif executor == "slurm" and job and engine.get(job) in SLURM_RUNNING:
            row["state"] = "running"
        elif executor != "slurm" and not here:
            row["state"] = entry.get("state", "not submitted")
            row["reason"] = f"as recorded by the sweep on {sweep.get('host')}"
        elif executor == "local" and job and _alive(int(job), entry.get("job_start")):
            row["state"] = "running"
        elif executor == "inline" and entry.get("state") == "running":
            row["state"] = "running" if sweep_alive else "failed"
            row["reason"] = "" if sweep_alive else "the sweep stopped while running it"
        elif not job and entry.get("state") != "failed":
            row["state"] = "queued" if sweep_alive else "not submitted"
            if not sweep_alive:
                row["reason"] = "the sweep that would have submitted it is no longer running"
        else:
            row["state"] = "failed"
            ended = engine.get(job) if job and engine else None
            row["reason"] = entry.get("error") or (
                f"the job ended ({ended or 'no longer known'}) without a complete result"
            )
        rows.append(row)
    return rows


def status_report(path: str | os.PathLike) -> str:
    """Where each configuration of a sweep stands, as text: one line each, failures with the
    last lines of their log.

    Raises:
        FileNotFoundError: there is no record at ``path``.
        ValueError: the record is damaged.
    """
    record = JobsRecord(path)
    if record.damaged:
        raise ValueError(
            f"the sweep record {path} is damaged ({record.damaged}); remove it and run the "
            "sweep again, which finds what the store already holds"
        )
    if not record.entries:
        raise FileNotFoundError(f"No sweep record at {path}")
    rows = live_states(record)
    counts = ", ".join(f"{sum(r['state'] == s for r in rows)} {s}" for s in STATES)
    data = record.data
    head = f"{data.get('run')} ({data.get('executor')}, started {data.get('started')})"
    lines = [f"sweep {head}: {counts}"]
    for r in rows:
        job = f"job {r['job_id']}" if r.get("job_id") else "no job"
        log = f"  log: {r['log']}" if r.get("log") and r["state"] != "done" else ""
        what = f"{r['model']}  {r['label']:<16} {r['config_id']}"
        lines.append(f"  {r['state']:<13} {what}  {job}{log}")
        if r["reason"]:
            lines.append(f"      {r['reason']}")
        if r["state"] == "failed":
            lines += [f"      | {line}" for line in log_tail(r.get("log"), 5).splitlines()]
    return "\n".join(lines)
