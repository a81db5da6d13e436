"""``widthprune published``: the study's published figures as tables."""

from __future__ import annotations

import sys
from pathlib import Path


def add_published(sub) -> None:
    p = sub.add_parser(
        "published",
        help="print the published Llama-3.2 results as CSV, or rebuild the package's tables",
        description="Print one of the published tables (benchmarks, efficiency, criteria) as "
        "CSV, or rebuild all of them from the study's result files with --rebuild.",
    )
    p.add_argument("--kind", default="benchmarks", help="benchmarks, efficiency or criteria")
    p.add_argument(
        "--rebuild", type=Path, metavar="REFERENCE_DIR", help="folder holding paper-repo-data/"
    )
    p.add_argument(
        "--out", type=Path, default=None, help="where --rebuild writes (default: package)"
    )
    p.set_defaults(run_command=run_published)


def run_published(args) -> int:
    from ..analysis.published import published, write_published_tables

    if args.rebuild is not None:
        for path in write_published_tables(args.rebuild, args.out):
            print(f"wrote {path}", file=sys.stderr)
        return 0
    published(args.kind).to_csv(sys.stdout, index=False)
    return 0
