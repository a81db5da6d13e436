"""The toy world: invented people with attributes, stated as facts at several frequencies.

A person's *frequency bucket* sets how often the training text mentions them, so the suite can
split knowledge into facts seen often and facts seen rarely. All text is lower case except
invented names, with every token separated by one space (the tokenizer is word-level).
"""

from __future__ import annotations

import hashlib
import itertools
import random
from dataclasses import dataclass

from . import lexicon as lx

__all__ = [
    "ATTRIBUTES",
    "Person",
    "World",
    "WorldConfig",
    "biography",
    "build_world",
    "knowledge_items",
    "sample_person",
    "story",
    "stream",
]


@dataclass(frozen=True)
class WorldConfig:
    """Everything that decides the toy world, its training text and its task items."""

    seed: int = 0  # one seed for the whole world; another seed gives another world
    n_people: int = 1200  # invented people, four facts each
    n_towns: int = 40  # invented towns people live in
    # (bucket name, relative mention rate per person): people split evenly into buckets; a
    # long tail, as in real text, where a few are named often and most seldom
    frequency_buckets: tuple[tuple[str, float], ...] = (
        ("frequent", 125.0),
        ("common", 25.0),
        ("uncommon", 5.0),
        ("rare", 1.0),
    )
    n_knowledge_per_bucket: int = 100  # knowledge questions per bucket, one per person
    # (document kind, share of training documents)
    mixture: tuple[tuple[str, float], ...] = (
        ("facts", 0.45),
        ("stories", 0.10),
        ("instructions", 0.30),
        ("arithmetic", 0.15),
    )
    n_instruction_items: int = 200  # instruction prompts in the task suite
    n_arithmetic_items: int = 200  # word problems in the task suite
    n_text_docs: int = 100  # held-out running-text documents for perplexity
    list_len: tuple[int, int] = (3, 6)  # inclusive range of list lengths in instructions
    count_range: tuple[int, int] = (2, 5)  # inclusive range of N in "N times", "N words"
    arithmetic_steps: tuple[int, int] = (1, 3)  # inclusive range of operations per problem


@dataclass(frozen=True)
class Person:
    """An invented person and the four facts the world states about them."""

    name: str
    bucket: str  # frequency bucket, a name from WorldConfig.frequency_buckets
    home: str  # invented town
    job: str
    pet: str
    color: str  # favorite color


ATTRIBUTES = ("home", "job", "pet", "color")
_VALUES = {"job": lx.JOBS, "pet": lx.ANIMALS, "color": lx.COLORS}  # home: the world's towns

# The question the knowledge task asks about each attribute; the answer follows it.
_QUESTIONS = {
    "home": "question : where does {e} live ? answer :",
    "job": "question : what is the job of {e} ? answer :",
    "pet": "question : what pet does {e} keep ? answer :",
    "color": "question : what is the favorite color of {e} ? answer :",
}
# Statement templates per attribute; the question with its answer is one of them.
_TEMPLATES = {
    "home": (
        "{e} lives in {v} .",
        "the home of {e} is {v} .",
        "{e} has a house in {v} .",
        _QUESTIONS["home"] + " {v} .",
    ),
    "job": (
        "{e} works as a {v} .",
        "the job of {e} is {v} .",
        "{e} earns a living as a {v} .",
        _QUESTIONS["job"] + " {v} .",
    ),
    "pet": (
        "{e} keeps a {v} as a pet .",
        "the pet of {e} is a {v} .",
        "{e} has a pet {v} .",
        _QUESTIONS["pet"] + " {v} .",
    ),
    "color": (
        "the favorite color of {e} is {v} .",
        "{e} likes the color {v} best .",
        "{e} always wears {v} .",
        _QUESTIONS["color"] + " {v} .",
    ),
}

_STORY = (
    "one day {e} walked from {home} to {town} .",
    "{e} the {job} met {e2} in {town} .",
    "{e} bought {n} {food} at the market in {town} .",
    "the weather in {town} was {weather} .",
    "{e} saw a {color} {animal} near the {place} .",
    "{e} fed the {pet} and went to work as a {job} .",
    "after that , {e} went home to {home} .",
    "{e} gave {e2} the {c} {tool} .",
)


@dataclass(frozen=True)
class World:
    """The people and towns of one seed."""

    config: WorldConfig
    people: tuple[Person, ...]
    towns: tuple[str, ...]
    cum_rates: tuple[float, ...]  # running sum of the people's mention rates, for sampling

    def values(self, attribute: str) -> tuple[str, ...]:
        """Every value an attribute can take."""
        return self.towns if attribute == "home" else tuple(_VALUES[attribute])


def stream(seed: int, name: str) -> random.Random:
    """A random generator for one named purpose, the same on every platform and Python."""
    digest = hashlib.sha256(f"{seed}/{name}".encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "little"))


def _invent(rng: random.Random, syllables: int) -> str:
    return "".join(
        rng.choice(lx.ONSETS) + rng.choice(lx.VOWELS) + rng.choice(lx.CODAS)
        for _ in range(syllables)
    )


def build_world(config: WorldConfig = WorldConfig()) -> World:
    """Invent the people and towns of a world; the same config gives the same world."""
    if config.n_people < len(config.frequency_buckets):
        raise ValueError(
            f"n_people={config.n_people} is fewer than the "
            f"{len(config.frequency_buckets)} frequency buckets"
        )
    rng = stream(config.seed, "world")
    taken = set(lx.LIST_WORDS) | set(lx.JOBS)
    towns: list[str] = []
    while len(towns) < config.n_towns:
        town = (_invent(rng, 2) + rng.choice(lx.TOWN_SUFFIXES)).capitalize()
        if town.lower() not in taken:
            taken.add(town.lower())
            towns.append(town)
    names: list[str] = []
    while len(names) < config.n_people:
        name = _invent(rng, rng.choice((2, 2, 3))).capitalize()
        if name.lower() not in taken:
            taken.add(name.lower())
            names.append(name)
    buckets = [b for b, _ in config.frequency_buckets]
    people = tuple(
        Person(
            name=name,
            bucket=buckets[i * len(buckets) // len(names)],
            home=rng.choice(towns),
            job=rng.choice(lx.JOBS),
            pet=rng.choice(lx.ANIMALS),
            color=rng.choice(lx.COLORS),
        )
        for i, name in enumerate(names)
    )
    rates = dict(config.frequency_buckets)
    cum_rates = tuple(itertools.accumulate(rates[p.bucket] for p in people))
    return World(config, people, tuple(towns), cum_rates)


def sample_person(rng: random.Random, world: World) -> Person:
    """A person drawn with probability proportional to their bucket's mention rate."""
    return rng.choices(world.people, cum_weights=world.cum_rates)[0]


def fact(rng: random.Random, person: Person, attribute: str) -> str:
    """One statement of one fact, in a randomly chosen template."""
    template = rng.choice(_TEMPLATES[attribute])
    return template.format(e=person.name, v=getattr(person, attribute))


def biography(rng: random.Random, world: World) -> str:
    """A short paragraph stating one to four facts about one person."""
    person = sample_person(rng, world)
    attributes = rng.sample(ATTRIBUTES, rng.randint(1, len(ATTRIBUTES)))
    return " ".join(fact(rng, person, a) for a in attributes)


def story(rng: random.Random, world: World) -> str:
    """Running text: three to six narrative sentences, true to the facts of the world."""
    sentences = []
    for _ in range(rng.randint(3, 6)):
        p, other = sample_person(rng, world), sample_person(rng, world)
        sentences.append(
            rng.choice(_STORY).format(
                e=p.name,
                e2=other.name,
                home=p.home,
                job=p.job,
                pet=p.pet,
                town=rng.choice(world.towns),
                n=rng.randint(2, 12),
                food=rng.choice(lx.FOODS),
                weather=rng.choice(lx.WEATHER),
                color=rng.choice(lx.COLORS),
                c=rng.choice(lx.COLORS),
                animal=rng.choice(lx.ANIMALS),
                place=rng.choice(lx.PLACES),
                tool=rng.choice(lx.TOOLS),
            )
        )
    return " ".join(sentences)


def knowledge_items(world: World) -> list[dict]:
    """Four-way multiple-choice questions, one per person for a sample of each bucket.

    Returns:
        Dicts with ``question`` (ends in ``answer :``), ``choices`` (4 single words),
        ``answer`` (index of the right choice), ``person``, ``attribute`` and ``frequency``
        (the person's bucket), ``n_knowledge_per_bucket`` per bucket, buckets in order.
    """
    rng = stream(world.config.seed, "knowledge")
    n = world.config.n_knowledge_per_bucket
    chosen = []
    for bucket, _ in world.config.frequency_buckets:
        members = [p for p in world.people if p.bucket == bucket]
        if n > len(members):
            raise ValueError(
                f"n_knowledge_per_bucket={n} exceeds the {len(members)} people of bucket {bucket!r}"
            )
        chosen += rng.sample(members, n)
    items = []
    for i, person in enumerate(chosen):
        attribute = ATTRIBUTES[i % len(ATTRIBUTES)]
        truth = getattr(person, attribute)
        wrong = rng.sample([v for v in world.values(attribute) if v != truth], 3)
        choices = [truth, *wrong]
        rng.shuffle(choices)
        question = _QUESTIONS[attribute].format(e=person.name)
        items.append(
            {
                "question": question,
                "choices": choices,
                "answer": choices.index(truth),
                "person": person.name,
                "attribute": attribute,
                "frequency": person.bucket,
            }
        )
    return items


def words() -> set[str]:
    """Every fixed word the world's templates can emit (names and numbers excluded)."""
    texts = [t for ts in _TEMPLATES.values() for t in ts] + list(_STORY)
    return {w for t in texts for w in t.split() if not w.startswith("{")}
