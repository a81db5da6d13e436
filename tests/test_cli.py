import json

import pytest
import torch
from conftest import make_tiny_llama, make_tiny_tokenizer

import widthprune as wp
from widthprune.cli import main


@pytest.fixture
def checkpoint(tmp_path):
    model, tok = make_tiny_llama(seed=5), make_tiny_tokenizer()
    path = tmp_path / "tiny"
    model.save_pretrained(path)
    tok.save_pretrained(path)
    return path


def test_cli_prune_writes_a_loadable_checkpoint(tmp_path, checkpoint, capsys):
    out = tmp_path / "pruned"
    assert (
        main(["prune", str(checkpoint), "--pct", "40", "--criterion", "ppm", "--out", str(out)])
        == 0
    )
    report = json.loads((out / "prune_report.json").read_text())
    assert report["width_after"] == 23 and json.loads(capsys.readouterr().out) == report
    model, tok = wp.load(out)
    assert wp.layer_widths(model) == {0: 23, 1: 23}
    # the same pruning in memory gives the same logits
    reference = make_tiny_llama(seed=5)
    wp.prune(reference, criterion="ppm", pruning_pct=40)
    ids = torch.tensor([[5, 9, 14, 30]])
    with torch.no_grad():
        assert torch.equal(model(input_ids=ids).logits, reference(input_ids=ids).logits)


def test_cli_activation_criterion_uses_calibration_file(tmp_path, checkpoint):
    texts = tmp_path / "calib.txt"
    texts.write_text(
        "\n\n".join(" ".join(f"w{4 + (i * j) % 57}" for j in range(30)) for i in range(5))
    )
    out = tmp_path / "pruned"
    args = ["prune", str(checkpoint), "--ratio", "0.5", "--criterion", "wanda", "--round-to", "8"]
    code = main(
        [
            *args,
            "--calibration",
            str(texts),
            "--seq-len",
            "8",
            "--calibration-samples",
            "4",
            "--out",
            str(out),
        ]
    )
    assert code == 0
    assert json.loads((out / "prune_report.json").read_text())["width_after"] == 16


def _error(capsys, argv) -> str:
    """Run the command line; assert a user error (exit 2, one line, no traceback)."""
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and len(err.strip().splitlines()) <= 3, err
    return err


def test_cli_reports_bad_input(tmp_path, checkpoint, capsys):
    out = str(tmp_path / "x")
    assert "above the current width" in _error(
        capsys, ["prune", str(checkpoint), "--ratio", "9", "--out", out]
    )
    assert "Did you mean 'ppm'" in _error(
        capsys, ["prune", str(checkpoint), "--pct", "10", "--criterion", "ppn", "--out", out]
    )
    assert "No checkpoint folder" in _error(
        capsys, ["prune", str(tmp_path / "missing"), "--pct", "10", "--out", out]
    )
    assert "['toy', 'smollm2-135m-instruct', 'gemma-3-270m']" in _error(
        capsys, ["prune", "smollm2", "--pct", "10", "--out", out]
    )
    assert not (tmp_path / "x").exists()


def test_hub_id_offline_error_says_what_to_do():
    with pytest.raises(FileNotFoundError, match="local-dir"):
        wp.load("widthprune-test/not-a-model")
