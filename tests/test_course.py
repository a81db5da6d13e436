"""The course around the book: the recorded chapter times and the workflow that publishes it."""

from pathlib import Path

import pandas as pd
import pytest
import yaml

from widthprune.chapters.course import (
    chapter_seconds,
    chapter_times,
    configuration_seconds,
    sweep_configurations,
)
from widthprune.chapters.runner import CHAPTERS
from widthprune.sweep import SweepConfig

ROOT = Path(__file__).resolve().parents[1]


def test_every_chapter_has_a_recorded_time_and_the_sweep_follows_from_chapter_4():
    times = chapter_times()
    assert [s for s in times.step if s not in ("sweep", "real_sweep")] == list(CHAPTERS)
    measured = times[times.wall_seconds.notna()]
    assert (measured.wall_seconds > 0).all()
    # a step without a time is marked as not measured, never given an estimate
    assert (times[times.wall_seconds.isna()].machine == "not measured").all()
    assert pd.isna(chapter_seconds("09_evidence"))
    cpu = times.cpu_seconds.dropna()
    assert (cpu > 0).all() and (cpu <= times.wall_seconds[cpu.index] * times.cpus[cpu.index]).all()
    recorded = times.set_index("step")
    assert chapter_seconds("02_scoring") == recorded.cpu_seconds["02_scoring"]
    for step in recorded.index[recorded.cpu_seconds.isna() & recorded.wall_seconds.notna()]:
        assert chapter_seconds(step) == recorded.wall_seconds[step]  # only the wall time: a bound
    # a sweep is chapter 4 once per configuration of the default sweep
    assert sweep_configurations() == len(SweepConfig().points()) == 13
    if "sweep" in recorded.index:
        one = recorded.cpu_seconds["sweep"] / recorded.configurations["sweep"]
    else:
        one = recorded.cpu_seconds["04_evaluate"]
    assert configuration_seconds() == pytest.approx(one)
    assert chapter_seconds("sweep") == pytest.approx(13 * one)
    with pytest.raises(KeyError, match="recorded: \\['01_anatomy'"):
        chapter_seconds("08_epilogue")


def test_the_workflow_builds_with_make_book_and_publishes_the_html():
    workflow = yaml.safe_load((ROOT / ".github" / "workflows" / "book.yml").read_text())
    build, deploy = workflow["jobs"]["build"], workflow["jobs"]["deploy"]
    runs = [s.get("run") for s in build["steps"]]
    uses = {s.get("uses", "").split("@")[0]: s for s in build["steps"]}
    assert "make book" in runs
    assert uses["actions/upload-pages-artifact"]["with"]["path"] == "_build/html"
    assert {"actions/checkout", "actions/setup-python"} <= set(uses)
    assert deploy["needs"] == "build" and deploy["environment"]["name"] == "github-pages"
    assert deploy["permissions"] == {"pages": "write", "id-token": "write"}
    assert deploy["steps"][0]["uses"].startswith("actions/deploy-pages@")
