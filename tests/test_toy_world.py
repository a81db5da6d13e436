"""The toy world: determinism, held-out items, frequencies, arithmetic, the shipped data."""

from __future__ import annotations

import collections
import re
from dataclasses import replace

import numpy as np
import pytest

from widthprune.toy import (
    TASK_DATA,
    WorldConfig,
    build_world,
    task_items,
    training_rows,
    vocabulary,
    write_tasks,
)
from widthprune.toy.corpus import training_document
from widthprune.toy.world import ATTRIBUTES, stream


def _world_bytes(seed: int, tmp_path) -> bytes:
    world = build_world(WorldConfig(seed=seed))
    paths = write_tasks(world, tmp_path / f"tasks{seed}_{len(list(tmp_path.iterdir()))}")
    rows = training_rows(world, vocabulary(world), 300, 64)
    return b"".join(p.read_bytes() for p in paths.values()) + rows.tobytes()


def test_same_seed_same_world_byte_for_byte_and_another_seed_another(tmp_path):
    first, again, other = (_world_bytes(s, tmp_path) for s in (0, 0, 1))
    assert first == again
    assert first != other


def test_training_rows_do_not_depend_on_the_number_of_workers():
    world = build_world()
    vocab = vocabulary(world)
    one = training_rows(world, vocab, 600, 48, workers=1)
    two = training_rows(world, vocab, 600, 48, workers=2)
    assert one.shape == (600, 48) and one.dtype == np.uint16
    assert np.array_equal(one, two)
    assert not np.any(one == vocab.index("<unk>"))


def test_shipped_task_data_is_the_default_world(tmp_path):
    paths = write_tasks(build_world(), tmp_path)
    for name, path in paths.items():
        assert path.read_bytes() == (TASK_DATA / f"{name}.jsonl").read_bytes(), name


def _prompt_of(doc: str) -> str | None:
    """The part of an instruction or word-problem document that the suite would ask."""
    if doc.startswith("instruction :"):
        return doc.split(" response : ")[0] + " response :"
    if " how many " in doc:
        return doc.split(" answer : ")[0] + " answer :"
    return None


def test_training_text_never_produces_a_held_out_item():
    world = build_world()
    rng = stream(0, "probe")
    state = rng.getstate()
    first = [_prompt_of(training_document(rng, world, set())) for _ in range(60)]
    held = {p for p in first if p is not None}
    assert len(held) > 20
    rng.setstate(state)  # the same stream, now with those prompts held out
    again = [_prompt_of(training_document(rng, world, held)) for _ in range(60)]
    assert not held & set(again)


def test_held_out_items_are_distinct_and_absent_from_a_training_sample():
    world = build_world()
    items = task_items(world)
    prompts = {r["prompt"] for r in items["instructions"]}
    questions = {r["question"] for r in items["arithmetic"]}
    assert len(prompts) == len(items["instructions"]) and len(questions) == 200
    rng = stream(0, "train/0")
    held = prompts | questions
    docs = [training_document(rng, world, held) for _ in range(3000)]
    assert not any(d.split(" response : ")[0] + " response :" in prompts for d in docs)
    assert not any(d.split(" answer : ")[0] + " answer :" in questions for d in docs)


def test_frequency_buckets_set_how_often_people_are_mentioned():
    world = build_world()
    rng = stream(0, "count")
    bucket_of = {p.name: p.bucket for p in world.people}
    mentions = collections.Counter()
    for _ in range(4000):
        doc = training_document(rng, world, set())
        if _prompt_of(doc) is not None:  # word problems name people regardless of bucket
            continue
        for word in doc.split():
            if word in bucket_of:
                mentions[bucket_of[word]] += 1
    per_person = [mentions[b] / (len(world.people) / 4) for b, _ in world.config.frequency_buckets]
    assert per_person == sorted(per_person, reverse=True)
    assert per_person[0] / per_person[-1] > 30  # the configured ratio is 125


def test_knowledge_items_ask_true_facts_with_three_wrong_choices():
    world = build_world()
    people = {p.name: p for p in world.people}
    items = task_items(world)["knowledge"]
    counts = collections.Counter(r["frequency"] for r in items)
    assert counts == {b: 100 for b, _ in world.config.frequency_buckets}
    for r in items:
        assert r["attribute"] in ATTRIBUTES and len(set(r["choices"])) == 4
        assert r["choices"][r["answer"]] == getattr(people[r["person"]], r["attribute"])
        assert r["question"].endswith("answer :") and r["person"] in r["question"]


def test_word_problems_are_worked_correctly():
    for r in task_items(build_world())["arithmetic"]:
        steps = re.findall(r"(\d+) ([+-]) (\d+) = (\d+) \.", r["solution"])
        assert len(steps) == r["steps"] >= 1
        for a, op, b, c in steps:
            assert int(c) == (int(a) + int(b) if op == "+" else int(a) - int(b))
            assert 0 <= int(c) <= 99
        assert steps[-1][3] == r["answer"] and r["solution"].endswith(f"is {r['answer']} .")
        assert r["question"].split(" has ")[1].split()[0] == steps[0][0]


def test_bad_configs_are_refused():
    with pytest.raises(ValueError, match="fewer than"):
        build_world(replace(WorldConfig(), n_people=2))
    with pytest.raises(ValueError, match="exceeds"):
        task_items(build_world(replace(WorldConfig(), n_people=40)))


def test_calibration_texts_are_seeded_and_never_hold_a_task_item():
    from widthprune.toy import calibration_texts, task_items
    from widthprune.toy.world import WorldConfig, build_world

    texts = calibration_texts(64)
    assert texts == calibration_texts(64) and len(set(texts)) > 32
    items = task_items(build_world(WorldConfig()))
    held = [r["prompt"] for r in items["instructions"]] + [
        r["question"] for r in items["arithmetic"]
    ]
    assert not any(h in t for t in texts for h in held)
    assert calibration_texts(8, WorldConfig(seed=1)) != calibration_texts(8)
