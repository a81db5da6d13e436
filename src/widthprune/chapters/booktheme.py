"""A Sphinx extension for the book: pages that load offline and without script errors.

Jupyter Book 1 registers sphinx-thebe's inline configuration script once per read of the
sources, so a page can declare ``THEBE_JS_URL`` twice and the browser reports an error; this
extension keeps the first copy of each inline script. It also lets the theme start in light
mode instead of an empty mode, which the theme logs as an error on a reader's first visit.
"""

from __future__ import annotations

__all__ = ["deduplicate_scripts", "setup"]


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


def setup(app) -> dict:
    app.connect("html-page-context", deduplicate_scripts, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
