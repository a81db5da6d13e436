"""An inter-process file lock (a leaf module): the results store and the model cache use it."""

from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path

__all__ = ["lock"]


@contextlib.contextmanager
def lock(path: Path):
    """An exclusive lock on ``path`` that the OS releases if the process dies."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a+b") as fh:
        if os.name == "nt":
            import msvcrt

            while True:
                try:
                    msvcrt.locking(fh.fileno(), msvcrt.LK_LOCK, 1)
                    break
                except OSError:  # LK_LOCK gives up after 10 s; keep waiting
                    continue
        else:
            import fcntl

            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                print(f"waiting for another process holding {path}", file=sys.stderr)
                fcntl.flock(fh, fcntl.LOCK_EX)
        yield
