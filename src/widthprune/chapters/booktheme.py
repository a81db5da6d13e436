"""A Sphinx extension for the book: pages that load offline and without script errors.

Jupyter Book 1 registers sphinx-thebe's inline configuration script once per read of the
sources, so a page can declare ``THEBE_JS_URL`` twice and the browser reports an error; this
extension keeps the first copy of each inline script. It also lets the theme start in light
mode instead of an empty mode, which the theme logs as an error on a reader's first visit.
Finally it writes the book's icon as ``favicon.ico`` at the root of the site: the page that
redirects a reader from the root to the first chapter declares no icon, so a browser asks the
server for ``/favicon.ico`` and would get a 404.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["deduplicate_scripts", "root_favicon", "setup"]


def deduplicate_scripts(app, pagename, templatename, context, doctree) -> None:
    """Drop repeated script entries (same file or same inline body) from a page's context."""
    scripts = context.get("script_files")
    if not scripts:
        return
    seen, kept = set(), []
    for script in scripts:
        attributes = getattr(script, "attributes", {})
        # the same inline script is registered once with filename None and once with ""
        key = (str(getattr(script, "filename", script) or ""), attributes.get("body"))
        if key not in seen:
            seen.add(key)
            kept.append(script)
    context["script_files"] = kept
    # the theme's first script falls back to an empty mode, which it then reports as an error
    context["default_mode"] = context.get("default_mode") or "light"


def root_favicon(app, exception) -> None:
    """Write the configured ``html_favicon`` (a local image) as ``favicon.ico`` at the root."""
    favicon = getattr(app.config, "html_favicon", None)
    if exception is not None or app.builder.format != "html" or not favicon:
        return
    if "://" in str(favicon):
        return  # an icon on another host: the pages link to it, the root needs none
    source = Path(app.confdir) / favicon  # an absolute path stays as it is
    target = Path(app.outdir) / "favicon.ico"
    if source.suffix.lower() == ".ico":
        target.write_bytes(source.read_bytes())
        return
    from PIL import Image

    with Image.open(source) as image:
        sizes = [(s, s) for s in (16, 32, 48, 64) if s <= min(image.size)] or [image.size]
        image.save(target, format="ICO", sizes=sizes)


def setup(app) -> dict:
    app.connect("html-page-context", deduplicate_scripts, priority=900)
    app.connect("build-finished", root_favicon)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
