"""submitit's engines: jobs as subprocesses of this host, or as a Slurm job array.

Both take the job function and the tasks from :mod:`widthprune.runs.executors`, submit, then wait:
every ``poll_s`` seconds they look at each job's state, record it in the run's ``jobs.json``
and advance the progress bar when a job ends. A job's outcome is its result pickle (submitit
writes ``("success", value)`` or ``("error", traceback)``); a job without one was killed. A
failed job never stops the others.

A local job that is given up (its submitit controller gone without a result, or the sweep
stopping) is stopped whole: every process started for it carries a mark in its environment
(:data:`JOB_MARK`), the chapter's kernel in its own session too, and each is killed with its
process group before the job's state is recorded from the store, so the record and the store
never disagree.
"""

from __future__ import annotations

import os
import signal
import time
import uuid
from pathlib import Path

from . import jobs

__all__ = [
    "JOB_MARK",
    "gpu_slots",
    "marked_processes",
    "run_local",
    "run_slurm",
    "stop_marked",
    "submitit_module",
    "visible_gpus",
]

# the environment variable that marks every process of one local job (controller, job, kernel)
JOB_MARK = "WIDTHPRUNE_JOB"


def visible_gpus() -> tuple[int, ...]:
    """The GPUs jobs may use: CUDA_VISIBLE_DEVICES's indices if set, else every GPU torch sees."""
    listed = os.environ.get("CUDA_VISIBLE_DEVICES")
    if listed is not None:
        names = [n.strip() for n in listed.split(",") if n.strip()]
        if not all(n.isdigit() for n in names):
            raise ValueError(f"CUDA_VISIBLE_DEVICES={listed!r}: give GPU indices, not UUIDs")
        return tuple(int(n) for n in names)
    import torch

    return tuple(range(torch.cuda.device_count()))


def gpu_slots(visible: tuple[int, ...], per_job: int) -> list[tuple[int, ...]]:
    """Disjoint groups of ``per_job`` GPUs, one per concurrent job: (0,1,2,3), 2 -> (0,1), (2,3)."""
    return [tuple(visible[i : i + per_job]) for i in range(0, len(visible) - per_job + 1, per_job)]


def submitit_module():
    try:
        import submitit
    except ImportError:
        raise ValueError(
            "the local and slurm executors need submitit: pip install 'widthprune[cluster]'"
        ) from None
    return submitit


def marked_processes(mark: str) -> list[int]:
    """This host's processes whose environment holds ``JOB_MARK=mark`` (read from /proc)."""
    needle = f"{JOB_MARK}={mark}".encode()
    found = []
    for environ in Path("/proc").glob("[0-9]*/environ"):
        try:
            if needle in environ.read_bytes().split(b"\0"):
                found.append(int(environ.parent.name))
        except (OSError, ValueError):
            continue  # gone, or another user's
    return found


def stop_marked(mark: str, timeout_s: float = 30.0) -> None:
    """Kill every process of a local job, each with its process group, and wait until none is
    left; the sweep's own process group (which submitit's controller shares) is spared."""
    own = os.getpgrp()
    deadline = time.monotonic() + timeout_s
    while (pids := marked_processes(mark)) and time.monotonic() < deadline:
        for pid in pids:
            try:
                group = os.getpgid(pid)
                if group != own:
                    os.killpg(group, signal.SIGKILL)
                os.kill(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        time.sleep(0.1)


def _submit_marked(ex, fn, args: tuple, mark: str):
    """``ex.submit(fn, *args)`` with ``JOB_MARK=mark`` in the environment the job inherits."""
    before = os.environ.get(JOB_MARK)
    os.environ[JOB_MARK] = mark
    try:
        return ex.submit(fn, *args)
    finally:
        if before is None:
            os.environ.pop(JOB_MARK, None)
        else:
            os.environ[JOB_MARK] = before


def _finish(task, job, record, bar, ended: str | None) -> dict:
    """Read a finished job's outcome (its result pickle), record it, advance the bar."""
    from submitit.core.utils import pickle_load

    from . import store

    log, result, state, error = str(job.paths.stderr), {}, "failed", ""
    for _ in range(15 if ended == "COMPLETED" else 0):  # a shared filesystem may lag
        if job.paths.result_pickle.exists():
            break
        time.sleep(1)
    if job.paths.result_pickle.exists():
        outcome, value = pickle_load(job.paths.result_pickle)
        if outcome == "success":
            result = value
            complete = store.is_complete(Path(record.entries[task.key]["result"]))
            state = "done" if complete else "failed"
            error = "" if complete else "finished, but the store holds no complete result"
        else:
            error = ([line for line in str(value).splitlines() if line.strip()] or ["error"])[-1]
    elif store.is_complete(Path(record.entries[task.key]["result"])):
        state = "done"  # killed after storing its result: the store decides
    elif ended:
        error = f"the job ended without a result ({ended})"
    else:
        error = "the job's process died without writing a result (killed?)"
    said = jobs.engine_reason(log) if state == "failed" else ""
    error = f"{error} ({said})" if said else error
    fields = {"state": state, "error": error, "finished": jobs.now(), "log": log}
    fields.update({k: result[k] for k in ("gpus", "host", "seconds") if result.get(k)})
    record.update(task.key, **fields)
    bar.update(1)
    return {"state": state, "error": error, "log": log, "job_id": job.job_id}


def run_local(fn, tasks, executor, logs, record, bar, visible=None) -> dict[str, dict]:
    """Run ``fn(*task.args)`` for each task as a subprocess of this host; wait for all.

    Jobs take disjoint slots of ``executor.gpus_per_job`` GPUs (at most ``max_jobs`` slots), or
    run ``max_jobs`` at a time on the CPU, each with its share of the cores as threads. The
    sweep is their scheduler: if it stops, its running jobs are cancelled.
    """
    ex = submitit_module().LocalExecutor(folder=logs)
    ex.update_parameters(timeout_min=executor.minutes)
    per_job = executor.gpus_per_job or 0
    if per_job:
        slots = gpu_slots(visible_gpus() if visible is None else tuple(visible), per_job)
        slots = slots[: executor.max_jobs or len(slots)]
    else:
        slots = [()] * (executor.max_jobs or 1)
    threads = executor.cpus_per_job or max(1, (os.cpu_count() or 1) // len(slots))
    free, queue, running, outcomes = list(slots), list(tasks), {}, {}
    try:
        while queue or running:
            while queue and free:
                slot, task = free.pop(0), queue.pop(0)
                paths = task.paths if per_job else {**task.paths, "threads": threads}
                ex.update_parameters(visible_gpus=slot, gpus_per_node=len(slot))
                mark = uuid.uuid4().hex
                job = _submit_marked(ex, fn, (task.point, task.run, paths, task.config_id), mark)
                running[task.key] = (task, job, slot, mark)
                record.update(
                    task.key,
                    state="running",
                    job_id=job.job_id,
                    job_start=jobs.process_start(int(job.job_id)),
                    log=str(job.paths.stderr),
                    gpus=",".join(map(str, slot)) or None,
                    submitted=jobs.now(),
                )
            for key, (task, job, slot, mark) in list(running.items()):
                if job.done():  # a local job's own state says nothing more than this
                    stop_marked(mark)  # a controller killed may leave its job running
                    outcomes[key] = _finish(task, job, record, bar, None)
                    free.append(slot)
                    del running[key]
            if running:
                time.sleep(executor.poll_s)
    except BaseException:  # the sweep is the local jobs' scheduler: they end with it
        for _, job, _, mark in running.values():
            job.cancel(check=False)
            stop_marked(mark)
        raise
    return outcomes


def run_slurm(fn, tasks, executor, logs, record, bar) -> dict[str, dict]:
    """Submit ``fn(*task.args)`` for all tasks as one Slurm job array; wait for all.

    A job has ended when its result pickle exists or Slurm no longer lists it as queued or
    running (squeue, then sacct); one that ended without a result (cancelled, killed, out of
    time or memory) is failed.
    """
    ex = submitit_module().SlurmExecutor(folder=logs)
    parameters = {"job_name": f"widthprune-{tasks[0].run}", "time": executor.minutes}
    if executor.gpus_per_job:
        parameters["gpus_per_node"] = executor.gpus_per_job
    for name, key in (
        ("partition", "partition"),
        ("cpus_per_job", "cpus_per_task"),
        ("mem", "mem"),
        ("array_parallelism", "array_parallelism"),
    ):
        if getattr(executor, name) is not None:
            parameters[key] = getattr(executor, name)
    if executor.slurm_options:
        parameters["additional_parameters"] = dict(executor.slurm_options)
    ex.update_parameters(**parameters)
    with ex.batch():
        submitted = [ex.submit(fn, *task.args) for task in tasks]
    running, outcomes = {}, {}
    for task, job in zip(tasks, submitted, strict=True):
        running[task.key] = (task, job)
        fields = dict(state="queued", job_id=job.job_id, submitted=jobs.now())
        record.update(task.key, log=str(job.paths.stderr), **fields)
    try:
        _wait_slurm(running, outcomes, executor, record, bar)
    except KeyboardInterrupt:
        run = tasks[0].run
        print(f"\nThe jobs keep running; `widthprune sweep --status {run}` follows them.")
        raise
    return outcomes


def _wait_slurm(running, outcomes, executor, record, bar) -> None:
    while running:
        states = jobs.slurm_states([job.job_id for _, job in running.values()])
        for key, (task, job) in list(running.items()):
            state = None if states is None else states.get(job.job_id, "ENDED")
            if job.paths.result_pickle.exists() or (
                state is not None and state not in jobs.SLURM_QUEUED | jobs.SLURM_RUNNING
            ):
                outcomes[key] = _finish(task, job, record, bar, state)
                del running[key]
            elif state is not None:
                now = "queued" if state in jobs.SLURM_QUEUED else "running"
                if record.entries[key].get("state") != now:
                    record.update(key, state=now)
        if running:
            time.sleep(executor.poll_s)
