"""A user's mistake or damaged input ends with one line naming it and what to do, exit status 2.

Each test gives the command line an input that once ended in a traceback: a ratio whose width
overflows, a damaged sweep record, a chapter refusing a run of mixed settings, damaged weights.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from widthprune.cli import main
from widthprune.models.loading import TOY_CHECKPOINT

ROOT = Path(__file__).resolve().parent.parent


def _one_line(capsys, argv, expected: str, lines: int = 1) -> str:
    """Run the command line; assert exit status 2 and one error line (a sweep's refusal lists
    each problem on a line of its own) holding ``expected``; progress bars aside."""
    code = main(argv)
    err = capsys.readouterr().err
    said = [line for line in err.strip().splitlines() if "chapter/s]" not in line]
    assert code == 2, err
    assert "Traceback" not in err and len(said) == lines, err
    assert said[0].startswith(f"widthprune {argv[0]}: error: ") and expected in err, err
    return err


@pytest.mark.parametrize(
    "argv",
    [
        ["prune", "toy", "--ratio", "1e308", "--out", "o"],
        ["evaluate", "toy", "--criterion", "ppm", "--ratio", "1e308"],
        ["sweep", "--ratios", "1e308", "--run", "r"],
    ],
)
def test_a_ratio_too_large_for_any_width_is_one_line(argv, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _one_line(capsys, argv, "above the current width", lines=2 if argv[0] == "sweep" else 1)
    assert list(tmp_path.iterdir()) == []  # refused before anything was written


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("[]", "not a JSON object"),
        ('{"points": [], "run": "R"}', "points"),
        ('{"points": {"a": []}, "run": "R"}', "points"),
        ('{"points": {"a": {"label": "x"}}, "run": "R"}', "result"),
        ("{bad", "not JSON"),
    ],
)
def test_status_of_a_damaged_sweep_record_is_one_line(text, why, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    record = tmp_path / "book/generated/sweep/R/jobs.json"
    record.parent.mkdir(parents=True)
    record.write_text(text)
    err = _one_line(capsys, ["sweep", "--status", "R"], "damaged")
    assert why in err and "sweep" in err


def test_chapter_refusing_a_mixed_run_says_why_in_one_line(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "notebooks").symlink_to(ROOT / "notebooks")
    for limit in ("2", "3"):  # one run, two item limits: not comparable
        argv = ["evaluate", "toy", "--tasks", "toy_perplexity", "--limit", limit, "--run", "mixed"]
        assert main([*argv, *(["--criterion", "ppm", "--pct", "40"] if limit == "3" else [])]) == 0
    capsys.readouterr()
    chapter = ["chapters", "05_capabilities", "-p", "05_capabilities:run=mixed"]
    err = _one_line(capsys, chapter, "limit: ['2', '3']")
    assert "05_capabilities" in err
    assert (tmp_path / "book/generated/05_capabilities.failed.ipynb").is_file()


def test_damaged_weights_are_named_in_one_line(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    shutil.copytree(TOY_CHECKPOINT, tmp_path / "dmg")
    weights = tmp_path / "dmg" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])
    _one_line(capsys, ["prune", "./dmg", "--pct", "40", "--out", "o"], "model.safetensors")
    _one_line(capsys, ["evaluate", "./dmg", "--limit", "2"], "damaged")
    # a folder that is no checkpoint, and a file where a folder is expected
    (tmp_path / "empty").mkdir()
    (tmp_path / "afile").write_text("x")
    _one_line(capsys, ["prune", "./empty", "--pct", "40", "--out", "o"], "config.json")
    _one_line(capsys, ["prune", "./afile", "--pct", "40", "--out", "o"], "No checkpoint folder")
    json.loads((tmp_path / "dmg" / "config.json").read_text())  # the source is untouched
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["prune", "toy", "--pct", "40", "--seed", "-1", "--out", "o"], "seed must be in"),
        (["prune", "toy", "--pct", "40", "--seed", "1" + "0" * 24, "--out", "o"], "seed must"),
        (["prune", "toy", "--pct", "40", "--device", "banana", "--out", "o"], "not a device"),
        (
            ["prune", "toy", "--pct", "40", "--criterion", "wanda", "--calibration", "no.txt"]
            + ["--out", "o"],
            "No calibration text file",
        ),
        (["evaluate", "toy", "--limit", "inf"], "limit must be a finite number"),
        (["evaluate", "toy", "--criterion", "wanda", "--pct", "9", "--calibration", "."], "No cal"),
    ],
)
def test_other_bad_inputs_are_one_line_before_anything_loads(
    argv, expected, capsys, tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    assert "Loading weights" not in _one_line(capsys, argv, expected)
    assert list(tmp_path.iterdir()) == []


# Minor: what a run prints and leaves behind


def test_prune_refuses_a_percentage_that_removes_no_neuron(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _one_line(capsys, ["prune", "toy", "--pct", "1e-300", "--out", "o"], "keeps every neuron")
    _one_line(capsys, ["prune", "toy", "--ratio", "4", "--out", "o"], "keeps every neuron")
    _one_line(capsys, ["prune", "toy", "--pct", "0", "--out", "o"], "nothing to prune")
    assert list(tmp_path.iterdir()) == []


def test_export_refuses_negative_threads_before_any_work(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    argv = ["export-gguf", "toy", "--out", "t.gguf", "--quant", "Q8_0", "--threads", "-2"]
    _one_line(capsys, argv, "threads must be a whole number >= 0")
    assert list(tmp_path.iterdir()) == []


def test_export_prints_its_own_warnings_only(capsys, tmp_path, monkeypatch):
    import warnings

    import widthprune.deployment.export as export
    from widthprune.deployment import WidthWarning

    def export_gguf(*args, **kwargs):  # what a run of llama.cpp's Python binding leaves
        warnings.warn("MLP width 461 cannot be quantized fully", WidthWarning, stacklevel=2)
        warnings.warn("unclosed file <_io.TextIOWrapper name='/dev/null'>", ResourceWarning, 2)
        raise RuntimeError("the quantizer stopped")

    monkeypatch.setattr(export, "export_gguf", export_gguf)
    assert main(["export-gguf", "toy", "--out", str(tmp_path / "t.gguf")]) == 1
    err = capsys.readouterr().err
    assert "warning: MLP width 461" in err and "/dev/null" not in err, err


def test_a_later_success_removes_the_failed_chapter(tmp_path):
    import nbformat

    from widthprune.runs.notebook import run_notebook

    source = tmp_path / "chapter.ipynb"
    kernel = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb = nbformat.v4.new_notebook(metadata={"kernelspec": kernel})
    param = nbformat.v4.new_code_cell("fail: bool = True  # stop on purpose")
    param.metadata["tags"] = ["parameters"]
    nb.cells = [param, nbformat.v4.new_code_cell("assert not fail, 'stopped'")]
    nbformat.write(nb, source)
    output = tmp_path / "out" / "chapter.ipynb"
    with pytest.raises(Exception, match="stopped"):
        run_notebook(source, output, cwd=tmp_path)
    failed = output.with_name("chapter.failed.ipynb")
    assert failed.is_file() and not output.exists()
    run_notebook(source, output, {"fail": False}, cwd=tmp_path)
    assert output.is_file() and not failed.exists()


def test_evaluation_outside_a_checkout_prints_no_git_error(capfd, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no git repository here or above
    argv = ["evaluate", "toy", "--tasks", "toy_perplexity", "--limit", "2"]
    assert main(argv) == 0
    assert "not a git repository" not in capfd.readouterr().err
