"""Item-by-item agreement of two evaluations of one configuration (two engines, two dtypes).

lm-eval logs each item's raw responses: per-choice log-likelihoods for multiple choice, the
generated text for generation, one log-likelihood for rolling (perplexity) items.
:func:`compare_records` pairs two such logs item by item and says whether each item got the same
answer (the same choice by raw and by length-normalised log-likelihood, the same text, the same
greedy flag) and, where a choice differs, how close the reference's two best choices were
(``margin``: a near-tie is a difference of rounding, not of method). :func:`agreement_table`
sums it up per task.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

__all__ = ["ITEM_COLUMNS", "agreement_table", "compare_records"]

ITEM_COLUMNS = ["task", "doc_id", "kind", "same", "margin", "reference", "other"]


def _key(record: dict) -> tuple[str, int]:
    return record["task"], int(record["doc_id"])


def _first(resp):
    """A response's value: lm-eval wraps each in a list (one per repeat)."""
    return resp[0] if isinstance(resp, list | tuple) and len(resp) == 1 else resp


def _compare(a: dict, b: dict) -> tuple[str, bool, float, str, str]:
    """(kind, same, margin, reference answer, other answer) of one item."""
    ra = [_first(r) for r in a.get("resps", [])]
    rb = [_first(r) for r in b.get("resps", [])]
    if ra and isinstance(ra[0], str):
        return "text", ra == rb, math.nan, ra[0], rb[0] if rb else ""
    if len(ra) == 1 and not isinstance(ra[0], list | tuple):  # rolling log-likelihood
        la, lb = float(ra[0]), float(rb[0])
        same = math.isclose(la, lb, rel_tol=1e-4, abs_tol=1e-3)
        return "loglik", same, math.nan, f"{la:.6g}", f"{lb:.6g}"
    la = np.array([float(x[0]) for x in ra])
    lb = np.array([float(x[0]) for x in rb])
    if len(la) == 1:  # one continuation: is it the greedy one
        ga, gb = bool(ra[0][1]), bool(rb[0][1])
        return "greedy", ga == gb, math.nan, str(ga), str(gb)
    metrics = [m for m in ("acc", "acc_norm") if m in a and m in b]
    same = int(la.argmax()) == int(lb.argmax()) and all(a[m] == b[m] for m in metrics)
    top = np.sort(la)[::-1]
    return "choice", same, float(top[0] - top[1]), str(int(la.argmax())), str(int(lb.argmax()))


def compare_records(reference: list[dict], other: list[dict]) -> pd.DataFrame:
    """One row per item present in both logs (see the module docstring).

    Args:
        reference: lm-eval's logged items (``task`` added), e.g. ``EvalResult.records``.
        other: the same items from the evaluation compared with it.

    Returns:
        Columns :data:`ITEM_COLUMNS`; ``margin`` is the reference's gap between its two best
        choices (NaN for items without choices).

    Raises:
        ValueError: the two logs do not hold the same items.
    """
    ref = {_key(r): r for r in reference}
    oth = {_key(r): r for r in other}
    if ref.keys() != oth.keys():
        missing = sorted(ref.keys() ^ oth.keys())[:5]
        raise ValueError(f"the two evaluations hold different items, e.g. {missing}")
    rows = [(*key, *_compare(ref[key], oth[key])) for key in sorted(ref)]
    return pd.DataFrame(rows, columns=ITEM_COLUMNS)


def agreement_table(items: pd.DataFrame) -> pd.DataFrame:
    """Per task: items, how many agree, their share, and the largest margin among disagreements.

    Args:
        items: :func:`compare_records`' rows.
    """
    out = []
    for (task, kind), g in items.groupby(["task", "kind"], sort=True):
        differ = g[~g["same"]]
        out.append(
            {
                "task": task,
                "kind": kind,
                "items": len(g),
                "same": int(g["same"].sum()),
                "share_same": float(g["same"].mean()),
                "differ": len(differ),
                "largest_margin_of_a_difference": float(differ["margin"].max())
                if len(differ) and differ["margin"].notna().any()
                else math.nan,
            }
        )
    return pd.DataFrame(out)
