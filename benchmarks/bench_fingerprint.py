"""Cost of the full-weight model fingerprint on the Llama-3.2-1B shape.

Saves a random bf16 model of the exact 1B shape (2.5 GB of safetensors), then times, each in a
fresh process so that no in-memory digest is reused:

- ``read``: reading every byte of the checkpoint (the floor any full hash must pay);
- ``cold``: ``model_fingerprint`` with an empty digest cache (hashes every byte);
- ``warm``: ``model_fingerprint`` again, with the on-disk digest cache of the first call.

Usage: ``python benchmarks/bench_fingerprint.py [--repeats 3] [--folder DIR]``
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

READ = """
import sys, time
from pathlib import Path
t = time.perf_counter()
n = 0
for p in sorted(Path(sys.argv[1]).iterdir()):
    with p.open("rb") as fh:
        while block := fh.read(8 << 20):
            n += len(block)
print(time.perf_counter() - t, n)
"""
FINGERPRINT = """
import sys, time
from widthprune.runs.fingerprint import model_fingerprint
t = time.perf_counter()
value = model_fingerprint(sys.argv[1])
print(time.perf_counter() - t, value)
"""


def _time(code: str, folder: Path, cache: Path) -> float:
    env = {**os.environ, "WIDTHPRUNE_CACHE": str(cache)}
    out = subprocess.run(
        [sys.executable, "-c", code, str(folder)], env=env, capture_output=True, text=True
    )
    if out.returncode:
        raise RuntimeError(out.stderr)
    return float(out.stdout.split()[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--folder", type=Path, default=None, help="where to save the model")
    args = parser.parse_args()
    import torch

    import widthprune as wp

    with tempfile.TemporaryDirectory(dir=args.folder) as tmp:
        folder = Path(tmp) / "llama-3.2-1b"
        t0 = time.perf_counter()
        wp.random_model("llama-3.2-1b", dtype=torch.bfloat16).save_pretrained(folder)
        size = sum(p.stat().st_size for p in folder.iterdir())
        print(f"saved the 1B shape ({size / 1e9:.2f} GB) in {time.perf_counter() - t0:.1f} s")
        rows = {"read": [], "cold": [], "warm": []}
        for i in range(args.repeats):
            cache = Path(tmp) / f"cache{i}"
            rows["read"].append(_time(READ, folder, cache))
            rows["cold"].append(_time(FINGERPRINT, folder, cache))
            rows["warm"].append(_time(FINGERPRINT, folder, cache))
        print(f"{'what':6} {'median s':>9} {'min s':>7} {'max s':>7} {'GB/s':>6}")
        for name, values in rows.items():
            med = statistics.median(values)
            print(
                f"{name:6} {med:9.3f} {min(values):7.3f} {max(values):7.3f} {size / 1e9 / med:6.2f}"
            )
        ratio = statistics.median(rows["cold"]) / statistics.median(rows["read"])
        print(f"cold fingerprint / plain read: {ratio:.2f}x")


if __name__ == "__main__":
    main()
