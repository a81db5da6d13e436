"""The user cache folder of widthprune: converted models, rendered task files, file digests."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["cache_dir"]


def cache_dir() -> Path:
    """``$WIDTHPRUNE_CACHE``, else ``$XDG_CACHE_HOME/widthprune``, else ``~/.cache/widthprune``."""
    if os.environ.get("WIDTHPRUNE_CACHE"):
        return Path(os.environ["WIDTHPRUNE_CACHE"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "widthprune"
