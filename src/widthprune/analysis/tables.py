"""Tables for the book: human column names and one rounding rule shared with the prose.

Numbers are *formatted*, never rounded in the frame: a table cell and a glued number in the
prose go through the same Python format spec (:data:`FORMATS`), so 0.1035 reads 0.103 in both
places (a ``.round(3)`` on the frame would show 0.104 next to a prose 0.103). Scores take three
decimals, percentages one, expansion ratios two, p values three decimals (as in the prose).
"""

from __future__ import annotations

import pandas as pd

__all__ = ["FORMATS", "METRICS", "NAMES", "readable", "sweep_table"]

# column -> the name a reader sees
NAMES = {
    "model": "model",
    "criterion": "criterion",
    "task": "task",
    "metric": "metric",
    "kind": "capability",
    "pruning_pct": "pruned (%)",
    "expansion_ratio": "expansion ratio",
    "width": "MLP width",
    "parameters": "parameters",
    "mlp_share": "MLP share",
    "aligned_64": "width, multiple of 64",
    "aligned_128": "width, multiple of 128",
    "lost_to_128": "neurons lost to 128-alignment",
    "baseline": "unpruned",
    "baseline_value": "unpruned",
    "worst": "worst pruned",
    "best": "best pruned",
    "value": "score",
    "chance": "chance",
    "estimate": "estimate",
    "se": "standard error",
    "ci_low": "95 % low",
    "ci_high": "95 % high",
    "p": "p",
    "p_perm": "p (permutation)",
    "p_adj": "p (Holm)",
    "at_chance": "at chance",
    "worse": "worse",
    "better": "better",
    "direction": "direction",
    "loo_min": "leave-one-out min",
    "loo_max": "leave-one-out max",
    "n": "n",
    "scope": "scope",
    "method": "method",
    "knowledge": "knowledge",
    "knowledge_change": "knowledge change",
    "instruction": "instructions",
    "instruction_change": "instructions change",
    "gap": "gap",
    "pattern": "pattern",
    "verdict": "verdict",
}
# lm-eval metric -> the name a reader sees
METRICS = {
    "acc": "accuracy",
    "acc_norm": "accuracy (normalised)",
    "exact_match": "exact match",
    "prompt_level_strict_acc": "prompt-level strict",
    "inst_level_strict_acc": "instruction-level strict",
    "prompt_level_loose_acc": "prompt-level loose",
    "inst_level_loose_acc": "instruction-level loose",
    "word_perplexity": "word perplexity",
}
# reader's column name -> format spec or function (others: integers as they are, floats three
# decimals)
FORMATS = {
    "pruned (%)": "{:.1f}",
    "expansion ratio": "{:.2f}",
    "MLP share": lambda v: f"{100 * v:.1f} %",  # the book writes "65.2 %"
    "parameters": "{:,.0f}",  # also for integers
    "p": "{:.3f}",
    "p (permutation)": "{:.3f}",
    "p (Holm)": "{:.3f}",
}
_FLOAT = "{:.3f}"


def readable(
    frame: pd.DataFrame,
    *,
    names: dict[str, str] | None = None,
    formats: dict[str, str] | None = None,
    index: bool = False,
):
    """A frame as the book shows it: reader's column names, formatted numbers, scrolls if wide.

    Args:
        frame: any tidy frame; its index is shown only with ``index=True``.
        names: column renames on top of :data:`NAMES`.
        formats: format specs by (reader's) column name on top of :data:`FORMATS`.
        index: show the frame's index (e.g. a pivot table's).

    Returns:
        A pandas Styler (renders as an HTML table in the book and in Jupyter).
    """
    names = NAMES | (names or {})
    shown = frame.rename(columns=lambda c: names.get(c, c) if isinstance(c, str) else c)
    if index:
        shown = shown.rename_axis(
            [names.get(n, n) if isinstance(n, str) else n for n in shown.index.names]
        )
    specs = FORMATS | (formats or {})
    formatters = {}
    for col in shown.columns:
        label = col if isinstance(col, str) else col[-1]
        is_float = pd.api.types.is_float_dtype(shown[col])
        spec = specs.get(label)
        if spec is not None and (is_float or callable(spec) or ".0f" in spec):
            formatters[col] = spec
        elif is_float:
            formatters[col] = _FLOAT
    styler = shown.style.format(formatters, na_rep="")
    if index:
        for level, name in enumerate(shown.index.names):
            values = shown.index.get_level_values(level)
            if name in specs:
                spec = specs[name]
                fmt = spec if callable(spec) else spec.format
                styler = styler.format_index(fmt, axis=0, level=level)
            elif pd.api.types.is_float_dtype(values):
                styler = styler.format_index(_FLOAT.format, axis=0, level=level)
    else:
        styler = styler.hide(axis="index")
    # a wide table scrolls inside the page instead of wrapping its cells into tall columns
    styler = styler.set_table_styles(
        [{"selector": "th, td", "props": "padding: 0.15em 0.7em; white-space: nowrap;"}]
    )
    return styler.set_table_attributes('style="display:block; overflow-x:auto; max-width:100%"')


def sweep_table(caps: pd.DataFrame):
    """A sweep's headline scores, one row per configuration and one column per capability.

    Args:
        caps: :func:`widthprune.analysis.capabilities.sweep_capabilities` rows.

    Returns:
        :func:`readable` of the wide table: index criterion, expansion ratio, pruned (%);
        columns (task, metric) with the metrics' reader names; widest configuration first.
    """
    wide = caps.assign(metric=caps["metric"].map(lambda m: METRICS.get(m, m))).pivot_table(
        index=["criterion", "expansion_ratio", "pruning_pct"],
        columns=["task", "metric"],
        values="value",
    )
    wide = wide.sort_index(ascending=[True, False, True])
    return readable(wide.rename_axis(columns=[None, None]), index=True)
