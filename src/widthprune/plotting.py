"""Figures, following seaborn's axes-level contract.

Every function takes a long-form frame as ``data=`` and keyword arguments, draws on ``ax`` (a
new one if omitted) and returns the Axes. No titles, no ``show()``, no ``savefig``: captions
belong to the book.
"""

from __future__ import annotations

import matplotlib.pyplot as plt


def _axes(ax=None):
    """The Axes to draw on: ``ax`` or a new one of the book's default size."""
    if ax is None:
        _, ax = plt.subplots(figsize=(6.4, 4.0))
    return ax
