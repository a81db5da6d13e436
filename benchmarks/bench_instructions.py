"""Instruction following of one model on the real suites, with and without its chat template.

Usage: python benchmarks/bench_instructions.py [--model smollm2-135m-instruct]
       [--tasks real_instructions,real_ifbench] [--limit 66] [--threads 2] [--batch-size 33]

For each setting of the chat template it prints lm-eval's four scores per task (value, stderr,
n), the share of instructions followed per instruction type (strict and loose, with n), and the
wall and CPU seconds per prompt. The suites' items are ordered so that a limit keeps every
instruction type (real_instructions: the first 23 items hold each type once).
"""

from __future__ import annotations

import argparse
import time

import pandas as pd
import torch

import widthprune as wp
from widthprune.evaluation import instruction_compliance


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2-135m-instruct")
    parser.add_argument("--tasks", default="real_instructions")
    parser.add_argument("--limit", type=int, default=66, help="items per task")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    parser.add_argument("--batch-size", type=int, default=33)
    parser.add_argument("--chat", choices=("both", "on", "off"), default="both")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    model, tok = wp.load(args.model)
    settings = {"both": (True, False), "on": (True,), "off": (False,)}[args.chat]
    pd.set_option("display.width", 160)
    for chat in settings:
        wall, cpu = time.perf_counter(), time.process_time()
        result = wp.evaluate(
            model,
            tok,
            args.tasks.split(","),
            limit=args.limit,
            batch_size=args.batch_size,
            apply_chat_template=chat,
        )
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        prompts = len(result.records)
        print(f"\n== {args.model}, chat template {'on' if chat else 'off'}: {prompts} prompts")
        print(f"{wall / prompts:.2f} s wall, {cpu / prompts:.2f} s CPU per prompt")
        print(result.summary[["task", "metric", "value", "stderr", "n"]].to_string(index=False))
        table = instruction_compliance(result.records)
        print(table.round(3).to_string(index=False))


if __name__ == "__main__":
    main()
