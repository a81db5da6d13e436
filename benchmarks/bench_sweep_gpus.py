"""Wall time of one sweep on 1 GPU and on 2 GPUs, through ``--executor local``.

Runs the same ``widthprune sweep --executor local --device cuda --gpus-per-job 1`` twice, each
time from scratch (a fresh results store and run folder in a temporary directory): first with
one visible GPU, then with two, where the local executor runs two jobs at once, one per GPU.
Prints both wall times, their ratio (1 GPU / 2 GPUs: 2.0 is perfect scaling) and which GPU each
job got (its CUDA_VISIBLE_DEVICES, from the run's jobs.json). Needs two GPUs.

Usage: ``python benchmarks/bench_sweep_gpus.py [--gpus 0 1] [--out result.json] [sweep options]``
e.g. ``python benchmarks/bench_sweep_gpus.py --models smollm2-135m-instruct --limit 50``.
Sweep options default to the command's: the toy, ppm and wanda at the study's seven widths
(13 jobs).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _sweep(gpus: list[int], sweep_args: list[str], folder: Path) -> dict:
    """Run the sweep in ``folder`` with ``gpus`` visible; its wall time and each job's GPU."""
    (folder / "notebooks").symlink_to(ROOT / "notebooks")
    run = f"bench-{len(gpus)}gpu"
    command = [sys.executable, "-m", "widthprune.cli", "sweep", *sweep_args, "--run", run]
    command += ["--results-dir", "results", "--executor", "local", "--device", "cuda"]
    command += ["--gpus-per-job", "1"]
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ",".join(map(str, gpus))}
    t0 = time.perf_counter()
    out = subprocess.run(command, cwd=folder, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    if out.returncode != 0:
        raise SystemExit(f"the sweep on GPUs {gpus} failed:\n{out.stdout}\n{out.stderr[-3000:]}")
    record = json.loads((folder / "book/generated/sweep" / run / "jobs.json").read_text())
    jobs = Counter(e.get("gpus") for e in record["points"].values())
    return {"gpus": gpus, "seconds": seconds, "configurations": len(record["points"]), "jobs": jobs}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gpus", type=int, nargs=2, default=[0, 1], help="the two GPUs to use")
    parser.add_argument("--out", type=Path, help="write the figures as JSON here")
    args, sweep_args = parser.parse_known_args()
    import torch

    if torch.cuda.device_count() < 2:
        raise SystemExit(f"needs two GPUs; this host shows {torch.cuda.device_count()}")
    results = []
    for gpus in ([args.gpus[0]], list(args.gpus)):
        with tempfile.TemporaryDirectory(prefix="bench-sweep-") as folder:
            results.append(_sweep(gpus, sweep_args, Path(folder)))
        r = results[-1]
        print(
            f"{len(gpus)} GPU(s) {gpus}: {r['seconds']:.1f} s for {r['configurations']} "
            f"configurations; jobs per CUDA_VISIBLE_DEVICES: {dict(r['jobs'])}"
        )
    ratio = results[0]["seconds"] / results[1]["seconds"]
    print(
        f"speed-up with 2 GPUs: {ratio:.2f}x (1 GPU {results[0]['seconds']:.1f} s, "
        f"2 GPUs {results[1]['seconds']:.1f} s)"
    )
    if args.out:
        figures = {
            "device": torch.cuda.get_device_name(args.gpus[0]),
            "host": platform.node(),
            "sweep": sweep_args,
            "runs": [{**r, "jobs": dict(r["jobs"])} for r in results],
            "ratio": ratio,
        }
        args.out.write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
