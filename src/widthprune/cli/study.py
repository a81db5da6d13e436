"""``widthprune study``: a study run (criteria at every width, both templates, a random floor)."""

from __future__ import annotations

import sys
import time
from pathlib import Path

from ..runs.config import DTYPES


def add_study(sub) -> None:
    p = sub.add_parser(
        "study",
        help="evaluate a study run of one model in one process, resumable",
        description="Every configuration of a study run (runs/study.py): the criteria at every "
        "width with and without the chat template, the random criterion at a few widths and "
        "seeds, one baseline per template; evaluated one after another with the model loaded "
        "once, each stored as it finishes, so a second call resumes. --deadline stops starting "
        "configurations after that many seconds (exit status 3: call again to go on); "
        "--export writes what is stored of the run in the package's recorded form, naming the "
        "configurations left in its provenance.",
    )
    p.add_argument("model", help='a packaged model name, "toy" or a checkpoint folder')
    p.add_argument("--tasks", default="real", help="a preset or comma-separated task names")
    p.add_argument("--limit", type=float, default=1000, help="items per task (default 1000)")
    p.add_argument("--criteria", nargs="+", default=["ppm", "wanda"])
    p.add_argument("--pcts", nargs="+", type=float, default=None, help="default: 10 to 60")
    p.add_argument("--random-pcts", nargs="+", type=float, default=[20.0, 40.0, 60.0])
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    p.add_argument(
        "--templates",
        nargs="+",
        choices=["plain", "chat"],
        default=["plain", "chat"],
        help="prompts as they are (plain), in the model's chat template (chat), or both (the "
        "default); a base model without a chat template takes plain alone, and its random "
        "floor then goes plain too",
    )
    p.add_argument(
        "--recovery",
        default=None,
        help="a recovery setting (e.g. kd:steps=200,text=lambada): each point of "
        "--recovery-points is also evaluated recovered, first after the baselines",
    )
    p.add_argument(
        "--recovery-points",
        nargs="+",
        default=None,
        metavar="CRITERION:PCT",
        help="the points recovered (default: ppm:40 ppm:60 wanda:40)",
    )
    p.add_argument("--run", required=True, help="the results run")
    p.add_argument("--results-dir", default="results")
    p.add_argument("--device", default="cpu")
    p.add_argument("--dtype", choices=DTYPES, default="float32")
    p.add_argument("--deadline", type=float, default=None, help="seconds; see above")
    p.add_argument("--export", type=Path, default=None, help="folder for the recorded form")
    p.add_argument(
        "--shard",
        default=None,
        help="I/N: evaluate only every N-th configuration from the I-th (0-based), so that N "
        "processes share a run (e.g. on one GPU with WIDTHPRUNE_GPU_BUDGET_GB set); "
        "--export then waits for a call without --shard",
    )
    p.set_defaults(run_command=run_study)


def run_study(args) -> int:
    from ..runs.study import RECOVERY_POINTS, STUDY_PCTS, evaluate_study, study_configs

    templates = tuple(dict.fromkeys(t == "chat" for t in args.templates))
    limit = int(args.limit) if args.limit >= 1 and args.limit == int(args.limit) else args.limit
    configs = study_configs(
        args.model,
        tasks=args.tasks,
        limit=limit,
        criteria=tuple(args.criteria),
        pcts=tuple(args.pcts) if args.pcts else STUDY_PCTS,
        random_pcts=tuple(args.random_pcts),
        seeds=tuple(args.seeds),
        templates=templates,
        random_templates=(True,) if True in templates else (False,),
        recovery=args.recovery,
        recovery_points=_points(args.recovery_points) if args.recovery_points else RECOVERY_POINTS,
        device=args.device,
        dtype=args.dtype,
    )
    if args.shard is not None:
        index, count = _shard(args.shard)
        configs = configs[index::count]
    start = time.monotonic()
    left = evaluate_study(configs, args.run, args.results_dir, deadline=args.deadline)
    done = len(configs) - len(left)
    print(
        f"widthprune study: {done} of {len(configs)} configurations stored "
        f"({time.monotonic() - start:.0f} s this call)"
    )
    if left:
        print(f"widthprune study: {len(left)} left; run the same command again to go on")
    if args.export is not None and args.shard is None and len(left) < len(configs):
        import platform
        from datetime import UTC, datetime

        import torch

        from ..analysis.recorded import export_run
        from ..runs.config import git_commit, package_version

        cuda = args.device.startswith("cuda") and torch.cuda.is_available()
        provenance = {
            "command": "widthprune " + " ".join(sys.argv[1:]),
            "commit": git_commit(),
            "device": torch.cuda.get_device_name(0) if cuda else platform.processor(),
            "torch": torch.__version__,
            "transformers": package_version("transformers"),
            "python": platform.python_version(),
            "exported": datetime.now(UTC).isoformat(timespec="seconds"),
            "planned": len(configs),
            "left": [c.label for c in left],
        }
        export_run(args.run, args.results_dir, args.export, provenance=provenance)
        print(f"widthprune study: exported to {args.export} ({len(left)} configurations left)")
    return 3 if left else 0


def _points(texts) -> tuple[tuple[str, float], ...]:
    """``["ppm:40", ...]`` as ``(("ppm", 40.0), ...)``, checked."""
    points = []
    for text in texts:
        criterion, _, pct = text.partition(":")
        try:
            points.append((criterion, float(pct)))
        except ValueError:
            raise ValueError(f"--recovery-points takes CRITERION:PCT, got {text!r}") from None
    return tuple(points)


def _shard(text: str) -> tuple[int, int]:
    """``"I/N"`` as (I, N), checked."""
    try:
        index, count = (int(part) for part in text.split("/"))
    except ValueError:
        index, count = -1, 0
    if not 0 <= index < count:
        raise ValueError(f"--shard must be I/N with 0 <= I < N, got {text!r}")
    return index, count
