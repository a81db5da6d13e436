"""Rounds of measurements: the plan, a fresh random order per round, the spread across rounds.

One pass over the widths in a fixed order ties each width to its place in the run: the first
measurements of a process run slowest, so whatever is measured first looks worst. Repeating the
whole plan in rounds, each in its own random order, breaks that tie, and the spread across
rounds shows how far one figure can be trusted. Rows carry their round in the ``round`` column
of :data:`widthprune.efficiency.timing.COLUMNS`.

A width is said to differ from the reference (the unpruned width) only when the two sets of
rounds do not overlap at all: every round of the width below every round of the reference, or
every one above. If width made no difference, the rounds would be exchangeable and a complete
separation in a given direction would happen by chance with probability
:func:`separation_chance` (1 in 20 for three rounds each). A table of many widths is many such
tests: over 30 cells, one spurious separation is to be expected, so the rule also asks the
median ratio to differ from 1 by more than a margin that one-pass noise does not reach (5 % by
default), and every other cell is "undetermined". The bound on the chance of any spurious
separation in the table (Bonferroni: the cells times the chance of one) is given with it.
"""

from __future__ import annotations

from collections.abc import Sequence
from math import comb

import numpy as np
import pandas as pd

__all__ = [
    "compare_rounds",
    "measured_keys",
    "order_rounds",
    "plan_measurements",
    "round_ratios",
    "separation_chance",
    "summarise_rounds",
]

KEY = ["shape", "width", "batch", "path"]  # one measurement of a round
GRAPH_PATHS = {"static_eager": "static_cudagraph"}  # the graph path's fallback counts as it


def plan_measurements(
    shapes: Sequence[str],
    widths: Sequence[int],
    neighbours: Sequence[int],
    batches_of: dict[str, Sequence[int]],
    paths: Sequence[str],
) -> list[tuple[str, int, int, str]]:
    """Every (shape, width, batch, path) of one round, in a fixed order.

    The study's ``widths`` are measured on every path; the ``neighbours`` on the graph paths
    only (``hf_generate`` does not follow the width). ``batches_of`` gives each path's batches.
    """
    plan = []
    for shape in shapes:
        for width in dict.fromkeys([*widths, *neighbours]):
            for path in paths:
                if path == "hf_generate" and width not in widths:
                    continue
                plan += [(shape, width, batch, path) for batch in batches_of[path]]
    return plan


def order_rounds(items: Sequence, rounds: int, seed: int) -> list[tuple[int, object]]:
    """``rounds`` repetitions of ``items``, each shuffled afresh: ``[(round, item), ...]``.

    Round ``r`` is shuffled by a generator seeded with ``(seed, r)``, so its order does not
    depend on how many rounds are asked for, and a resumed run sees the same order again.
    """
    if rounds < 1:
        raise ValueError(f"rounds must be >= 1, got {rounds}")
    out = []
    for r in range(rounds):
        order = np.random.default_rng([seed, r]).permutation(len(items))
        out += [(r, items[i]) for i in order]
    return out


def measured_keys(frame: pd.DataFrame, redo: Sequence[tuple] = ()) -> set[tuple]:
    """The (shape, width, batch, path, round) measured with a TPOT in ``frame``.

    A graph path that fell back to the eager loop counts as measured under the graph path's
    name; failed measurements (NaN) do not count, so a resumed run tries them again. ``redo``
    holds (shape, width, path) triples to measure again in every round.
    """
    rows = frame.assign(path=frame["path"].replace(GRAPH_PATHS), round=frame.get("round", 0)).query(
        "metric == 'tpot' and value == value"
    )
    return {
        (r.shape, int(r.width), int(r.batch), r.path, int(r.round))
        for r in rows.itertuples()
        if (r.shape, int(r.width), r.path) not in set(redo)
    }


def summarise_rounds(
    frame: pd.DataFrame, metrics: Sequence[str] = ("tpot", "energy_per_token")
) -> pd.DataFrame:
    """The spread across rounds of each measurement's value.

    Returns:
        One row per shape, width, batch, path and metric: unit, median, min, max, q1, q3 over
        the rounds and ``rounds`` (how many).
    """
    rows = frame[frame["metric"].isin(metrics) & frame["value"].notna()]
    grouped = rows.groupby([*KEY, "metric", "unit"], sort=True)["value"]
    return grouped.agg(
        median="median",
        min="min",
        max="max",
        q1=lambda v: v.quantile(0.25),
        q3=lambda v: v.quantile(0.75),
        rounds="count",
    ).reset_index()


def round_ratios(
    frame: pd.DataFrame, metric: str, reference_width: int | None = None
) -> pd.DataFrame:
    """Each width's value over the reference width's value in the same round.

    Args:
        frame: measurements with a ``round`` column.
        metric: e.g. ``"tpot"`` or ``"energy_per_token"``.
        reference_width: the width to divide by; default the widest of each shape.

    Returns:
        One row per shape, width, batch, path and round present for both widths: ``value``,
        ``reference`` (the reference's value), ``ratio``, ``reference_width``.
    """
    rows = frame.query("metric == @metric and value == value")[[*KEY, "round", "value"]]
    ref_w = rows.groupby("shape")["width"].transform("max") if reference_width is None else None
    rows = rows.assign(reference_width=reference_width if ref_w is None else ref_w)
    ref = rows[rows["width"] == rows["reference_width"]]
    ref = ref.rename(columns={"value": "reference"}).drop(columns=["width", "reference_width"])
    out = rows[rows["width"] != rows["reference_width"]].merge(
        ref, on=["shape", "batch", "path", "round"]
    )
    return out.assign(ratio=out["value"] / out["reference"]).astype({"width": int, "batch": int})


MARGIN = 0.05  # the least |median ratio - 1| a verdict other than "undetermined" needs


def compare_rounds(
    frame: pd.DataFrame,
    metric: str,
    reference_width: int | None = None,
    *,
    margin: float = MARGIN,
) -> pd.DataFrame:
    """Each width against the reference width, across rounds (see the module's rule).

    Args:
        frame: measurements with a ``round`` column.
        metric: e.g. ``"tpot"`` or ``"energy_per_token"``.
        reference_width: the width to divide by; default the widest of each shape.
        margin: the least distance of the median ratio from 1 for "lower" or "higher".

    Returns:
        One row per shape, width, batch and path: the per-round ratio's median, min and max;
        the width's and the reference's min and max over rounds; ``rounds`` (paired rounds);
        ``verdict``: "lower" (every round below every reference round and the median ratio
        below 1 - margin), "higher" (every one above, and above 1 + margin) or "undetermined";
        ``chance``, the probability of such a separation in a given direction by chance; and
        ``family_chance``, the Bonferroni bound over the table's cells of a separation in
        either direction anywhere by chance.
    """
    ratios = round_ratios(frame, metric, reference_width)
    keys = [*KEY, "reference_width"]
    out = ratios.groupby(keys, sort=True).agg(
        ratio_median=("ratio", "median"),
        ratio_min=("ratio", "min"),
        ratio_max=("ratio", "max"),
        value_min=("value", "min"),
        value_max=("value", "max"),
        reference_min=("reference", "min"),
        reference_max=("reference", "max"),
        rounds=("round", "nunique"),
    )
    out = out.reset_index()
    lower = (out["value_max"] < out["reference_min"]) & (out["ratio_median"] < 1 - margin)
    higher = (out["value_min"] > out["reference_max"]) & (out["ratio_median"] > 1 + margin)
    verdict = np.select([lower, higher], ["lower", "higher"], default="undetermined")
    chance = np.array([separation_chance(n, n) for n in out["rounds"]])
    family = min(1.0, float((2 * chance).sum()))
    return out.assign(verdict=verdict, chance=chance, family_chance=family)


def separation_chance(n_a: int, n_b: int) -> float:
    """Probability that ``n_a`` exchangeable values all fall below ``n_b`` others: 1/C(n, n_a)."""
    return 1.0 / comb(n_a + n_b, n_a)
