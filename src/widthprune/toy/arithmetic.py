"""Short multi-step word problems with worked answers (a GSM8K analogue).

A problem starts with a count of objects and changes it one to three times; the answer works
each step out (``12 + 5 = 17 .``) and ends with ``the answer is N .``. Every count stays in
0..99, so every number is one token.
"""

from __future__ import annotations

import random
import re

from . import lexicon as lx

__all__ = ["ANSWER_PATTERN", "make_problem", "words"]

_ADD = ("{e} finds {n} more {o} .", "{e} buys {n} more {o} .", "{e} gets {n} {o} from {e2} .")
_SUB = ("{e} loses {n} {o} .", "{e} gives {n} {o} to {e2} .", "{e} sells {n} {o} .")
_QUESTION = "how many {o} does {e} have now ? answer :"
ANSWER_PATTERN = re.compile(r"the answer is (\d+)")
_MAX = 99


def make_problem(rng: random.Random, names: list[str], steps: tuple[int, int] = (1, 3)) -> dict:
    """A random word problem.

    Args:
        rng: the source of randomness.
        names: the people the problem may be about.
        steps: inclusive range of the number of operations.

    Returns:
        ``{"question", "solution", "answer", "steps"}``: the question ends in ``answer :``,
        the solution is the worked answer, ``answer`` the final number as a string.
    """
    e, e2 = rng.sample(names, 2)
    obj = rng.choice(lx.OBJECTS)
    total = rng.randint(2, 40)
    sentences = [f"question : {e} has {total} {obj} ."]
    work = []
    n_steps = rng.randint(*steps)
    for i in range(n_steps):
        add = total < 2 or (total + 1 <= _MAX and rng.random() < 0.5)
        n = rng.randint(1, min(20, _MAX - total) if add else min(20, total))
        template = rng.choice(_ADD if add else _SUB)
        sentence = template.format(e=e, e2=e2, n=n, o=obj)
        sentences.append(sentence if i == 0 else f"then {sentence}")
        after = total + n if add else total - n
        work.append(f"{total} {'+' if add else '-'} {n} = {after} .")
        total = after
    sentences.append(_QUESTION.format(o=obj, e=e))
    solution = " ".join([*work, f"the answer is {total} ."])
    return {
        "question": " ".join(sentences),
        "solution": solution,
        "answer": str(total),
        "steps": n_steps,
    }


def words() -> set[str]:
    """Every fixed word the problems can contain, besides the lexicon's and the numbers."""
    fixed = " ".join([*_ADD, *_SUB, _QUESTION, "question : has then + - = the answer is ."])
    return {w for w in fixed.split() if not w.startswith("{")}
