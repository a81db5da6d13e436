"""``widthprune check-book``: the built book checked in a headless browser."""

from __future__ import annotations

from pathlib import Path


def add_check_book(sub) -> None:
    p = sub.add_parser(
        "check-book",
        help="open every page of the built book in headless Chromium and report problems",
    )
    p.add_argument("html", nargs="?", default="_build/html", type=Path)
    p.add_argument("--screenshots", default="_build/screenshots", type=Path)
    p.set_defaults(run_command=run_check_book)


def run_check_book(args) -> int:
    from ..chapters.browser import check_pages

    report = check_pages(args.html, screenshots=args.screenshots)
    bad = report[~report.ok]
    print(
        f"{len(report)} pages opened, {len(bad)} with problems; screenshots in {args.screenshots}"
    )
    for row in bad.itertuples():
        print(
            f"  {row.page}: console errors {row.console_errors}, failed requests "
            f"{row.failed_requests}, broken images {row.broken_images}, missing icon "
            f"{row.missing_icon}, empty figures "
            f"{row.empty_figures}, error outputs {row.error_outputs}"
        )
    return 1 if len(bad) else 0
