"""File modes as an ordinary write leaves them, for outputs built under a temporary name.

``tempfile.mkdtemp`` makes its folder 0700 and ``mkstemp`` its file 0600, and some writers
(safetensors) leave 0600 too: renamed into place, such an output is readable by its owner
alone, so a course's shared results or model cache could not be read by anyone else. The
functions here give a folder and everything in it the modes a plain ``mkdir`` or ``open``
leaves under the process's umask: 0755 and 0644 under the usual 022.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["current_umask", "ordinary_modes"]


def current_umask() -> int:
    """The process's umask, read from /proc where it says (not changing it), else set back."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def ordinary_modes(path: str | os.PathLike) -> Path:
    """Give ``path`` (a file, or a folder and all it holds) the modes of an ordinary write:
    folders and executable files ``0o777 & ~umask``, other files ``0o666 & ~umask``; links
    are left alone."""
    path, mask = Path(path), current_umask()
    if path.is_symlink():
        return path
    if path.is_dir():
        for root, dirs, files in os.walk(path):
            for name in dirs + files:
                _set_mode(Path(root, name), mask)
    _set_mode(path, mask)
    return path


def _set_mode(path: Path, mask: int) -> None:
    if path.is_symlink():
        return
    mode = path.stat().st_mode
    full = path.is_dir() or mode & 0o100  # a folder, or a file its owner may execute
    os.chmod(path, (0o777 if full else 0o666) & ~mask)
