"""``widthprune chapters``: the book's chapters run through papermill."""

from __future__ import annotations

from pathlib import Path

from .arguments import USER_ERRORS, _parse_parameter


def add_chapters(sub) -> None:
    p = sub.add_parser(
        "chapters",
        help="execute the chapter notebooks into book/generated/",
        description="Execute chapters with papermill (in reading order) into book/generated/.",
    )
    p.add_argument("names", nargs="*", help="chapters to run (default: all), e.g. 02_scoring")
    p.add_argument(
        "-p",
        "--parameter",
        action="append",
        default=[],
        metavar="CHAPTER:NAME=VALUE",
        help="override a chapter parameter (JSON value), e.g. 04_evaluate:limit=20",
    )
    p.set_defaults(run_command=run_chapters_command)


def _chapter_refusal(err: Exception, names) -> ValueError | None:
    """A chapter that stopped on a user error (a cell's ValueError, say) as that one error."""
    ename = getattr(err, "ename", None)  # papermill's PapermillExecutionError
    if ename not in {e.__name__ for e in USER_ERRORS}:
        return None
    generated = Path("book/generated")
    failed = [generated / f"{n}.failed.ipynb" for n in names]
    failed = max((p for p in failed if p.is_file()), key=lambda p: p.stat().st_mtime, default=None)
    chapter = failed.name.split(".")[0] if failed else "a chapter"
    reason = (str(err.evalue).strip().splitlines() or [ename])[0]
    kept = f" (its output so far: {failed})" if failed else ""
    return ValueError(f"{chapter} stopped at cell [{err.exec_count}]: {ename}: {reason}{kept}")


def run_chapters_command(args) -> int:
    from ..chapters.runner import CHAPTERS, run_chapters

    names = tuple(args.names) or CHAPTERS
    parameters: dict[str, dict] = {}
    for text in args.parameter:
        chapter, name, value = _parse_parameter(text)
        parameters.setdefault(chapter, {})[name] = value
    try:
        seconds = run_chapters(names, parameters=parameters)
    except Exception as err:
        raise _chapter_refusal(err, names) or err from None
    for name, s in seconds.items():
        print(f"{name}: {s:.1f} s")
    return 0
