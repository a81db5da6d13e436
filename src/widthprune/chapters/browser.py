"""A reader's check of the built book: every page opened in headless Chromium.

Each page is served from a loopback HTTP server, opened, and inspected for what a reader would
notice: JavaScript errors, failed requests, images that did not load, figures without an
image, figures without a caption (a ``figure`` without a non-empty ``figcaption``, or a cell's
output image outside such a figure), tables wider than the column they sit in (a table in a
scroll box fits: the box is the column's width), and error output of executed cells. A
full-page screenshot of each is saved.

A browser asks for a page's icon on its own schedule, sometimes after the page has loaded and
been closed, so a missing icon shows up as a console error only now and then. The icon is
therefore checked from the page's HTML as well: the ``<link rel="icon">`` it declares, or the
site's ``/favicon.ico`` where it declares none, must exist.
"""

from __future__ import annotations

import functools
import os
import shutil
import threading
from html.parser import HTMLParser
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pandas as pd
from tqdm.auto import tqdm

__all__ = ["book_pages", "check_pages", "find_chromium", "missing_icon"]

_SKIP_DIRS = {"_static", "_sources", "_images", "_sphinx_design_static", "_panels_static"}
_SKIP_PAGES = {"genindex.html", "search.html"}
# Chromium flags that keep a headless browser quiet on a machine without network
_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
_INSPECT = """() => ({
  broken_images: Array.from(document.images)
      .filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.getAttribute('src')),
  empty_figures: Array.from(document.querySelectorAll('figure'))
      .filter(f => !f.querySelector('img, svg, canvas')).length,
  uncaptioned_figures: Array.from(document.querySelectorAll('figure, .cell_output img'))
      .filter(e => {
        const f = e.tagName === 'FIGURE' ? e : e.closest('figure');
        const c = f && f.querySelector('figcaption');
        return !(c && c.textContent.trim());
      })
      .filter(e => e.tagName === 'FIGURE' || !e.closest('figure'))
      .map(e => (e.querySelector && e.querySelector('img') || e).getAttribute('src')
                || e.id || 'figure'),
  wide_tables: Array.from(document.querySelectorAll('table')).filter(t => {
        const column = t.parentElement.closest('main, article, [role=main], body');
        const room = column.getBoundingClientRect();
        let shown = t;  // what the reader sees of the table: its scroll box where it has one
        for (let e = t; e && e !== column; e = e.parentElement) {
          if (['auto', 'scroll'].includes(getComputedStyle(e).overflowX)) { shown = e; break; }
        }
        const box = shown.getBoundingClientRect();
        return box.right > room.right + 1 || box.left < room.left - 1;
      }).map(t => (t.querySelector('th, td') || t).textContent.trim().slice(0, 40)),
  error_outputs: document.querySelectorAll(
      '.output.error, .output.traceback, .cell_output .traceback, div.ansi-red-fg').length,
  title: document.title,
})"""


def find_chromium() -> str:
    """Path of a Chromium executable (``$CHROMIUM``, then the usual names on PATH)."""
    for candidate in (os.environ.get("CHROMIUM"), "chromium", "chromium-browser", "google-chrome"):
        if candidate and (found := shutil.which(candidate)):
            return found
    raise FileNotFoundError(
        "No Chromium found. Install it (Debian: `apt-get install chromium`) or set $CHROMIUM."
    )


def _located(message) -> str:
    """A console message with the address it is about (a 404 names no file in its text)."""
    url = (message.location or {}).get("url")
    return f"{message.text} ({url})" if url and url not in message.text else message.text


def book_pages(html_dir: str | os.PathLike) -> list[Path]:
    """The HTML pages of a built book, relative to ``html_dir``, without Sphinx's own pages."""
    root = Path(html_dir)
    if not (root / "index.html").is_file():
        raise FileNotFoundError(f"No built book at {root} (index.html missing)")
    pages = []
    for path in sorted(root.rglob("*.html")):
        rel = path.relative_to(root)
        if rel.parts[0] in _SKIP_DIRS or rel.name in _SKIP_PAGES:
            continue
        pages.append(rel)
    return pages


class _IconLinks(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.hrefs: list[str] = []

    def handle_starttag(self, tag, attrs) -> None:
        found = dict(attrs)
        if tag == "link" and "icon" in (found.get("rel") or "").lower().split():
            self.hrefs.append(found.get("href") or "")


def missing_icon(html_dir: str | os.PathLike, page: str | os.PathLike) -> str | None:
    """The icon a browser would ask for on ``page`` when no such file exists, else ``None``.

    The icon is the first ``<link rel="icon">`` of the page, resolved against the page's
    folder (an absolute path against ``html_dir``), or ``/favicon.ico`` where the page declares
    none. Icons on other hosts and ``data:`` icons are not checked.
    """
    root = Path(html_dir).resolve()
    rel = Path(page)
    links = _IconLinks()
    links.feed((root / rel).read_text(encoding="utf-8", errors="replace"))
    href = links.hrefs[0] if links.hrefs else "/favicon.ico"
    if href.startswith(("data:", "http:", "https:", "//")):
        return None
    path = href.split("#", 1)[0].split("?", 1)[0]
    target = root / path.lstrip("/") if path.startswith("/") else root / rel.parent / path
    return None if target.resolve().is_file() else href


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:  # the browser's view is what is reported
        pass


def check_pages(
    html_dir: str | os.PathLike,
    *,
    screenshots: str | os.PathLike | None = None,
    executable: str | None = None,
    width: int = 1280,
) -> pd.DataFrame:
    """Open every page of a built book and report what a reader would see go wrong.

    Args:
        html_dir: the built HTML (``_build/html``).
        screenshots: folder for one full-page PNG per page (``None``: no screenshots).
        executable: Chromium to use (default: :func:`find_chromium`).
        width: viewport width in pixels.

    Returns:
        One row per page: ``page, title, console_errors, failed_requests, broken_images,
        missing_icon, empty_figures, uncaptioned_figures, wide_tables (the first cell of each),
        error_outputs, screenshot, ok`` (lists hold the messages
        or sources; a console error names the resource it is about where the browser says).
    """
    from playwright.sync_api import sync_playwright

    root = Path(html_dir).resolve()
    pages = book_pages(root)
    shots = Path(screenshots) if screenshots is not None else None
    if shots is not None:
        shots.mkdir(parents=True, exist_ok=True)
    handler = functools.partial(_QuietHandler, directory=str(root))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}/"
    rows = []
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=executable or find_chromium(), args=_FLAGS)
            for rel in tqdm(pages, desc="pages", unit="page"):
                page = browser.new_page(viewport={"width": width, "height": 900})
                errors: list[str] = []
                failed: list[str] = []
                page.on(
                    "console",
                    lambda m, e=errors: e.append(_located(m)) if m.type == "error" else None,
                )
                page.on("pageerror", lambda exc, e=errors: e.append(str(exc)))
                page.on("requestfailed", lambda r, f=failed: f.append(r.url))
                page.on(
                    "response",
                    lambda r, f=failed: (
                        f.append(f"{r.status} {r.url}") if r.status >= 400 else None
                    ),
                )
                page.goto(base + rel.as_posix(), wait_until="load")
                page.wait_for_load_state("networkidle")  # a redirect page navigates on
                found = page.evaluate(_INSPECT)
                shot = None
                if shots is not None:
                    shot = shots / (
                        rel.as_posix().replace("/", "__").removesuffix(".html") + ".png"
                    )
                    page.screenshot(path=str(shot), full_page=True)
                page.close()
                rows.append(
                    {
                        "page": rel.as_posix(),
                        "title": found["title"],
                        "console_errors": errors,
                        "failed_requests": failed,
                        "broken_images": found["broken_images"],
                        "missing_icon": missing_icon(root, rel),
                        "empty_figures": found["empty_figures"],
                        "uncaptioned_figures": found["uncaptioned_figures"],
                        "wide_tables": found["wide_tables"],
                        "error_outputs": found["error_outputs"],
                        "screenshot": str(shot) if shot else None,
                    }
                )
            browser.close()
    finally:
        server.shutdown()
        server.server_close()
    frame = pd.DataFrame(rows)
    frame["ok"] = (
        (frame.console_errors.str.len() == 0)
        & (frame.failed_requests.str.len() == 0)
        & (frame.broken_images.str.len() == 0)
        & frame.missing_icon.isna()
        & (frame.empty_figures == 0)
        & (frame.uncaptioned_figures.str.len() == 0)
        & (frame.wide_tables.str.len() == 0)
        & (frame.error_outputs == 0)
    )
    return frame
