"""``widthprune prune``: a model pruned and saved as a plain checkpoint."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from ..runs.config import DTYPES
from .arguments import _add_pruning_arguments, _check_calibration


def add_prune(sub) -> None:
    p = sub.add_parser(
        "prune",
        help="prune a model's GLU-MLP layers and save a standard checkpoint",
        description="Score every MLP neuron, keep the best per layer, save the pruned model "
        "(loadable with AutoModelForCausalLM.from_pretrained), its tokenizer and a JSON report.",
    )
    p.add_argument("model", help='"toy", a packaged model name, a local folder or a hub id')
    p.add_argument("--criterion", default="ppm", help="scoring rule (default: ppm)")
    _add_pruning_arguments(p, required=True)
    p.add_argument("--dtype", choices=DTYPES, default="auto")
    p.add_argument("--out", type=Path, required=True, help="output folder")
    p.add_argument("--overwrite", action="store_true", help="replace a non-empty --out folder")
    p.set_defaults(run_command=run_prune)


def run_prune(args) -> int:
    from ..models.loading import load
    from ..pruning.surgery import check_output_folder, save_pruned
    from ..runs.config import EvalConfig
    from ..runs.experiment import prune_as_configured
    from ..runs.fingerprint import checkpoint_folder, original_width

    config = EvalConfig(
        model=args.model,
        criterion=args.criterion,
        pruning_pct=args.pct,
        expansion_ratio=args.ratio,
        round_to=args.round_to,
        rounding=args.rounding,
        calibration=args.calibration,
        calibration_samples=args.calibration_samples,
        seq_len=args.seq_len,
        seed=args.seed,
        dtype=args.dtype,
        device=args.device,
    )
    if config.criterion is None:
        raise ValueError("--pct 0 keeps every neuron: there is nothing to prune")
    source = checkpoint_folder(args.model)
    check_output_folder(args.out, overwrite=args.overwrite, source=source)
    _check_calibration(config)
    width = config.resolved_width()  # bad targets fail here, before the model loads
    if width == original_width(config.model):
        target = f"--pct {args.pct:g}" if args.pct is not None else f"--ratio {args.ratio:g}"
        raise ValueError(
            f"{target} keeps every neuron (width {width} of {width}): there is nothing to prune; "
            "choose a larger percentage or a smaller ratio"
        )
    model, tok = load(config.model, dtype=config.torch_dtype, device=config.device)
    report = prune_as_configured(model, tok, config)
    assert model.config.intermediate_size == width
    save_pruned(model, args.out, tokenizer=tok, report=report, overwrite=args.overwrite)
    print(json.dumps(report.to_dict(), indent=2))
    print(f"saved to {args.out}", file=sys.stderr)
    return 0
