"""Downloads that upstream checker modules start by themselves, kept from running.

lm-eval's IFEval module calls ``nltk.download("punkt_tab")`` when it is imported, and IFBench's
downloads a spaCy model at import (its checkers never use spaCy) and NLTK data whenever a checker
is built. The project runs offline: inside :func:`no_downloads` those calls do nothing, so a
missing resource shows up as NLTK's own ``LookupError`` (or the project's check before a run)
instead of a network attempt.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import types
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["import_offline", "no_downloads"]


def _skip_download(*args, **kwargs) -> bool:
    """What ``nltk.download`` returns when it could not fetch anything."""
    return False


@contextmanager
def no_downloads() -> Iterator[None]:
    """Within the block, NLTK's and spaCy's download functions do nothing.

    spaCy is patched only where a module asks for ``spacy.cli``: when spaCy is installed its
    ``download`` is replaced for the block; when it is not, ``spacy.cli`` resolves for the block
    to a module holding only that do-nothing ``download`` (all IFBench imports from it).
    """
    import nltk

    saved_nltk = nltk.download
    nltk.download = _skip_download
    spacy_cli, saved_spacy, added = None, None, False
    if importlib.util.find_spec("spacy") is not None:
        spacy_cli = importlib.import_module("spacy.cli")
        saved_spacy, spacy_cli.download = spacy_cli.download, _skip_download
    elif "spacy.cli" not in sys.modules:
        module = types.ModuleType("spacy.cli", "spaCy is not installed; downloads are skipped.")
        module.download = _skip_download
        sys.modules["spacy.cli"] = module
        added = True
    try:
        yield
    finally:
        nltk.download = saved_nltk
        if spacy_cli is not None:
            spacy_cli.download = saved_spacy
        if added:
            sys.modules.pop("spacy.cli", None)


def import_offline(name: str) -> types.ModuleType:
    """Import module ``name`` with downloads kept from running (see :func:`no_downloads`)."""
    if name in sys.modules:
        return sys.modules[name]
    with no_downloads():
        return importlib.import_module(name)
