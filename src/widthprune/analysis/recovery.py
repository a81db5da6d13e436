"""What recovery after pruning gives back: per capability, paired tests and the share of the loss.

Three configurations of one model are compared item by item, on the same items: the unpruned
model (U), the pruned one (P) and the pruned one after recovery (R). For each task and metric
(a score where higher is better):

- three paired comparisons, P against U (what pruning cost), R against P (what recovery
  changed) and R against U (what is still missing), each by
  :func:`~widthprune.analysis.comparisons.compare_items` (exact McNemar for 0/1 items), their p
  values adjusted by Holm's method over every comparison of the table;
- the **share of the loss recovered**, ``(R - P) / (U - P)`` of the means, with a percentile
  interval from resampling the items (the same items for all three configurations). Where
  pruning cost nothing that the items can show, the share has no meaning and is left out.

The reading of each row follows one rule that could fail (:func:`recovery_rule`):

- *no loss to recover*: P is not significantly below U;
- *restores*: R is significantly above P and not significantly below U;
- *partly restores*: R is significantly above P and still significantly below U;
- *does not restore*: R is not significantly different from P;
- *worsens*: R is significantly below P.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .comparisons import _pair, compare_items
from .stats import adjust

__all__ = [
    "READINGS",
    "SHIFTS",
    "describe_points",
    "describe_shift",
    "perplexity_words",
    "loss_share",
    "pattern_shift",
    "recovery_points",
    "recovery_rule",
    "recovery_table",
    "recovery_tables",
    "recovered",
    "without_recovery",
]

READINGS = ("no loss to recover", "restores", "partly restores", "does not restore", "worsens")
# what recovery does to the study's pattern at one point (see pattern_shift)
SHIFTS = ("persists", "vanishes", "reverses", "appears", "absent before and after")


def recovery_rule(alpha: float = 0.05) -> str:
    """The rule of :func:`recovery_table`'s reading, in words."""
    return (
        f"each comparison significant at {alpha:g} after Holm's adjustment over the table; "
        "no loss to recover: pruned not below unpruned; restores: recovered above pruned and "
        "not below unpruned; partly restores: recovered above pruned, still below unpruned; "
        "does not restore: recovered not different from pruned; worsens: recovered below pruned"
    )


def loss_share(
    unpruned: np.ndarray,
    pruned: np.ndarray,
    recovered: np.ndarray,
    *,
    seed: int = 0,
    n_resamples: int = 2000,
    confidence: float = 0.95,
) -> tuple[float, float, float, float]:
    """``(R - P) / (U - P)`` of the means, its percentile interval over resampled items, and
    the share of resamples in which pruning lost anything (the interval reads only where this is
    near 1).

    Args:
        unpruned, pruned, recovered: one score per item, the same items in the same order.

    Returns:
        ``(share, low, high, lossy)``; the share is NaN where the means show no loss.
    """
    u, p, r = (np.asarray(x, float) for x in (unpruned, pruned, recovered))
    if not (len(u) == len(p) == len(r)) or len(u) == 0:
        raise ValueError(f"need the same items in all three, got {len(u)}, {len(p)}, {len(r)}")
    loss = u.mean() - p.mean()
    share = (r.mean() - p.mean()) / loss if loss > 0 else np.nan
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(u), size=(n_resamples, len(u)))
    lu, lp, lr = u[idx].mean(1), p[idx].mean(1), r[idx].mean(1)
    lost = lu - lp
    with np.errstate(divide="ignore", invalid="ignore"):
        shares = np.where(lost > 0, (lr - lp) / lost, np.nan)
    tail = (1 - confidence) / 2 * 100
    if np.isnan(share) or np.isnan(shares).all():
        low = high = np.nan
    else:
        low, high = np.nanpercentile(shares, [tail, 100 - tail])
    return float(share), float(low), float(high), float((lost > 0).mean())


def recovery_table(
    unpruned: pd.DataFrame,
    pruned: pd.DataFrame,
    recovered: pd.DataFrame,
    *,
    seed: int = 0,
    n_resamples: int = 2000,
    confidence: float = 0.95,
    alpha: float = 0.05,
) -> pd.DataFrame:
    """One row per task and metric: the three means, the three paired comparisons (Holm over
    the table), the share of the loss recovered with its interval, and the reading.

    Args:
        unpruned, pruned, recovered: per-item samples (task, doc_id, metric, value) of the three
            configurations, each item in all three; scores where higher is better (leave
            perplexities out).

    Returns:
        task, metric, n, unpruned, pruned, recovered (means), cost/gain/gap (P-U, R-P, R-U mean
        differences) each with ci_low/ci_high and p_adj, share with share_low/share_high and
        lossy, reading.
    """
    comparisons = {
        "cost": (unpruned, pruned),
        "gain": (pruned, recovered),
        "gap": (unpruned, recovered),
    }
    family = 3 * len(_pair(unpruned, pruned).groupby(["task", "metric"]))
    parts = []
    for name, (a, b) in comparisons.items():
        table = compare_items(a, b, seed=seed, n_resamples=n_resamples, confidence=confidence,
                              family=family, alpha=alpha)  # fmt: skip
        parts.append(table.assign(comparison=name))
    tests = adjust(pd.concat(parts, ignore_index=True), alpha=alpha)
    rows = []
    u_p = _pair(unpruned, pruned)
    both = u_p.merge(
        recovered[["task", "doc_id", "metric", "value"]].rename(columns={"value": "value_r"}),
        on=["task", "doc_id", "metric"],
        how="inner",
    )
    for (task, metric), part in both.groupby(["task", "metric"], sort=True):
        u, p, r = (part[c].to_numpy(float) for c in ("value_a", "value_b", "value_r"))
        share, low, high, lossy = loss_share(u, p, r, seed=seed, n_resamples=n_resamples,
                                             confidence=confidence)  # fmt: skip
        row = {"task": task, "metric": metric, "n": len(u), "unpruned": u.mean(),
               "pruned": p.mean(), "recovered": r.mean()}  # fmt: skip
        mine = tests[(tests.task == task) & (tests.metric == metric)].set_index("comparison")
        for name in comparisons:
            t = mine.loc[name]
            row |= {name: t.estimate, f"{name}_ci_low": t.ci_low, f"{name}_ci_high": t.ci_high,
                    f"{name}_p_adj": t.p_adj}  # fmt: skip
        row |= {"share": share, "share_low": low, "share_high": high, "lossy": lossy}
        row["reading"] = _reading(mine, alpha)
        rows.append(row)
    return pd.DataFrame(rows)


def _reading(tests: pd.DataFrame, alpha: float) -> str:
    def significant(name: str, sign: int) -> bool:
        t = tests.loc[name]
        return bool(t.p_adj < alpha and np.sign(t.estimate) == sign)

    if not significant("cost", -1):
        return "no loss to recover"
    if significant("gain", -1):
        return "worsens"
    if not significant("gain", 1):
        return "does not restore"
    return "partly restores" if significant("gap", -1) else "restores"


def recovered(results: pd.DataFrame) -> pd.Series:
    """Which rows of a run's results belong to a recovered configuration (a ``recovery``
    setting that is not empty); all False for results without the column."""
    if "recovery" not in results:
        return pd.Series(False, index=results.index)
    return results["recovery"].notna() & (results["recovery"].astype(str) != "")


def without_recovery(results: pd.DataFrame, samples: pd.DataFrame):
    """A run's ``(results, samples)`` (as :func:`~widthprune.analysis.claims.pair_run` gives
    them) without its recovered configurations: the pruned-only curves of a study run."""
    keep = results[~recovered(results)]
    return keep, samples[samples["config"].isin(set(keep["config"]))]


def recovery_points(results: pd.DataFrame) -> pd.DataFrame:
    """Each recovered configuration of a run with the two it is compared with.

    Args:
        results: a run's results as :func:`~widthprune.analysis.claims.pair_run` gives them
            (read with ``vary`` holding ``"recovery"``).

    Returns:
        One row per recovered configuration: recovered, pruned, unpruned (configuration ids),
        point (the pruned one's label), criterion, pruning_pct, chat_template, recovery. The
        pruned one is the configuration of the same criterion, width, seed and template
        without recovery; the unpruned one shares the template.

    Raises:
        ValueError: a recovered configuration without its pruned or unpruned counterpart.
    """
    from .real_model import uses_template

    configs = results.drop_duplicates("config").copy()
    configs["template"] = uses_template(configs).to_numpy()
    configs["is_recovered"] = recovered(configs).to_numpy()
    rows = []
    for _, r in configs[configs["is_recovered"]].iterrows():
        same = configs[
            (configs["template"] == r["template"])
            & ~configs["is_recovered"]
            & (configs["criterion"] == r["criterion"])
            & (configs["final_width"] == r["final_width"])
            & (configs["seed"].astype(int) == int(r["seed"]))
        ]
        base = configs[(configs["template"] == r["template"]) & (configs["pruning_pct"] == 0)]
        if "seed" in base and base["seed"].nunique() > 1:
            base = base[base["seed"].astype(int) == 0]
        if len(same) != 1 or base["config"].nunique() != 1:
            raise ValueError(
                f"recovered configuration {r['label']} (chat_template={r['template']}) needs one "
                f"pruned configuration of the same criterion, width and seed and one unpruned "
                f"one; found {len(same)} and {base['config'].nunique()}"
            )
        rows.append(
            {
                "recovered": r["config"],
                "pruned": same["config"].iloc[0],
                "unpruned": base["config"].iloc[0],
                "point": same["label"].iloc[0],
                "criterion": r["criterion"],
                "pruning_pct": float(r["pruning_pct"]),
                "chat_template": bool(r["template"]),
                "recovery": r["recovery"],
            }
        )
    columns = ["recovered", "pruned", "unpruned", "point", "criterion", "pruning_pct",
               "chat_template", "recovery"]  # fmt: skip
    return pd.DataFrame(rows, columns=columns).sort_values(
        ["chat_template", "criterion", "pruning_pct"], ignore_index=True
    )


def recovery_tables(results: pd.DataFrame, samples: pd.DataFrame, **options) -> pd.DataFrame:
    """:func:`recovery_table` at every point of :func:`recovery_points`, on each task's
    headline metric (perplexity left out), Holm within each point's table.

    Args:
        results, samples: a run as :func:`~widthprune.analysis.claims.pair_run` gives it.
        options: :func:`recovery_table`'s seed, n_resamples, confidence, alpha.

    Returns:
        :func:`recovery_table`'s rows with point, criterion, pruning_pct and chat_template.
    """
    from ..evaluation.catalogue import task_info
    from .real_model import headline_samples

    items = headline_samples(samples, results["task"].unique())
    items = items[[task_info(t).chance is not None for t in items["task"]]]
    by = {c: part for c, part in items.groupby("config")}
    parts = []
    for _, point in recovery_points(results).iterrows():
        u, p, r = (by[point[k]] for k in ("unpruned", "pruned", "recovered"))
        table = recovery_table(u, p, r, **options)
        for key in ("point", "criterion", "pruning_pct", "chat_template"):
            table.insert(0, key, point[key])
        parts.append(table)
    if not parts:
        raise ValueError("the run holds no recovered configuration")
    return pd.concat(parts, ignore_index=True)


def pattern_shift(verdicts: pd.DataFrame, points: pd.DataFrame) -> pd.DataFrame:
    """What recovery does to the study's pattern at each point.

    Args:
        verdicts: :func:`~widthprune.analysis.study_pattern.patterns` of the run, recovered
            configurations included (each read against the unpruned model, as a pruned one).
        points: :func:`recovery_points` of the run.

    Returns:
        One row per point: point, criterion, pruning_pct, chat_template, pruned and recovered
        (their verdicts), knowledge_fall_pruned/recovered (of knowledge_tasks), instruction
        _pruned/_recovered (the instruction task's change), and shift, one of :data:`SHIFTS`:
        *persists* (the pattern before and after), *vanishes* (before, neither after),
        *reverses* (before, its reverse after), *appears* (only after), *absent before and
        after*.
    """
    from .study_pattern import PATTERNS

    by = verdicts.set_index("config")
    rows = []
    for _, pt in points.iterrows():
        before, after = by.loc[pt["pruned"]], by.loc[pt["recovered"]]
        shown_b, shown_a = before["verdict"] == PATTERNS[0], after["verdict"] == PATTERNS[0]
        if shown_b:
            shift = (
                SHIFTS[0]
                if shown_a
                else SHIFTS[2]
                if after["verdict"] == PATTERNS[1]
                else SHIFTS[1]
            )
        else:
            shift = SHIFTS[3] if shown_a else SHIFTS[4]
        rows.append(
            {
                **{k: pt[k] for k in ("point", "criterion", "pruning_pct", "chat_template")},
                "knowledge_tasks": int(before["knowledge_tasks"]),
                "knowledge_fall_pruned": int(before["knowledge_fall"]),
                "knowledge_fall_recovered": int(after["knowledge_fall"]),
                "instruction_pruned": before["instruction"],
                "instruction_recovered": after["instruction"],
                "pruned": before["verdict"],
                "recovered": after["verdict"],
                "shift": shift,
            }
        )
    return pd.DataFrame(rows)


def describe_points(table: pd.DataFrame) -> str:
    """:func:`recovery_tables` in words, a bullet per point: each capability's score unpruned,
    pruned and recovered, the reading, and the share of the loss recovered with its interval
    where pruning cost something."""
    from ..evaluation.catalogue import task_info

    both = table["chat_template"].nunique() > 1
    lines = []
    for (point, template), part in table.groupby(["point", "chat_template"], sort=False):
        where = (
            (" in the chat template" if template else " without the chat template") if both else ""
        )
        said = []
        for _, r in part.iterrows():
            text = (
                f"{task_info(r['task']).label or r['task']} {r['unpruned']:.3f} → "
                f"{r['pruned']:.3f} → {r['recovered']:.3f}, *{r['reading']}*"
            )
            if r["reading"] != READINGS[0] and np.isfinite(r["share"]):
                text += (
                    f" ({r['share']:.0%} of the loss back, {r['share_low']:.0%} to "
                    f"{r['share_high']:.0%})"
                )
            said.append(text)
        lines.append(f"- **{point}**{where}: " + "; ".join(said) + ".")
    return "\n".join(lines)


def perplexity_words(results: pd.DataFrame, points: pd.DataFrame) -> str:
    """Word perplexity of the unpruned, pruned and recovered models at each point, in words
    (lower is better); "not in this run" where no task reports it."""
    rows = results[results["metric"] == "word_perplexity"].drop_duplicates("config")
    value = rows.set_index("config")["value"]
    if value.empty:
        return "not in this run"
    return "; ".join(
        f"{r.point}{' in the chat template' if r.chat_template else ''}: "
        f"{value[r.unpruned]:,.2f} unpruned, {value[r.pruned]:,.2f} pruned, "
        f"{value[r.recovered]:,.2f} recovered"
        for r in points.itertuples()
    )


def describe_shift(shift: pd.DataFrame) -> str:
    """:func:`pattern_shift` in words, a bullet per point."""
    return "\n".join(
        f"- **{r.point}**{' in the chat template' if r.chat_template else ''}: pruned, "
        f"*{r.pruned}* ({r.knowledge_fall_pruned} of {r.knowledge_tasks} knowledge tasks fall, "
        f"instructions *{r.instruction_pruned}*); recovered, *{r.recovered}* "
        f"({r.knowledge_fall_recovered} fall, instructions *{r.instruction_recovered}*): the "
        f"pattern **{r.shift}**."
        for r in shift.itertuples()
    )
