"""The study's abstract, claim by claim: the evidence, a criterion that could fail, a verdict.

Each claim of the abstract of Martra (2025) gets one row, computed from the published tables
(:func:`widthprune.analysis.published.published`): what the numbers show, the criterion the
verdict applies, and the verdict. A verdict is one of "supported", "partly supported", "not
supported" and "not testable" (the data cannot show the claim either way), with the reason.
"""

from __future__ import annotations

import pandas as pd

from .claims import correlation_robustness, dichotomy
from .deployment import batch_claim, energy_claim, latency_claim
from .stats import CHANCE, adjust, baseline_change, chance_floor

__all__ = [
    "BASE_MODELS",
    "OUTSIDE",
    "correlation_checks",
    "pruned_changes",
    "study_claims",
]

BASE_MODELS = ("Llama-3.2-1B", "Llama-3.2-3B")
# Evidence from outside the study, as its sources report it (book/references.bib names them).
OUTSIDE = {
    # NVIDIA Model-Optimizer's Minitron tutorial: Nemotron-Nano-9B-v2 pruned to 7B (depth and
    # width together), before any distillation; MMLU and IFEval in percent.
    "minitron": {"mmlu": (74.7, 67.8), "ifeval": (65.8, 41.8)},
}


def pruned_changes(
    results: pd.DataFrame,
    task: str,
    metric: str,
    *,
    filter: str = "none",
    models: tuple[str, ...] = BASE_MODELS,
    alpha: float = 0.05,
) -> pd.DataFrame:
    """Change of one score from each model's unpruned value, Holm-adjusted over the family.

    Returns:
        :func:`widthprune.analysis.stats.baseline_change` rows of ``models`` (one per pruned
        configuration), plus relative (change / baseline, in %), z (change / se), p_adj and
        reject (Holm over these rows).
    """
    sel = results[
        (results["task"] == task)
        & (results["metric"] == metric)
        & (results.get("filter", "none") == filter)
        & results["model"].isin(models)
    ]
    if sel.empty:
        raise ValueError(f"no rows for {task} {metric} ({filter}) of {models}")
    out = baseline_change(sel)
    out["relative"] = 100 * out["estimate"] / out["baseline_value"]
    out["z"] = out["estimate"] / out["se"]
    return adjust(out, method="holm", alpha=alpha)


def _span(values, fmt: str) -> str:
    lo, hi = min(values), max(values)
    return format(lo, fmt) if format(lo, fmt) == format(hi, fmt) else f"{lo:{fmt}} to {hi:{fmt}}"


def _knowledge(results: pd.DataFrame, alpha: float) -> dict:
    dich = dichotomy(results, alpha=alpha)
    rows = dich[dich["model"].isin(BASE_MODELS) & (dich["kind"] == "knowledge")]
    mmlu = chance_floor(results[(results["task"] == "mmlu") & (results["metric"] == "acc")])
    mmlu = mmlu[mmlu["model"].isin(BASE_MODELS) & (mmlu["pruning_pct"] > 0)]
    parts = []
    for r in rows.itertuples():
        f = ".1f" if "perplexity" in r.metric else ".3f"
        count = (
            f"significantly worse in {r.worse:.0f} of {r.n - 1}"
            if r.tested
            else "no standard error, so no test"
        )
        parts.append(
            f"{r.model} {r.task}: {r.baseline:{f}} unpruned, {r.best:{f}} to {r.worst:{f}} "
            f"pruned, {count}"
        )
    tested = rows[rows["direction"] != "not tested"]
    falls = len(tested) > 0 and (tested["direction"] == "falls").all()
    return {
        "claim": "Knowledge (MMLU, GSM8K, perplexity) degrades as the expansion ratio shrinks",
        "evidence": "; ".join(parts)
        + f". MMLU cannot be told from chance in {int(mmlu['at_chance'].sum())} of {len(mmlu)} "
        "pruned base configurations: it falls to its floor rather than degrading gradually.",
        "criterion": "every knowledge score of both base models that has a standard error is "
        "significantly worse than unpruned in more than half of the pruned configurations (z "
        f"test, Holm over the dichotomy table, {alpha:g}); perplexity has none and is not counted",
        "verdict": "supported" if falls else "partly supported",
    }


def _ifeval(results: pd.DataFrame, alpha: float) -> dict:
    ch = pruned_changes(results, "ifeval", "prompt_level_strict_acc", alpha=alpha)
    parts = [
        f"{m}: {g.baseline_value.iloc[0]:.3f} unpruned, {_span(100 * g.estimate, '+.1f')} points "
        f"({_span(g.relative, '+.0f')} %)"
        for m, g in ch.groupby("model")
    ]
    n_sig, n = int(ch["reject"].sum()), len(ch)
    inst = pruned_changes(
        results, "ifeval", "prompt_level_strict_acc", models=("Llama-3.2-1B-Instruct",)
    )
    verdict = "supported" if n_sig == n else "partly supported" if n_sig else "not supported"
    return {
        "claim": "Instruction following improves: IFEval +46 % to +75 % in 1B and 3B",
        "evidence": "; ".join(parts)
        + f"; each change {_span(ch.z, '.1f')} standard errors, one run per configuration; "
        f"{n_sig} of {n} significant after Holm. 1B-Instruct, which follows instructions, "
        f"loses {_span(-100 * inst.estimate, '.1f')} points.",
        "criterion": "prompt-level strict accuracy significantly above unpruned (z test, Holm "
        f"over the {n} pruned base configurations, {alpha:g}) in every configuration",
        "verdict": verdict + (f" ({n_sig} of {n})" if 0 < n_sig < n else ""),
    }


def _musr(results: pd.DataFrame, alpha: float) -> dict:
    ch = pruned_changes(results, "leaderboard_musr", "acc_norm", alpha=alpha)
    chance = CHANCE[("leaderboard_musr", "acc_norm")]
    base = results[
        (results["task"] == "leaderboard_musr")
        & results["model"].isin(BASE_MODELS)
        & (results["pruning_pct"] == 0)
    ]
    floor = chance_floor(base.assign(chance=chance))
    worse = int((ch["reject"] & (ch["estimate"] < 0)).sum())
    at_chance = bool(floor["at_chance"].all())
    parts = [
        f"{m}: {g.baseline_value.iloc[0]:.3f} unpruned, {_span(100 * g.estimate, '+.1f')} points"
        for m, g in ch.groupby("model")
    ]
    verdict = (
        "not testable: no unpruned model is above chance"
        if at_chance
        else "supported"
        if worse == 0
        else "not supported"
    )
    return {
        "claim": "Multi-step reasoning (MuSR) remains robust",
        "evidence": "; ".join(parts)
        + f". MuSR's chance level is {chance:.3f}: the unpruned scores are "
        + ("not " if at_chance else "")
        + "distinguishable from it (exact binomial p = "
        + ", ".join(f"{p:.2f} for {m}" for m, p in zip(floor["model"], floor["p"], strict=True))
        + f"); {worse} of {len(ch)} pruned configurations are significantly worse.",
        "criterion": "the unpruned model is above chance (else there is nothing to keep) and no "
        f"pruned configuration is significantly below it (z test, Holm, {alpha:g})",
        "verdict": verdict,
    }


def correlation_checks(
    robust: pd.DataFrame, scope: str, alpha: float = 0.05
) -> dict[str, bool | None]:
    """The robustness checks of one correlation: True where it holds, False where it fails.

    The chance check is None (undetermined) where its permutation p is not below ``alpha`` but
    its bootstrap interval excludes zero: with the few configurations above chance (five in
    the 3B) the test has little power, so its p above ``alpha`` is no evidence against the
    correlation, and its interval none for it that a permutation test would confirm.

    Args:
        robust: :func:`widthprune.analysis.claims.correlation_robustness` rows.
        scope: the scope checked; its ``"<scope>, <x> above chance"`` rows are the chance check.
    """
    rows = robust[robust["scope"] == scope].set_index("method")
    above = robust[
        robust["scope"].str.startswith(f"{scope}, ") & robust["scope"].str.endswith("above chance")
    ]
    above = above.set_index("method") if len(above) else None
    sign = rows.loc["pearson", "estimate"] > 0
    chance: bool | None = bool(above is not None and above.loc["pearson", "p_perm"] < alpha)
    if above is not None and not chance:
        a = above.loc["pearson"]
        chance = None if a.ci_low > 0 or a.ci_high < 0 else False
    return {
        "permutation": bool(rows.loc["pearson", "p_perm"] < alpha),
        "ranks": bool((rows.loc[["spearman", "kendall"], "p_perm"] < alpha).all()),
        "leave one out": bool(
            (rows.loc["pearson", "loo_min"] > 0) if sign else (rows.loc["pearson", "loo_max"] < 0)
        ),
        "above chance": chance,
    } | _within(robust, scope, alpha)


def _within(robust: pd.DataFrame, scope: str, alpha: float) -> dict[str, bool]:
    """For pooled models: the correlation centred within model is significant too."""
    centred = robust[robust["scope"] == f"{scope}, centred within model"]
    if centred.empty:
        return {}
    return {"within model": bool(centred.set_index("method").loc["pearson", "p_perm"] < alpha)}


def _correlation(robust, scope, claim, target, alpha) -> dict:
    rows = robust[robust["scope"] == scope].set_index("method")
    pr, sp, kd = rows.loc["pearson"], rows.loc["spearman"], rows.loc["kendall"]
    checks = correlation_checks(robust, scope, alpha)
    above = robust[(robust["scope"].str.startswith(f"{scope}, mmlu above"))]
    n_above = int(above["n"].iloc[0]) if len(above) else 0
    failed = [name for name, ok in checks.items() if ok is False]
    open_ = [name for name, ok in checks.items() if ok is None]
    reproduced = target is None or (
        round(pr.estimate, 3) == target[0] and round(pr.p, 3) == target[1]
    )
    robustness = "robust" if not failed else f"not robust ({', '.join(failed)})"
    if open_:
        a = above.set_index("method").loc["pearson"]
        robustness += (
            f"; {', '.join(open_)} undetermined (n = {int(a.n)}: r = {a.estimate:.3f}, bootstrap "
            f"interval {a.ci_low:.3f} to {a.ci_high:.3f}, permutation p = {a.p_perm:.3f}, "
            f"at least {a.p_min:.3f} with any pairing)"
        )
    if target is not None:
        robustness = ("reproduced; " if reproduced else "not reproduced; ") + robustness
    verdict = robustness
    return {
        "claim": claim,
        "evidence": f"Pearson r = {pr.estimate:.3f} (t test p = {pr.p:.3f}; permutation p = "
        f"{pr.p_perm:.3f}, {pr.perm_test}, two-sided); Spearman rho = {sp.estimate:.3f} "
        f"(p = {sp.p_perm:.3f}); Kendall tau = {kd.estimate:.3f} (p = {kd.p_perm:.3f}); leaving "
        f"one configuration out, r = {pr.loo_min:.3f} to {pr.loo_max:.3f}; n = {int(pr.n)}, "
        f"{n_above} of them with MMLU above chance.",
        "criterion": (
            "reproduced: r and its t-test p equal the study's to three decimals; "
            if target is not None
            else ""
        )
        + "robust: permutation p of r, and of both rank correlations, below "
        f"{alpha:g}, each test on its own (the table's Holm column corrects them together); r "
        "of one sign leaving out any configuration; r significant among the configurations "
        "whose MMLU is above chance (undetermined where p is not but the bootstrap interval "
        "excludes 0)" + ("; and centred within model" if "within model" in checks else ""),
        "verdict": verdict,
    }


def study_claims(
    benchmarks: pd.DataFrame,
    efficiency: pd.DataFrame,
    *,
    seed: int = 0,
    n_resamples: int = 9999,
    alpha: float = 0.05,
    measured_energy: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """One row per claim of the study's abstract: claim, evidence, criterion, verdict.

    Args:
        benchmarks: ``published("benchmarks")``.
        efficiency: ``published("efficiency")``.
        seed, n_resamples: of the correlation tests that sample (pooled models).
        alpha: level of every test.
        measured_energy: the book's own energy measurements of the study's 10 % width
            (:func:`widthprune.analysis.deployment.measured_energy` rows), for the energy claim.
    """
    robust = correlation_robustness(benchmarks, seed=seed, n_resamples=n_resamples)
    pooled = "pooled base models"
    rows = [
        _knowledge(benchmarks, alpha),
        _ifeval(benchmarks, alpha),
        _musr(benchmarks, alpha),
        _correlation(
            robust,
            "Llama-3.2-3B",
            "MMLU and TruthfulQA-MC2 are inversely correlated in 3B (r = -0.864, p = 0.012)",
            (-0.864, 0.012),
            alpha,
        ),
        _correlation(
            robust,
            pooled,
            "The inverse correlation holds over 1B and 3B pooled",
            None,
            alpha,
        ),
        energy_claim(efficiency, measured=measured_energy),
        latency_claim(efficiency),
        batch_claim(efficiency),
    ]
    return pd.DataFrame(rows)[["claim", "evidence", "criterion", "verdict"]]
