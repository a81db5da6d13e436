"""The rerun path never serves a stale, mixed or missing number.

Each test reproduces one way an earlier store or sweep got it wrong: the calibration text,
mixed settings in one run, resume by notebook instead of by result, a sweep without its
baseline, folders trusted by name, two ids for one configuration, late validation, and
tracebacks for plain user errors.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pandas as pd
import pytest
from evalkit import make_byte_llama, make_byte_tokenizer, write_tasks

import widthprune as wp
import widthprune.runs.experiment as experiment
import widthprune.runs.store as store
from widthprune.analysis.runs import check_comparable
from widthprune.cli import evaluate_config_from, main
from widthprune.runs.config import EvalConfig
from widthprune.runs.fingerprint import model_fingerprint
from widthprune.runs.sweep import SweepConfig, run_sweep

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def base(model_dir, tasks_dir):
    return EvalConfig(model=str(model_dir), tasks=("tiny",), include_path=(str(tasks_dir),))


# 1. The calibration text is part of the id: its content, not its path.
def test_calibration_content_changes_the_id_and_its_path_does_not(tmp_path, monkeypatch):
    text = tmp_path / "c.txt"
    text.write_text("the first text\n\nand another one")
    config = EvalConfig(criterion="wanda", pruning_pct=60, calibration=str(text))
    before = config.config_id
    monkeypatch.chdir(tmp_path)
    assert EvalConfig(criterion="wanda", pruning_pct=60, calibration="c.txt").config_id == before
    moved = tmp_path / "elsewhere.txt"
    shutil.copy(text, moved)
    assert EvalConfig(criterion="wanda", pruning_pct=60, calibration=str(moved)).config_id == before
    text.write_text("a different text altogether\n\nwith other words")
    assert EvalConfig(criterion="wanda", pruning_pct=60, calibration="c.txt").config_id != before
    # a weight criterion reads no text: its id ignores the calibration
    ppm = EvalConfig(criterion="ppm", pruning_pct=60, calibration=str(text))
    assert ppm.calibration is None
    assert ppm.config_id == EvalConfig(criterion="ppm", pruning_pct=60).config_id


def test_cli_evaluate_recomputes_when_the_calibration_text_changes(
    model_dir, tasks_dir, tmp_path, monkeypatch, capsys
):
    monkeypatch.chdir(tmp_path)
    Path("c.txt").write_text(" ".join(f"word{i % 17}" for i in range(400)))
    args = ["evaluate", str(model_dir), "--tasks", "tiny", "--include-path", str(tasks_dir)]
    args += ["--criterion", "wanda", "--pct", "60", "--calibration", "c.txt"]
    args += ["--seq-len", "32", "--calibration-samples", "4", "--limit", "3"]
    args += ["--root", "R", "--run", "cal"]
    assert main(args) == 0
    Path("c.txt").write_text(" ".join(f"other{i % 5} text" for i in range(400)))
    assert main(args) == 0
    capsys.readouterr()
    folders = [p for p in Path("R/cal").iterdir() if not p.name.startswith(".")]
    assert len(folders) == 2  # a new result, not the old folder served again
    reports = [json.loads((f / "provenance.json").read_text())["prune_report"] for f in folders]
    assert {r["criterion"] for r in reports} == {"wanda"}


# 2. A run mixing settings is refused, naming the field, never averaged.
def test_a_run_with_mixed_limits_is_refused(base, tmp_path):
    pruned = dataclasses.replace(base, criterion="ppm", pruning_pct=50)
    for config in (
        dataclasses.replace(base, limit=3),
        dataclasses.replace(pruned, limit=3),
        dataclasses.replace(pruned, limit=5),
    ):
        experiment.evaluate_config(config, run="s1", root=tmp_path)
    results = wp.load_results("s1", tmp_path)
    assert results.config_id.nunique() == 3
    with pytest.raises(ValueError, match=r"limit: \['3', '5'\]"):
        check_comparable(results)
    from widthprune.analysis.capabilities import sweep_capabilities

    with pytest.raises(ValueError, match="limit"):
        sweep_capabilities(results)
    same = results[results["limit"] == 3]
    assert check_comparable(same) is same


# 3 and 4. Resume is decided by the store; a ratio sweep has its baseline.
def test_sweep_resumes_from_the_store_and_always_has_a_baseline(tmp_path):
    config = SweepConfig(criteria=("ppm",), pcts=None, ratios=(3.0, 4.0), limit=3, run="t")
    points = config.points()
    assert [p.label for p in points] == ["baseline", "ppm-ratio3"]  # 4.0 is the full width
    out = tmp_path / "gen"
    kwargs = dict(notebooks=ROOT / "notebooks", out_dir=out, results_dir=tmp_path / "results")
    first = run_sweep(config, cwd=tmp_path, **kwargs)
    assert [o.status for o in first] == ["done", "done"]
    again = run_sweep(config, cwd=tmp_path, **kwargs)
    assert [o.status for o in again] == ["stored", "stored"]
    folder = store.result_folder(points[1], "t", tmp_path / "results")
    shutil.rmtree(folder)  # a result deleted by hand: the notebook alone does not count
    third = run_sweep(config, cwd=tmp_path, **kwargs)
    assert [o.status for o in third] == ["stored", "done"] and store.is_complete(folder)
    history = json.loads((out / "t" / "sweep.json").read_text())["history"]
    assert len(history) == 3 and [p["status"] for p in history[-1]["points"]] == [
        "stored",
        "done",
    ]
    assert not list((out / "t").glob(".*.partial.ipynb"))
    notebook = nbformat.read(first[1].notebook, as_version=4)
    injected = next(c for c in notebook.cells if "injected-parameters" in c.metadata["tags"])
    assert "expansion_ratio = 3.0" in injected.source


def test_a_sweep_of_instruction_tasks_alone_runs_chapter_four(tmp_path):
    """No task with an "acc" metric: the chapter's exercise solutions use the first metric
    with a standard error instead (this sweep once failed at every configuration)."""
    config = SweepConfig(criteria=("ppm",), pcts=(0, 40), tasks="toy_instructions", limit=4,
                         run="inst")  # fmt: skip
    out = tmp_path / "gen"
    kwargs = dict(notebooks=ROOT / "notebooks", out_dir=out, results_dir=tmp_path / "results")
    outcomes = run_sweep(config, cwd=tmp_path, **kwargs)
    assert [o.status for o in outcomes] == ["done", "done"], [o.error for o in outcomes]
    executed = nbformat.read(outcomes[1].notebook, as_version=4)
    text = json.dumps([c.get("outputs", []) for c in executed.cells])
    assert "prompt_level_strict_acc" in text  # the metric the standard error was computed for


def test_targets_of_one_width_run_once():
    # toy: hidden 192, width 768. 25 % and ratio 3.0 both give 576.
    config = SweepConfig(criteria=("ppm",), pcts=(0, 25, 25.0, 50))
    assert [p.resolved_width() for p in config.points()] == [768, 576, 384]
    pct = EvalConfig(criterion="ppm", pruning_pct=25)
    ratio = EvalConfig(criterion="ppm", expansion_ratio=3.0)
    assert pct.config_id == ratio.config_id
    assert EvalConfig(criterion="wanda", pruning_pct=0).config_id == EvalConfig().config_id


# 5. The store serves only folders that prove they are the configuration.
def test_store_skips_copies_renames_and_bad_markers(base, tmp_path):
    pruned = dataclasses.replace(base, criterion="ppm", pruning_pct=50)
    for config in (base, pruned):
        experiment.evaluate_config(config, run="r", root=tmp_path)
    run = tmp_path / "r"
    good = store.result_folder(base, "r", tmp_path)
    shutil.copytree(good, run / f"{good.name}.bak")  # cp -r X X.bak
    shutil.copytree(good, run / "0123456789ab")  # copied under another id
    broken = run / "fedcba987654"
    shutil.copytree(store.result_folder(pruned, "r", tmp_path), broken)
    (broken / "COMPLETE").write_text("[]")
    with pytest.warns(UserWarning) as caught:
        results = wp.load_results("r", tmp_path)
    assert sorted(results.drop_duplicates("config_id").config_id) == sorted(
        [base.config_id, pruned.config_id]
    )
    messages = "\n".join(str(w.message) for w in caught)
    for name in (f"{good.name}.bak", "0123456789ab", "fedcba987654"):
        assert name in messages
    assert len(caught) == 3  # one warning per folder
    # a folder copied under the id asked for is not served either: recomputed instead
    other = dataclasses.replace(base, limit=2)
    target = store.result_folder(other, "r", tmp_path)
    shutil.copytree(good, target)
    assert store.verify(target) is not None
    result = experiment.evaluate_config(other, run="r", root=tmp_path)
    assert store.is_complete(target) and result.summary["n"].max() <= 2


def test_fingerprint_sees_an_edit_in_the_middle_of_the_weights(model_dir, tmp_path):
    copy = tmp_path / "model"
    shutil.copytree(model_dir, copy)
    before = model_fingerprint(str(copy))
    weights = copy / "model.safetensors"
    data = bytearray(weights.read_bytes())
    stat = weights.stat()
    middle = len(data) // 2
    data[middle] ^= 0xFF
    weights.write_bytes(bytes(data))
    os.utime(weights, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # even with its old mtime
    assert weights.stat().st_size == stat.st_size
    assert model_fingerprint(str(copy)) != before


# 6. One configuration, one id, whatever the entry point.
def test_same_configuration_same_id_from_every_entry_point(tmp_path):
    api = EvalConfig(criterion="ppm", pruning_pct=40)
    explicit = EvalConfig(criterion="ppm", width=461, dtype="float32")
    sweep = next(
        p for p in SweepConfig(criteria=("ppm",), pcts=(40,)).points() if p.criterion == "ppm"
    )
    parser_args = dict(
        model="toy",
        criterion="ppm",
        pct=40.0,
        ratio=None,
        width=None,
        round_to=None,
        rounding="floor",
        calibration=None,
        calibration_samples=64,
        seq_len=256,
        tasks="toy",
        num_fewshot=None,
        limit=None,
        chat_template=False,
        seed=0,
        dtype="auto",
        device="cpu",
        batch_size="auto",
        include_path=[],
        engine="fast",
    )
    from argparse import Namespace

    from widthprune.cli import build_parser

    parsed = build_parser().parse_args(["evaluate", "toy", "--criterion", "ppm", "--pct", "40"])
    assert vars(parsed).items() >= parser_args.items()
    cli = evaluate_config_from(Namespace(**parser_args))
    ids = {c.config_id for c in (api, explicit, sweep, cli, evaluate_config_from(parsed))}
    assert len(ids) == 1


def test_chapter_four_parameters_are_the_config_fields():
    from widthprune.runs.notebook import notebook_parameters
    from widthprune.runs.sweep import DEFAULT_RUN

    params = notebook_parameters(ROOT / "notebooks" / "04_evaluate.ipynb")
    fields = [f.name for f in dataclasses.fields(EvalConfig)]
    assert list(params) == [*fields, "run", "results_dir"]
    defaults = {f.name: f.default for f in dataclasses.fields(EvalConfig)}
    for name in ("model", "tasks", "seed", "dtype", "device", "batch_size", "rounding"):
        assert eval(params[name]["default"]) == defaults[name], name  # noqa: S307
    assert eval(params["run"]["default"]) == DEFAULT_RUN  # noqa: S307


# 7. A sweep validates everything first and keeps its history.
def test_sweep_validates_before_running_anything(tmp_path, capsys):
    out = tmp_path / "gen"
    (out / "s").mkdir(parents=True)
    (out / "s" / "sweep.json").write_text(json.dumps({"history": [{"note": "earlier"}]}))
    (out / "s" / ".x.99999999.partial.ipynb").write_text("{}")
    code = main(["sweep", "--criteria", "ppn", "ppm", "--run", "s", "--results-dir", "R"])
    err = capsys.readouterr().err
    assert code == 2 and "Did you mean 'ppm'" in err and "Traceback" not in err
    assert main(["sweep", "--num-fewshot", "-1", "--run", "s"]) == 2
    assert "num_fewshot" in capsys.readouterr().err
    with pytest.raises(ValueError, match="tasks"):
        run_sweep(SweepConfig(tasks="toy_knowlege", run="s"), out_dir=out)
    history = json.loads((out / "s" / "sweep.json").read_text())["history"]
    assert history == [{"note": "earlier"}]  # refused sweeps record nothing and erase nothing


def test_a_failing_point_is_recorded_and_the_others_run(tmp_path, monkeypatch):
    real = experiment.run_config

    def run_config(config, **kwargs):
        if config.criterion == "ppm":
            raise RuntimeError("ppm breaks")
        return real(config, **kwargs)

    monkeypatch.setattr(experiment, "run_config", run_config)
    config = SweepConfig(criteria=("ppm", "l2"), pcts=(50,), limit=2, run="f")
    kwargs = dict(notebooks=ROOT / "notebooks", out_dir=tmp_path / "gen", cwd=tmp_path)
    outcomes = run_sweep(config, results_dir=tmp_path / "results", reports=False, **kwargs)
    assert [(o.config.label, o.status) for o in outcomes] == [
        ("baseline", "done"),
        ("ppm-pct50", "failed"),
        ("l2-pct50", "done"),
    ]
    failed = outcomes[1]
    assert "ppm breaks" in failed.error and "ppm breaks" in failed.log.read_text()
    assert not store.is_complete(store.result_folder(failed.config, "f", tmp_path / "results"))
    assert not list((tmp_path / "gen" / "f").glob(".*.partial.ipynb"))


def test_a_failing_report_leaves_its_stored_result_done(tmp_path):
    """A configuration is done when its result is stored; chapter 4's report of it is a separate
    product, whose failure is reported as such."""
    notebooks = tmp_path / "notebooks"
    notebooks.mkdir()
    source = nbformat.read(ROOT / "notebooks" / "04_evaluate.ipynb", as_version=4)
    nb = nbformat.v4.new_notebook(metadata=source.metadata)
    param = next(c for c in source.cells if "parameters" in c.metadata.get("tags", []))
    nb.cells = [param, nbformat.v4.new_code_cell("assert criterion != 'ppm', 'ppm breaks'")]
    nbformat.write(nb, notebooks / "04_evaluate.ipynb")
    config = SweepConfig(criteria=("ppm", "l2"), pcts=(50,), limit=2, run="f")
    results = tmp_path / "results"
    kwargs = dict(notebooks=notebooks, out_dir=tmp_path / "gen", cwd=tmp_path)
    outcomes = run_sweep(config, results_dir=results, **kwargs)
    assert [o.status for o in outcomes] == ["done", "done", "done"]
    assert [bool(o.report_error) for o in outcomes] == [False, True, False]
    assert "ppm breaks" in outcomes[1].report_error
    assert all(store.is_complete(store.result_folder(o.config, "f", results)) for o in outcomes)
    # the stored point is not run again; its missing report is written when it can be
    again = run_sweep(config, results_dir=results, **kwargs)
    assert [o.status for o in again] == ["stored", "done", "stored"]


def test_a_perplexity_only_sweep_is_done_when_stored(tmp_path, monkeypatch, capsys):
    """`widthprune sweep --criteria ppm --pcts 0 50 --tasks toy_perplexity --limit 3 --run r`
    once reported both stored configurations FAILED, from an exercise cell of chapter 4."""
    monkeypatch.chdir(tmp_path)
    argv = ["sweep", "--criteria", "ppm", "--pcts", "0", "50", "--tasks", "toy_perplexity"]
    argv += ["--limit", "3", "--run", "r", "--no-reports"]
    assert main(argv) == 0
    assert "2 configurations, 0 already stored, 2 run now, 0 failed" in capsys.readouterr().out
    results = wp.load_results("r", tmp_path / "results")
    assert sorted(results["label"].unique()) == ["baseline", "ppm-pct50"]


# 8. Plain user errors: one line, exit 2, no traceback.
@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["prune", "toy", "--ratio", "inf", "--out", "o"], "finite"),
        (["evaluate", "toy", "--criterion", "ppn", "--pct", "40"], "Did you mean 'ppm'"),
        (["prune", "./nope", "--pct", "40", "--out", "o"], "No checkpoint folder at ./nope"),
        (["evaluate", "toy", "--device", "cuda:7"], "not available"),
        (["evaluate", "toy", "--limit", "0"], "limit"),
        (["evaluate", "toy", "--batch-size", "0"], "batch_size"),
        (["evaluate", "toy", "--num-fewshot", "-1"], "num_fewshot"),
        (["prune", "no-such-org/no-such-model", "--pct", "40", "--out", "o"], "local-dir"),
        (["chapters", "01_anatomy", "-p", "01_anatomy:pctz=[1]"], "pctz"),
    ],
)
def test_user_errors_are_one_line(argv, expected, capsys, monkeypatch):
    monkeypatch.chdir(ROOT)
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert expected in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_prune_out_is_never_the_source_or_a_mixed_folder(tmp_path, capsys):
    model = tmp_path / "m"
    make_byte_llama().save_pretrained(model)
    make_byte_tokenizer().save_pretrained(model)
    prune = ["prune", str(model), "--pct", "40"]
    before = sorted(p.name for p in model.iterdir())
    assert main([*prune, "--out", str(model)]) == 2
    assert main([*prune, "--out", str(model), "--overwrite"]) == 2
    assert sorted(p.name for p in model.iterdir()) == before
    assert "source checkpoint" in capsys.readouterr().err
    afile = tmp_path / "file.txt"
    afile.write_text("x")
    assert main([*prune, "--out", str(afile)]) == 2
    out = tmp_path / "out"
    out.mkdir()
    (out / "model.safetensors.index.json").write_text("{}")  # a stale file of another model
    assert main([*prune, "--out", str(out)]) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert main([*prune, "--out", str(out), "--overwrite"]) == 0
    capsys.readouterr()
    assert not (out / "model.safetensors.index.json").exists()
    assert json.loads((out / "config.json").read_text())["intermediate_size"] == 23


def test_help_does_not_import_torch():
    code = "import sys; import widthprune.cli as c; c.build_parser(); print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# Chapters 5 and 6 on a run of the study's task names (local items).
def test_analysis_chapters_run_on_paper_task_names(model_dir, tmp_path):
    from evalkit import DATA

    from widthprune.runs.notebook import run_notebook

    tasks = tmp_path / "paper-tasks"
    local = write_tasks(tmp_path / "local")
    tasks.mkdir()
    for name, source in (("mmlu", "mmlu_local"), ("gsm8k", "gsm8k_local")):
        text = (local / f"{source}.yaml").read_text().replace(f"task: {source}", f"task: {name}")
        (tasks / f"{name}.yaml").write_text(text.replace("tag: [local_real]\n", ""))
    assert DATA.is_dir()
    config = EvalConfig(
        model=str(model_dir),
        tasks=("mmlu", "gsm8k"),
        include_path=(str(tasks),),
        limit=4,
        num_fewshot=0,
    )
    for point in (config, dataclasses.replace(config, criterion="ppm", pruning_pct=50)):
        experiment.evaluate_config(point, run="paper-local", root=tmp_path / "results")
    results = wp.load_results("paper-local", tmp_path / "results")
    assert {"mmlu", "gsm8k"} <= set(results.task)
    for chapter, params in (
        ("05_capabilities", {"run": "paper-local", "results_dir": str(tmp_path / "results")}),
        (
            "06_correlation",
            {"toy_run": "paper-local", "results_dir": str(tmp_path / "results"), "n_resamples": 99},
        ),
    ):
        out = run_notebook(
            ROOT / "notebooks" / f"{chapter}.ipynb", tmp_path / f"{chapter}.ipynb", params
        )
        assert out.exists()
    executed = nbformat.read(tmp_path / "05_capabilities.ipynb", as_version=4)
    outputs = json.dumps([c.get("outputs", []) for c in executed.cells])
    assert "`mmlu` acc" in outputs and "`gsm8k` exact_match" in outputs


def test_load_results_columns_name_what_must_match(base, tmp_path):
    experiment.evaluate_config(base, run="r", root=tmp_path)
    frame = wp.load_results("r", tmp_path)
    for column in ("model_fingerprint", "versions", "tasks_data", "resolved_dtype", "removed_pct"):
        assert column in frame
    assert frame["resolved_dtype"].iloc[0] == "float32"
    assert json.loads(frame["versions"].iloc[0])["lm_eval"] == "0.4.13"
    assert isinstance(frame, pd.DataFrame)


def test_file_digest_equals_a_slow_reference(tmp_path, monkeypatch):
    import hashlib

    import widthprune.runs.fingerprint as fp

    data = bytes(range(256)) * 1000 + b"tail"  # 256,004 bytes: pieces of 100,000 + a rest
    path = tmp_path / "w.bin"
    path.write_bytes(data)
    monkeypatch.setattr(fp, "_PIECE", 100_000)
    monkeypatch.setattr(fp, "_BLOCK", 7_000)
    pieces = [hashlib.sha256(data[i : i + 100_000]).digest() for i in range(0, len(data), 100_000)]
    reference = hashlib.sha256(f"{len(data)}\0".encode() + b"".join(pieces)).hexdigest()
    assert fp.file_digest(path) == reference
    empty = tmp_path / "empty.bin"
    empty.write_bytes(b"")
    assert fp.file_digest(empty) == hashlib.sha256(b"0\0" + hashlib.sha256().digest()).hexdigest()


def test_a_sweep_outside_the_checkout_refuses_in_one_line_or_stores_without_reports(
    tmp_path, monkeypatch, capsys
):
    """`widthprune sweep` from another folder once failed every configuration with "No notebook
    at <cwd>/notebooks/04_evaluate.ipynb"."""
    monkeypatch.chdir(tmp_path)
    argv = ["sweep", "--criteria", "ppm", "--pcts", "0", "50", "--limit", "2", "--run", "o"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "--no-reports" in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert not (tmp_path / "results").exists()  # refused before the first point
    assert main([*argv, "--no-reports"]) == 0
    assert sorted(wp.load_results("o", tmp_path / "results")["label"].unique()) == [
        "baseline",
        "ppm-pct50",
    ]
