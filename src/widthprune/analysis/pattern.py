"""Does a sweep show the study's pattern: knowledge lost, instruction following kept?

For each pruned configuration, the change of a knowledge score and of an instruction score
from the unpruned model, each the mean of per-item paired differences, and the *gap* between
the two changes (instruction change minus knowledge change). The knowledge and instruction
items are different questions, so the two changes are independent and the gap's standard error
is the root of the sum of their squared standard errors. The study's pattern is a gap above
zero: knowledge loses more than instruction following.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats as st

from .stats import adjust

__all__ = [
    "INSTRUCTION",
    "KNOWLEDGE",
    "capability_gap",
    "describe_criteria_at",
    "describe_pattern",
    "pattern_verdict",
]

KNOWLEDGE = ("toy_knowledge", "acc")  # (task, per-item metric) of the knowledge side
INSTRUCTION = ("toy_instructions", "prompt_level_strict_acc")  # and of the instruction side
_LABELS = {
    "knowledge falls more": "the study's pattern",
    "instructions fall more": "the reverse of the study's pattern",
    "no difference": "neither pattern",
}


def _paired(results, samples, sweep, config_col, side) -> pd.DataFrame:
    """Mean and standard error of the per-item change of one score, per pruned config."""
    task, metric = side
    items = samples[(samples["task"] == task) & (samples["metric"] == metric)]
    if items.empty:
        raise ValueError(f"no per-item scores of {task} {metric} in the samples")
    wide = items.pivot_table(index="doc_id", columns=config_col, values="value")
    base = sweep.loc[sweep["pruning_pct"] == 0, config_col].iloc[0]
    rows = []
    for config in sweep.loc[sweep["pruning_pct"] != 0, config_col]:
        d = (wide[config] - wide[base]).dropna().to_numpy(float)
        rows.append(
            {
                config_col: config,
                "base": float(wide[base].mean()),
                "value": float(wide[config].mean()),
                "change": float(d.mean()),
                "se": float(d.std(ddof=1) / np.sqrt(len(d))) if len(d) > 1 else np.nan,
            }
        )
    return pd.DataFrame(rows)


def capability_gap(
    results: pd.DataFrame,
    samples: pd.DataFrame,
    *,
    knowledge: tuple[str, str] = KNOWLEDGE,
    instruction: tuple[str, str] = INSTRUCTION,
    by: tuple[str, ...] = ("model", "criterion"),
    config_col: str = "config",
    alpha: float = 0.05,
    confidence: float = 0.95,
) -> pd.DataFrame:
    """Knowledge and instruction change per pruned configuration, and the gap between them.

    Args:
        results: a sweep's long results (:func:`widthprune.analysis.claims.load_toy`), with
            ``config_col``, ``by``, pruning_pct and final_ratio.
        samples: its per-item samples (config_col, task, doc_id, metric, value).
        knowledge, instruction: (task, per-item metric) of each side.
        alpha: level of the gap test (``pattern``), after Holm over the table.

    Returns:
        One row per pruned configuration: ``by``, pruning_pct, expansion_ratio, knowledge_base,
        knowledge, knowledge_change, knowledge_se (standard error of the mean paired change),
        instruction_base, instruction, instruction_change, instruction_se, gap
        (instruction_change - knowledge_change), ci_low/ci_high (normal interval of the gap),
        p (two-sided z test of gap = 0), p_adj (Holm over the table), pattern ("knowledge
        falls more", "instructions fall more" or "no difference").
    """
    by = [c for c in by if c in results]
    configs = results[[config_col, *by, "pruning_pct", "final_ratio"]].drop_duplicates()
    groups = configs.groupby(by, sort=True) if by else [((), configs)]
    z = st.norm.ppf(1 - (1 - confidence) / 2)
    parts = []
    for key, sweep in groups:
        if (sweep["pruning_pct"] == 0).sum() != 1:
            raise ValueError(f"sweep {key} needs one unpruned configuration")
        know = _paired(results, samples, sweep, config_col, knowledge)
        inst = _paired(results, samples, sweep, config_col, instruction)
        both = know.merge(inst, on=config_col, suffixes=("_k", "_i"))
        part = sweep.merge(both, on=config_col)
        gap = part["change_i"] - part["change_k"]
        se = np.sqrt(part["se_k"] ** 2 + part["se_i"] ** 2)
        part = part.assign(gap=gap, ci_low=gap - z * se, ci_high=gap + z * se)
        with np.errstate(divide="ignore", invalid="ignore"):
            part["p"] = np.where(se > 0, 2 * st.norm.sf(np.abs(gap) / se), (gap == 0) * 1.0)
        parts.append(part)
    out = pd.concat(parts, ignore_index=True).rename(
        columns={
            "final_ratio": "expansion_ratio",
            "base_k": "knowledge_base",
            "value_k": "knowledge",
            "change_k": "knowledge_change",
            "se_k": "knowledge_se",
            "base_i": "instruction_base",
            "value_i": "instruction",
            "change_i": "instruction_change",
            "se_i": "instruction_se",
        }
    )
    out = adjust(out, method="holm", alpha=alpha)
    order = [*by, "expansion_ratio"]
    out = out.sort_values(order, ascending=[True] * len(by) + [False], ignore_index=True)
    out["pattern"] = np.select(
        [out["reject"] & (out["gap"] > 0), out["reject"] & (out["gap"] < 0)],
        ["knowledge falls more", "instructions fall more"],
        "no difference",
    )
    cols = [*by, "pruning_pct", "expansion_ratio", "knowledge_base", "knowledge"]
    cols += ["knowledge_change", "knowledge_se", "instruction_base", "instruction"]
    cols += ["instruction_change", "instruction_se", "gap"]
    return out[cols + ["ci_low", "ci_high", "p", "p_adj", "pattern"]]


def pattern_verdict(
    gap: pd.DataFrame, *, by: tuple[str, ...] = ("criterion",), alpha: float = 0.05
) -> pd.DataFrame:
    """The verdict per sweep, read at its narrowest width.

    The test keeps the correction of the table it is read from: its p_adj is Holm over every
    row of ``gap`` (every pruned width of every sweep), the family the gap table prints, so the
    verdict and the table cannot disagree.

    Args:
        gap: :func:`capability_gap` rows.
        by: the columns naming a sweep.
        alpha: level of the test.

    Returns:
        One row per sweep: ``by``, the narrowest configuration's columns of ``gap``, verdict
        ("the study's pattern", "the reverse of the study's pattern" or "neither pattern"),
        family (the correction family of p_adj, in words) and rule (the criterion applied).
    """
    by = [c for c in by if c in gap]
    narrow = gap.loc[gap.groupby(by)["expansion_ratio"].idxmin()].reset_index(drop=True)
    reject = narrow["p_adj"] < alpha
    narrow["verdict"] = np.select(
        [reject & (narrow["gap"] > 0), reject & (narrow["gap"] < 0)],
        [_LABELS["knowledge falls more"], _LABELS["instructions fall more"]],
        _LABELS["no difference"],
    )
    narrow["family"] = f"Holm over the {len(gap)} gap tests of the table"
    narrow["rule"] = (
        "at the narrowest width, knowledge loses significantly more than instruction following "
        f"(two-sided z test of the gap between the two paired changes, {narrow['family'].iloc[0]}"
        f", {alpha:g}): the study's pattern; significantly less: the reverse"
    )
    return narrow.drop(columns=["pattern"])


def _leanings(gap: pd.DataFrame, criterion: str) -> str:
    """The widths of one sweep whose unadjusted 95 % interval of the gap excludes zero."""
    rows = gap[(gap["criterion"] == criterion) & ((gap["ci_low"] > 0) | (gap["ci_high"] < 0))]
    if rows.empty:
        return ""
    parts = [
        f"{r.expansion_ratio:.2f} ({r.gap:+.3f} [{r.ci_low:+.3f}, {r.ci_high:+.3f}], "
        f"{'the study' if r.gap > 0 else 'the reverse'}'s way, Holm p = {r.p_adj:.3f})"
        for r in rows.itertuples()
    ]
    return (
        f"Before correction, the 95 % interval of `{criterion}`'s gap excludes zero at "
        f"{'a ratio' if len(parts) == 1 else 'ratios'} of {'; '.join(parts)}."
    )


def describe_pattern(
    verdicts: pd.DataFrame, pairs: pd.DataFrame | None = None, gap: pd.DataFrame | None = None
) -> str:
    """The verdict of :func:`pattern_verdict` in sentences, numbers included, for the book.

    Args:
        verdicts: :func:`pattern_verdict` rows, one per sweep (criterion).
        pairs: the item-level tests behind them (:func:`widthprune.analysis.claims.toy_paired`),
            to say how many comparisons survive Holm's correction.
        gap: the :func:`capability_gap` table the verdicts were read from, to name the widths
            whose gap leans one way before correction.
    """
    out = []
    if pairs is not None:
        out.append(
            f"Of the {len(pairs)} paired comparisons with the unpruned model, "
            f"{int(pairs['reject'].sum())} are significant after Holm's correction."
        )
    for r in verdicts.to_dict("records"):
        r = pd.Series(r)
        out.append(
            f"Under `{r.criterion}`, at an expansion ratio of {r.expansion_ratio:.2f}, knowledge "
            f"accuracy goes from {r.knowledge_base:.3f} to {r.knowledge:.3f} and prompt-level "
            f"instruction accuracy from {r.instruction_base:.3f} to {r.instruction:.3f}: a gap "
            f"of {r.gap:+.3f} (95 % interval {r.ci_low:+.3f} to {r.ci_high:+.3f}, p = "
            f"{r.p_adj:.3f} after {r.family}), {r.verdict}."
        )
        if gap is not None and (lean := _leanings(gap, r.criterion)):
            out.append(lean)
    study = [
        f"`{c}`"
        for c, v in zip(verdicts["criterion"], verdicts["verdict"], strict=True)
        if v == _LABELS["knowledge falls more"]
    ]
    if not study:
        out.append("No criterion shows the study's pattern at its narrowest width.")
    elif len(study) == len(verdicts):
        out.append("Every criterion shows the study's pattern.")
    else:
        out.append(
            f"Only {' and '.join(study)} {'shows' if len(study) == 1 else 'show'} the "
            "study's pattern."
        )
    return " ".join(out)


def describe_criteria_at(caps: pd.DataFrame, task: str, metric: str, ratio: float) -> str:
    """One sentence comparing every criterion's score of one capability at one width.

    Args:
        caps: :func:`widthprune.analysis.capabilities.sweep_capabilities` rows.
        task, metric: the capability.
        ratio: the expansion ratio to read; the sweep's nearest one is used.

    Returns:
        The sentence, or "" when no width of the sweep was reached by two criteria.
    """
    rows = caps[(caps["task"] == task) & (caps["metric"] == metric) & (caps["pruning_pct"] > 0)]
    shared = rows.groupby(rows["expansion_ratio"].round(6))["criterion"].transform("nunique")
    rows = rows[shared >= 2]  # widths that at least two criteria reached
    if rows.empty:
        return ""
    nearest = rows.loc[(rows["expansion_ratio"] - ratio).abs().idxmin(), "expansion_ratio"]
    at = rows[np.isclose(rows["expansion_ratio"], nearest)].sort_values("criterion")
    scores = " and ".join(
        f"{v:.3f} under `{c}`" for c, v in zip(at["criterion"], at["value"], strict=True)
    )
    return f"At an expansion ratio of {nearest:.2f}, {task} ({metric}) is {scores}."
