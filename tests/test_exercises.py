"""The chapters' exercises: marked by difficulty, their commands run, their solutions pass.

Commands are the lines of the ```bash blocks in a chapter's exercise section; each runs as a
student would type it, from a working folder whose `notebooks` and `benchmarks` are the
repository's, with settings that make it small (fewer items, calibration windows and resamples).
Folded solutions (cells tagged `solution`) must pass the self-check that follows them, and a
wrong version of each must fail it.
"""

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import nbformat
import numpy as np
import pytest
import torch

import widthprune as wp
from widthprune.pruning.scoring import CRITERIA

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
FENCE = re.compile(r"```bash\n(.*?)```", re.S)
PROGRAMS = ("papermill", "widthprune")
# appended to a chapter's own papermill runs and to its sweeps (the last value wins): fewer
# calibration windows, items and resamples, the same computation
SMALL = {
    "02_scoring": {"papermill": ["-p", "calibration_samples", "8", "-p", "seq_len", "32"]},
    "04_evaluate": {"papermill": ["-p", "limit", "4"]},
    "05_capabilities": {"sweep": ["--limit", "4"]},
    "06_correlation": {"papermill": ["-p", "n_resamples", "99"]},
    "08_real_model": {"sweep": ["--limit", "2"]},
    "09_evidence": {"papermill": ["-p", "n_resamples", "99"]},
    "10_recovery": {
        "papermill": ["-p", "recovery_steps", "5", "-p", "limit", "8", "-p", "n_resamples", "99"]
    },  # fmt: skip
}


def exercise_cells(path: Path) -> list:
    """The cells of a chapter from its "## Exercises" heading on."""
    cells = nbformat.read(path, as_version=4).cells
    start = next(i for i, c in enumerate(cells) if c.source.startswith("## Exercises"))
    return cells[start:]


def commands(path: Path) -> list[list[str]]:
    """Every command of the ```bash blocks of the exercise section, split as a shell would."""
    out = []
    for cell in exercise_cells(path):
        if cell.cell_type == "markdown":
            for block in FENCE.findall(cell.source):
                out += [shlex.split(line) for line in block.splitlines() if line.strip()]
    return out


def test_exercises_are_marked_and_have_folded_solutions():
    for path in NOTEBOOKS:
        cells = exercise_cells(path)
        text = "\n".join(c.source for c in cells if c.cell_type == "markdown")
        items = re.findall(r"^\d+\. (.*)$", text, re.M)
        asked = [i for i in items if i.startswith("★")]
        assert len(asked) >= 3, f"{path.stem}: {len(asked)} exercises"
        assert all(re.match(r"★{1,3} ", i) for i in asked), path.stem
        assert ":class: dropdown" in text and "Solutions" in text, path.stem
        # the numbered solutions answer each exercise, with numbers glued from the run
        solutions = text[text.index("{admonition} Solutions") :]
        assert len(re.findall(r"^\d+\. ", solutions, re.M)) == len(asked), path.stem
        for cell in cells:
            tags = cell.metadata.get("tags", [])
            if "solution" in tags:
                assert "hide-cell" in tags, f"{path.stem}: a solution is not folded"
        # every command is in a block the command test runs, none only in running text
        inline = re.findall(r"(?<!`)`((?:papermill|widthprune) [^`]*)`", text)
        assert not inline, f"{path.stem}: commands outside ```bash blocks: {inline}"


def test_every_chapter_has_a_command_or_a_self_check():
    for path in NOTEBOOKS:
        cells = exercise_cells(path)
        checks = [c for c in cells if "self-check" in c.metadata.get("tags", [])]
        assert commands(path) or checks, path.stem


@pytest.mark.parametrize("path", [p for p in NOTEBOOKS if commands(p)], ids=lambda p: p.stem)
def test_exercise_commands_run(path, tmp_path):
    for folder in ("notebooks", "benchmarks"):
        (tmp_path / folder).symlink_to(ROOT / folder)
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "HF_HUB_OFFLINE": "1",
        "HF_DATASETS_OFFLINE": "1",
        "TOKENIZERS_PARALLELISM": "false",
    }
    for argv in commands(path):
        assert argv[0] in PROGRAMS, f"{path.stem}: unexpected program in {argv}"
        small = []
        if argv[:2] == ["papermill", f"notebooks/{path.name}"]:
            small = SMALL.get(path.stem, {}).get("papermill", [])
        elif argv[:2] == ["widthprune", "sweep"]:
            small = SMALL.get(path.stem, {}).get("sweep", [])
        done = subprocess.run(
            argv + small, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=1200
        )
        assert done.returncode == 0, f"{shlex.join(argv)} failed:\n{done.stderr[-3000:]}"
        if argv[0] == "papermill":
            assert (tmp_path / argv[2]).is_file()


def wrong_ppm(model, *, calibration=None, seed=0):
    return CRITERIA["maw"](model)


def wrong_activation(model, *, calibration=None, seed=0):
    """Wanda's score: the RMS of the activation, weighted by the down column's norm."""
    return CRITERIA["wanda"](model, calibration=calibration)


def wrong_surgery(model, keep):
    """Forgets the config, so a saved model could not be loaded."""
    for layer, mlp in wp.gated_mlps(model):
        idx = keep[layer]
        for proj in (mlp.gate_proj, mlp.up_proj):
            proj.weight = torch.nn.Parameter(proj.weight.detach()[idx])
            if proj.bias is not None:
                proj.bias = torch.nn.Parameter(proj.bias.detach()[idx])
            proj.out_features = len(idx)
        mlp.down_proj.weight = torch.nn.Parameter(mlp.down_proj.weight.detach()[:, idx])
        mlp.down_proj.in_features = len(idx)
    return model


def wrong_holm(p):
    """Bonferroni's step: every p times m, without the step-down."""
    return np.minimum(1.0, len(p) * np.asarray(p))


# a wrong version of every solution that has a self-check meant to pass
WRONG = {
    "ppm_by_hand": wrong_ppm,
    "activation_by_hand": wrong_activation,
    "prune_by_hand": wrong_surgery,
    "holm_by_hand": wrong_holm,
}


def solution_and_checks(path: Path) -> list[tuple[str, str]]:
    """(solution source, self-check source) pairs of a chapter, in order."""
    cells = exercise_cells(path)
    pairs = []
    for cell, after in zip(cells, cells[1:], strict=False):
        tags, after_tags = cell.metadata.get("tags", []), after.metadata.get("tags", [])
        if "solution" in tags and "self-check" in after_tags:
            pairs.append((cell.source, after.source))
    return pairs


CHECKED = [p for p in NOTEBOOKS if solution_and_checks(p)]


def test_the_implementation_exercises_have_self_checks():
    assert [p.stem for p in CHECKED] == ["02_scoring", "03_pruning", "06_correlation"]


@pytest.mark.parametrize("path", CHECKED, ids=lambda p: p.stem)
def test_folded_solutions_pass_their_self_check_and_wrong_versions_fail(path, capsys):
    namespace = {"wp": wp, "torch": torch, "np": np}
    for solution, check in solution_and_checks(path):
        exec(solution, namespace)
        name = re.search(r"^def (\w+)", solution, re.M).group(1)
        exec(check, namespace)
        outcome = re.match(r"(\w+) = ", check.splitlines()[-1]).group(1)
        result = namespace[outcome]
        if outcome == "broken":  # an exercise that breaks the surgery on purpose
            assert not result and "down_proj.weight" in result.detail
            continue
        assert result.passed, f"{path.stem}: the solution {name} fails: {result.detail}"
        solution_fn = namespace[name]
        namespace[name] = WRONG[name]
        exec(check, namespace)
        assert not namespace[outcome], f"{path.stem}: a wrong {name} passes its check"
        namespace[name] = solution_fn
    out = capsys.readouterr().out
    assert "PASS" in out and "FAIL" in out


def test_no_glued_number_sits_inside_a_code_literal():
    """A glue role in backticks renders literally: `{glue:text}`x`` shows its own source."""
    for path in NOTEBOOKS:
        for cell in nbformat.read(path, as_version=4).cells:
            if cell.cell_type == "markdown":
                assert "`{glue:" not in cell.source, f"{path.stem}: {cell.source[:80]}"
