"""The ``widthprune`` command line: one sub-command per stage of the pipeline.

A user's mistake (a bad value, a missing file, an unknown name) ends with one line on stderr
and exit status 2, never a traceback; set ``WIDTHPRUNE_DEBUG=1`` to see the traceback anyway.
Heavy packages are imported inside the commands, so ``--help`` answers at once.
"""

from __future__ import annotations

import argparse
import os
import sys

from . import (
    chapters,
    check_book,
    check_exercises,
    evaluate,
    export_gguf,
    prune,
    published,
    recover,
    study,
    sweep,
    toy,
)
from .arguments import USER_ERRORS


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="widthprune", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    prune.add_prune(sub)
    recover.add_recover(sub)
    sweep.add_sweep(sub)
    study.add_study(sub)
    chapters.add_chapters(sub)
    check_book.add_check_book(sub)
    evaluate.add_evaluate(sub)
    toy.add_toy(sub)
    published.add_published(sub)
    export_gguf.add_export_gguf(sub)
    check_exercises.add_check_exercises(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.run_command(args)
    except KeyboardInterrupt:
        print(f"widthprune {args.command}: interrupted", file=sys.stderr)
        return 130
    except USER_ERRORS as err:
        if os.environ.get("WIDTHPRUNE_DEBUG"):
            raise
        message = err.args[0] if isinstance(err, KeyError) and err.args else err
        print(f"widthprune {args.command}: error: {message}", file=sys.stderr)
        return 2
