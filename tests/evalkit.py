"""A byte-level tiny Llama and local lm-eval tasks for the evaluation and store tests.

The byte tokenizer reads any text, so the same model answers the bundled-style tasks and items
written in the real datasets' schemas (MMLU, ARC, GSM8K, IFEval). Task YAMLs are written at run
time because lm-eval resolves ``include:`` and ``data_files`` paths absolutely.
"""

from __future__ import annotations

from pathlib import Path

import torch

DATA = Path(__file__).parent / "data" / "eval"


def make_byte_tokenizer():
    """A byte-level tokenizer: 256 byte symbols, then <pad>, <s>, </s> (no merges)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    alphabet = pre_tokenizers.ByteLevel.alphabet()
    vocab = {ch: i for i, ch in enumerate(sorted(alphabet))}
    for special in ("<pad>", "<s>", "</s>"):
        vocab[special] = len(vocab)
    tok = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    tok.decoder = decoders.ByteLevel()
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, pad_token="<pad>", bos_token="<s>", eos_token="</s>"
    )


def make_byte_llama(seed: int = 0):
    """hidden 32, intermediate 37, 2 layers, vocab 259, context 2048, float32, seeded."""
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(
        vocab_size=259,
        hidden_size=32,
        intermediate_size=37,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        head_dim=8,
        max_position_embeddings=2048,
        tie_word_embeddings=True,
        pad_token_id=256,
        bos_token_id=257,
        eos_token_id=258,
    )
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config).eval()
    with torch.no_grad():
        for p in model.parameters():
            if p.ndim == 2:
                p.normal_(0.0, 0.2)
    return model


def _lm_eval_task(relative: str) -> Path:
    import lm_eval

    return Path(lm_eval.__file__).parent / "tasks" / relative


def _local(test: str, **extra: str) -> str:
    files = {"test": str(DATA / test), **{k: str(DATA / v) for k, v in extra.items()}}
    lines = [f"    {k}: {v}" for k, v in files.items()]
    return "dataset_path: json\ndataset_name: null\ndataset_kwargs:\n  data_files:\n" + "\n".join(
        lines
    )


def write_tasks(folder: Path) -> Path:
    """Write the test task YAMLs into ``folder`` and return it.

    Tasks: group ``tiny`` = tiny_knowledge (4-way multiple choice) + tiny_text (rolling
    log-likelihood); and official lm-eval tasks re-pointed at local items: mmlu_local,
    arc_local, gsm8k_local, ifeval_local, ifeval_sentences_local.
    """
    folder.mkdir(parents=True, exist_ok=True)
    short_gen = "generation_kwargs:\n  until: []\n  do_sample: false\n  max_gen_toks: 12\n"
    yamls = {
        "tiny_knowledge": f"""task: tiny_knowledge
{_local("knowledge.jsonl")}
test_split: test
output_type: multiple_choice
doc_to_text: "{{{{question}}}}"
doc_to_choice: "{{{{choices}}}}"
doc_to_target: answer
metric_list:
  - metric: acc
    aggregation: mean
    higher_is_better: true
  - metric: acc_norm
    aggregation: mean
    higher_is_better: true
""",
        "tiny_text": f"""task: tiny_text
{_local("text.jsonl")}
test_split: test
output_type: loglikelihood_rolling
doc_to_text: ""
doc_to_target: "{{{{text}}}}"
metric_list:
  - metric: word_perplexity
    aggregation: weighted_perplexity
    higher_is_better: false
  - metric: byte_perplexity
    aggregation: weighted_perplexity
    higher_is_better: false
  - metric: bits_per_byte
    aggregation: bits_per_byte
    higher_is_better: false
""",
        "tiny": """group: tiny
task: [tiny_knowledge, tiny_text]
aggregate_metric_list:
  - metric: acc
    weight_by_size: true
""",
        "mmlu_local": f"""include: {_lm_eval_task("mmlu/default/_default_template_yaml")}
task: mmlu_local
{_local("mmlu_test.jsonl", dev="mmlu_dev.jsonl")}
""",
        "arc_local": f"""include: {_lm_eval_task("arc/arc_challenge.yaml")}
task: arc_local
tag: [local_real]
{_local("arc.jsonl")}
training_split: null
validation_split: null
""",
        "gsm8k_local": f"""include: {_lm_eval_task("gsm8k/gsm8k.yaml")}
task: gsm8k_local
tag: [local_real]
{_local("gsm8k.jsonl", train="gsm8k.jsonl")}
{short_gen}""",
        "ifeval_local": f"""include: {_lm_eval_task("ifeval/ifeval.yaml")}
task: ifeval_local
{_local("ifeval.jsonl")}
test_split: test
{short_gen}""",
        "ifeval_sentences_local": f"""include: {_lm_eval_task("ifeval/ifeval.yaml")}
task: ifeval_sentences_local
{_local("ifeval_sentences.jsonl")}
test_split: test
{short_gen}""",
    }
    for name, text in yamls.items():
        (folder / f"{name}.yaml").write_text(text)
    return folder
