"""Outputs get the modes an ordinary write leaves under the user's umask (0755 and 0644 under
022), so that a course's shared results, pruned checkpoints and caches are readable by others."""

from __future__ import annotations

import os
import stat
import tempfile
from pathlib import Path

import pytest

from widthprune.cli import main
from widthprune.filemodes import ordinary_modes


@pytest.fixture
def umask_022():
    before = os.umask(0o022)
    yield
    os.umask(before)


def modes(folder: Path) -> dict[str, str]:
    """``{relative path: octal mode}`` of a folder and everything in it."""
    found = {".": oct(stat.S_IMODE(folder.stat().st_mode))}
    for path in sorted(folder.rglob("*")):
        found[str(path.relative_to(folder))] = oct(stat.S_IMODE(path.stat().st_mode))
    return found


def assert_ordinary(folder: Path) -> None:
    found = modes(folder)
    expected = {name: "0o755" if (folder / name).is_dir() else "0o644" for name in found}
    assert found == expected


def test_prune_out_folder_and_weights_are_readable_by_others(tmp_path, monkeypatch, umask_022):
    monkeypatch.chdir(tmp_path)
    assert main(["prune", "toy", "--pct", "40", "--out", "p40"]) == 0
    assert (tmp_path / "p40" / "model.safetensors").is_file()
    assert_ordinary(tmp_path / "p40")


def test_stored_results_are_readable_by_others(tmp_path, monkeypatch, umask_022):
    monkeypatch.chdir(tmp_path)
    argv = ["evaluate", "toy", "--tasks", "toy_perplexity", "--limit", "2", "--run", "shared"]
    assert main(argv) == 0
    results = tmp_path / "results"
    [stored] = [p for p in (results / "shared").iterdir() if not p.name.startswith(".")]
    assert (stored / "COMPLETE").is_file()
    assert_ordinary(stored)
    assert oct(stat.S_IMODE((results / "shared").stat().st_mode)) == "0o755"


def test_task_cache_is_readable_by_others(tmp_path, monkeypatch, umask_022):
    from widthprune.evaluation.tasks.real.mirrors import task_folder

    monkeypatch.setenv("WIDTHPRUNE_CACHE", str(tmp_path))
    folder = task_folder()
    assert any(folder.iterdir())
    assert_ordinary(folder)


def test_modes_follow_the_umask_and_leave_links_and_executables(tmp_path):
    work = Path(tempfile.mkdtemp(dir=tmp_path))  # 0700, as a temporary folder is made
    fd, name = tempfile.mkstemp(dir=work)  # 0600
    os.close(fd)
    (work / "sub").mkdir(mode=0o700)
    (work / "run.sh").write_text("#!/bin/sh\n")
    os.chmod(work / "run.sh", 0o700)
    (work / "link").symlink_to("/etc/hostname")
    before = os.umask(0o027)
    try:
        ordinary_modes(work)
    finally:
        os.umask(before)
    assert oct(stat.S_IMODE(work.stat().st_mode)) == "0o750"
    assert oct(stat.S_IMODE(Path(name).stat().st_mode)) == "0o640"
    assert oct(stat.S_IMODE((work / "sub").stat().st_mode)) == "0o750"
    assert oct(stat.S_IMODE((work / "run.sh").stat().st_mode)) == "0o750"
    assert (work / "link").is_symlink()
