"""What the evidence says: each claim's verdict with its basis and the strength it allows.

The verdicts come from :func:`widthprune.analysis.abstract.study_claims`; this module says
what they rest on (which models, how many items or configurations, which correction family,
one run or several) and grades how far that evidence goes, by one rule for every claim. It also
sets out the pattern the book's own evidence suggests, instruction following rising under
pruning only where it starts near its floor, as a hypothesis with its n.
"""

from __future__ import annotations

import pandas as pd

from .abstract import pruned_changes

__all__ = [
    "BASIS",
    "FLOOR",
    "STRENGTHS",
    "describe_hypothesis",
    "grade_claims",
    "instruction_floor",
]

# What each claim of study_claims rests on, in its row order (the numbers are the study's
# design, from its result files: one lm-eval run per configuration, three efficiency runs).
BASIS = (
    "Llama-3.2-1B and 3B (base), 6 pruned configurations each; MMLU 14,042 items, GSM8K 1,319; "
    "z tests, Holm over the dichotomy table; one run per configuration",
    "Llama-3.2-1B and 3B (base), 12 pruned configurations; IFEval 541 prompts; z tests, Holm "
    "over the 12; one run per configuration",
    "Llama-3.2-1B and 3B (base); MuSR 756 items against its chance level; one run each",
    "Llama-3.2-3B, 7 configurations (5 with MMLU above chance); exact permutation tests, each "
    "on its own and Holm over the robustness table; one run each",
    "Llama-3.2-1B and 3B pooled, 14 configurations; permutation tests, each on its own and "
    "Holm over the robustness table; one run each",
    "the study: 6 workloads x 3 runs per configuration on an L4; the book: one pass on an H100, "
    "three rounds on an H200, random-weight models of the 1B shape",
    "the study's 3 batch-1 workloads x 3 runs; the 1B series mixes instruction-tuned and base "
    "checkpoints, the 3B series is all base",
    "the study's 3 batch-8 workloads x 3 runs, 36 (model, workload, configuration) cells",
)
# verdict -> strength, read by the verdict's first words (one rule for every claim)
STRENGTHS = {
    "supported": "consistent with the claim",
    "robust": "consistent with the claim",
    "reproduced; robust": "consistent with the claim",
    "partly supported": "weak: only part of the claim holds",
    "reproduced; not robust": "weak: significant alone, not under every check",
    "not supported": "against the claim",
    "not testable": "none: the data cannot show it either way",
}
FLOOR = 0.15  # prompt-level IFEval below this counts as "near the floor" of following


def _strength(verdict: str, single_run: bool) -> str:
    key = max((k for k in STRENGTHS if verdict.startswith(k)), key=len, default=None)
    if key is None:
        raise ValueError(f"no strength for the verdict {verdict!r}")
    strength = STRENGTHS[key]
    if single_run and strength.startswith("consistent"):
        strength += ", from single runs"
    return strength


def grade_claims(claims: pd.DataFrame) -> pd.DataFrame:
    """The claims table with what each verdict rests on and how strong it is.

    Args:
        claims: :func:`widthprune.analysis.abstract.study_claims` rows, in its order.

    Returns:
        claim, verdict, basis (:data:`BASIS`), strength (:data:`STRENGTHS`, "from single runs"
        added where the basis is one run per configuration).
    """
    if len(claims) != len(BASIS):
        raise ValueError(f"expected {len(BASIS)} claims, got {len(claims)}")
    out = claims[["claim", "verdict"]].assign(basis=list(BASIS))
    out["strength"] = [
        _strength(v, "one run" in b) for v, b in zip(out["verdict"], out["basis"], strict=True)
    ]
    return out.reset_index(drop=True)


def instruction_floor(
    benchmarks: pd.DataFrame,
    template: pd.DataFrame | None = None,
    *,
    pct: int = 40,
    floor: float = FLOOR,
) -> pd.DataFrame:
    """Prompt-level instruction following before and after pruning, against its start.

    Args:
        benchmarks: ``published("benchmarks")``.
        template: :func:`widthprune.analysis.chat_template.template_effect` rows of SmolLM2 (its
            ``pruning`` rows, with and without the chat template), or None.
        pct: the pruning percentage compared (the one every source has).
        floor: a start below it is "near the floor".

    Returns:
        One row per model setting: setting, base (unpruned score), change (pruned minus
        unpruned), ci_low, ci_high (95 %), n (prompts), near_floor, direction ("rises",
        "falls" or "undetermined": the interval's sign).
    """
    models = ("Llama-3.2-1B", "Llama-3.2-3B", "Llama-3.2-1B-Instruct")
    ch = pruned_changes(benchmarks, "ifeval", "prompt_level_strict_acc", models=models)
    ch = ch[ch["pruning_pct"] == pct]
    rows = [
        {
            "setting": f"{r.model} (published)",
            "base": r.baseline_value,
            "change": r.estimate,
            "ci_low": r.ci_low,
            "ci_high": r.ci_high,
            "n": 541,
        }
        for r in ch.itertuples()
    ]
    if template is not None:
        pruned = template[(template["comparison"] == "pruning")]
        pruned = pruned[(pruned["pruning_pct"] - pct).abs() < 1]
        for r in pruned.itertuples():
            rows.append(
                {
                    "setting": "SmolLM2-135M-Instruct, "
                    + ("in its chat template" if r.chat_template else "prompts as they are"),
                    "base": r.base,
                    "change": r.estimate,
                    "ci_low": r.ci_low,
                    "ci_high": r.ci_high,
                    "n": int(r.n),
                }
            )
    out = pd.DataFrame(rows)
    out["near_floor"] = out["base"] < floor
    out["direction"] = "undetermined"
    out.loc[out["ci_low"] > 0, "direction"] = "rises"
    out.loc[out["ci_high"] < 0, "direction"] = "falls"
    return out


def describe_hypothesis(table: pd.DataFrame, floor: float = FLOOR) -> str:
    """The pattern of :func:`instruction_floor`, stated as a hypothesis with its n."""
    low, high = table[table["near_floor"]], table[~table["near_floor"]]

    def count(part: pd.DataFrame, direction: str) -> str:
        decided = part[part["direction"] != "undetermined"]
        k = int((decided["direction"] == direction).sum())
        return f"{k} of the {len(decided)} with a decided direction ({len(part)} in all)"

    models = table["setting"].str.split(",| \\(").str[0].nunique()
    return (
        f"Hypothesis, not a finding: pruning raises prompt-level instruction following only where "
        f"it starts near its floor (below {floor:.2f}), and lowers it where the model can follow "
        f"instructions. Starting below {floor:.2f}, it rises in {count(low, 'rises')}; starting "
        f"above, it falls in {count(high, 'falls')}. The evidence is n = {len(table)} settings "
        f"of {models} models, one run each, with intervals per setting and no correction across "
        "them; the real-model sweeps of chapter 8 are where it will be tested and updated."
    )
