"""Training text and task items of a toy world, and the vocabulary they share.

Task items come from their own random streams and are kept out of the training text, so
instruction prompts, word problems and perplexity documents are never seen in training.
Training rows are made in shards, each from its own stream, so the rows do not depend on
how many processes make them.
"""

from __future__ import annotations

import json
import os
import random
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from . import arithmetic, instructions
from . import lexicon as lx
from .world import World, WorldConfig, biography, build_world, knowledge_items, story, stream
from .world import words as world_words

__all__ = [
    "SPECIAL_TOKENS",
    "TASK_FILES",
    "training_document",
    "training_rows",
    "task_items",
    "vocabulary",
    "write_tasks",
]

PAD, EOS, UNK = "<pad>", "</s>", "<unk>"
SPECIAL_TOKENS = (PAD, EOS, UNK)
TASK_FILES = ("knowledge", "instructions", "arithmetic", "perplexity")
SHARD_ROWS = 256  # training rows per independently seeded shard


def vocabulary(world: World) -> list[str]:
    """Every token the world can write: special tokens first, then sorted words."""
    words = set(lx.LIST_WORDS) | set(lx.JOBS) | set(lx.WEATHER) | set(lx.OBJECTS)
    words |= set(lx.ORDINALS) | {d for pair in lx.DELIMITERS for d in pair}
    words |= set(lx.PUNCTUATION) | set(lx.NUMBERS)
    words |= {p.name for p in world.people} | set(world.towns)
    words |= world_words() | instructions.words() | arithmetic.words()
    return [*SPECIAL_TOKENS, *sorted(words - set(SPECIAL_TOKENS))]


def _instruction_item(rng: random.Random, world: World) -> dict:
    c = world.config
    return instructions.make_prompt(rng, count=c.count_range, list_len=c.list_len)


def _arithmetic_item(rng: random.Random, world: World) -> dict:
    names = [p.name for p in world.people]
    return arithmetic.make_problem(rng, names, world.config.arithmetic_steps)


def task_items(world: World) -> dict[str, list[dict]]:
    """The items of the four toy tasks, keyed by task (see ``TASK_FILES``)."""
    c = world.config
    items: dict[str, list[dict]] = {"knowledge": knowledge_items(world)}
    for name, make, n, key in (
        ("instructions", _instruction_item, c.n_instruction_items, "prompt"),
        ("arithmetic", _arithmetic_item, c.n_arithmetic_items, "question"),
    ):
        rng, seen, rows = stream(c.seed, f"task/{name}"), set(), []
        while len(rows) < n:
            item = make(rng, world)
            if item[key] not in seen:  # distinct items, so each counts once
                seen.add(item[key])
                rows.append(item)
        items[name] = rows
    rng = stream(c.seed, "task/perplexity")
    items["perplexity"] = [{"text": story(rng, world)} for _ in range(c.n_text_docs)]
    for row in items["instructions"]:  # the checkers' arguments differ by kind: keep as JSON
        row["kwargs"] = json.dumps(row["kwargs"])
    return items


def _held_out(items: dict[str, list[dict]]) -> set[str]:
    """Texts the training stream must never produce."""
    return (
        {r["prompt"] for r in items["instructions"]}
        | {r["question"] for r in items["arithmetic"]}
        | {r["text"] for r in items["perplexity"]}
    )


def training_document(rng: random.Random, world: World, held_out: set[str]) -> str:
    """One training document of a kind drawn from the world's mixture."""
    kinds, shares = zip(*world.config.mixture, strict=True)
    kind = rng.choices(kinds, weights=shares)[0]
    while True:
        if kind == "facts":
            return biography(rng, world)
        if kind == "stories":
            text = key = story(rng, world)
        elif kind == "instructions":
            item = _instruction_item(rng, world)
            text, key = f"{item['prompt']} {item['response']}", item["prompt"]
        elif kind == "arithmetic":
            item = _arithmetic_item(rng, world)
            text, key = f"{item['question']} {item['solution']}", item["question"]
        else:
            raise ValueError(
                f"unknown document kind {kind!r} in the mixture; valid: facts, "
                "stories, instructions, arithmetic"
            )
        if key not in held_out:
            return text


def _shard(args: tuple) -> np.ndarray:
    """``(SHARD_ROWS, seq_len)`` uint16 token ids of one shard of packed documents."""
    world, vocab, held_out, index, seq_len = args
    ids = {w: i for i, w in enumerate(vocab)}
    eos = ids[EOS]
    rng = stream(world.config.seed, f"train/{index}")
    rows = np.empty((SHARD_ROWS, seq_len), dtype=np.uint16)
    for r in range(SHARD_ROWS):
        # a row starts at a document's start, as an evaluation prompt does; later documents
        # follow an end-of-text token, as in rolling perplexity; the last one is cut
        row: list[int] = []
        while len(row) < seq_len:
            row += [ids[w] for w in training_document(rng, world, held_out).split()] + [eos]
        rows[r] = row[:seq_len]
    return rows


def training_rows(
    world: World, vocab: list[str], n_rows: int, seq_len: int, *, workers: int = 1
) -> np.ndarray:
    """Packed training rows, ``(n_rows, seq_len)`` uint16, the same for any ``workers``."""
    if len(vocab) > np.iinfo(np.uint16).max:
        raise ValueError(f"vocabulary of {len(vocab)} words does not fit uint16 token ids")
    held_out = _held_out(task_items(world))
    n_shards = -(-n_rows // SHARD_ROWS)
    jobs = [(world, vocab, held_out, i, seq_len) for i in range(n_shards)]
    bar = dict(total=n_shards, desc="generating text", unit="shard")
    if workers <= 1:
        shards = [_shard(j) for j in tqdm(jobs, **bar)]
    else:
        with ProcessPoolExecutor(workers) as pool:
            shards = list(tqdm(pool.map(_shard, jobs, chunksize=4), **bar))
    return np.concatenate(shards)[:n_rows]


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def write_tasks(world: World | None, out_dir: str | os.PathLike) -> dict[str, Path]:
    """Write each task's items as ``<out_dir>/<task>.jsonl``; returns the paths by task."""
    world = world or build_world()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name, rows in task_items(world).items():
        paths[name] = out / f"{name}.jsonl"
        _write_atomic(paths[name], "".join(json.dumps(r, sort_keys=True) + "\n" for r in rows))
    return paths


def recovery_texts(n_documents: int = 2048, config: WorldConfig | None = None) -> list[str]:
    """Documents like the training text, from a seeded stream of their own, to recover on.

    The world's templates repeat whole sentences, so a document is kept only if none of its
    sentences occurs in a task item (:func:`widthprune.overlap.overlapping_sentences`); the
    stream differs from the calibration's, so recovery does not train on what an
    activation-aware criterion measured.
    """
    from ..overlap import sentence_digests

    world = build_world(config or WorldConfig())
    items = task_items(world)
    held_out = _held_out(items)
    tested = sentence_digests(_texts_of(items))
    rng = stream(world.config.seed, "recovery")
    out = []
    while len(out) < n_documents:
        document = training_document(rng, world, held_out)
        if not sentence_digests([document]).keys() & tested.keys():
            out.append(document)
    return out


def _texts_of(items: dict[str, list[dict]]) -> list[str]:
    out = []
    for rows in items.values():
        for row in rows:
            for value in row.values():
                if isinstance(value, str):
                    out.append(value)
                elif isinstance(value, list):
                    out.extend(v for v in value if isinstance(v, str))
    return out


def item_texts(config: WorldConfig | None = None) -> list[str]:
    """Every text of every toy task item (questions, prompts, choices, passages)."""
    return _texts_of(task_items(build_world(config or WorldConfig())))


def calibration_texts(n_documents: int = 256, config: WorldConfig | None = None) -> list[str]:
    """Documents like the training text, from their own seeded stream, for calibration.

    They follow the training mixture (facts, stories, instructions, sums) and never contain a
    task item, so activation-aware criteria see the model's usual input, not the test.
    """
    world = build_world(config or WorldConfig())
    held_out = _held_out(task_items(world))
    rng = stream(world.config.seed, "calibration")
    return [training_document(rng, world, held_out) for _ in range(n_documents)]
