"""What every figure shares: the Axes to draw on, the legend outside the data, plain log
ticks, and the label of a metric's filter."""

from __future__ import annotations

import matplotlib.pyplot as plt


def _axes(ax=None):
    """The Axes to draw on: ``ax`` or a new one of the book's default size."""
    if ax is None:
        _, ax = plt.subplots(figsize=(6.4, 4.0))
    return ax


def _legend_outside(ax, **kw):
    """Move the legend to the right of the axes, where it hides no data."""
    if ax.get_legend() is not None or kw:
        ax.legend(
            loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize="small", frameon=False, **kw
        )
    return ax


def _plain_log(ax, axis: str = "y"):
    """A log axis labelled with plain numbers (5, 10, 20, 50), not powers of ten."""
    from matplotlib.ticker import FuncFormatter, LogLocator

    target = ax.yaxis if axis == "y" else ax.xaxis
    low, high = sorted(ax.get_ylim() if axis == "y" else ax.get_xlim())
    narrow = high / max(low, 1e-300) < 10  # less than a decade: label every integer step
    subs = tuple(range(1, 10)) if narrow else (1.0, 2.0, 5.0)
    target.set_major_locator(LogLocator(base=10, subs=subs))
    target.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    target.set_minor_formatter(FuncFormatter(lambda v, _: ""))
    return ax


def _filter_suffix(filters):
    """`` (filter)`` where lm-eval used a filter other than its default ``none``."""
    return filters.fillna("none").map(lambda f: "" if f == "none" else f" ({f})")
