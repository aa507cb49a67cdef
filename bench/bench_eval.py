"""Evaluation throughput: multiple choice by batched likelihood vs one `generate` call per question, and free-form
answers generated in batches (sorted by length, left padding) vs one by one. All in one run, on the same model.

  mc-likelihood   evaluation.run's path: render + tokenise + one forward pass per batch + letter scores (baseline:)
  mc-generate-1   the naive way: one greedy `generate` per question (up to --mc-new-tokens), then answer extraction
  qa-batched      evaluation.run's free-form path, --batch-size items per generate call, then ROUGE/BLEU (baseline:)
  qa-one-by-one   the same items, one generate call each

Free-form answers are forced to --qa-new-tokens (min_new_tokens = max_new_tokens) so both ways do the same work.

    python bench/bench_eval.py                          # demo model, on this machine's device
    python bench/bench_eval.py --shape qwen2.5-0.5b     # Qwen2.5-0.5B shape, random weights, no download

Prints the figures and the ratios, and one JSON line per result (appended to --json-out when given).
"""

from __future__ import annotations

import argparse
import platform
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import torch  # noqa: E402

from chat.registry import ModelRegistry  # noqa: E402
from chat.settings import GenerationSettings  # noqa: E402
from bench.report import emit_json  # noqa: E402
from evaluation.prompts import PromptConfig, build_messages  # noqa: E402
from evaluation.metrics import qa_item_scores  # noqa: E402
from evaluation.run import mc_generate_rows, mc_likelihood_rows, qa_rows  # noqa: E402
from evaluation.tasks import FREE_FORM, MULTIPLE_CHOICE, load_dataset  # noqa: E402

DATA = Path(__file__).resolve().parent.parent / "data"


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", default="demo", help='base model reference (default "demo")')
    p.add_argument("--shape", choices=["qwen2.5-0.5b"], help="build a random-weight model of this shape instead")
    p.add_argument("--device", default=None)
    p.add_argument("--mc-questions", type=int, default=256, help="questions for the likelihood path")
    p.add_argument("--mc-naive-questions", type=int, default=16, help="questions for the one-by-one generate path")
    p.add_argument("--mc-new-tokens", type=int, default=32)
    p.add_argument("--qa-items", type=int, default=32)
    p.add_argument("--qa-new-tokens", type=int, default=64)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--json-out", type=Path)
    return p.parse_args(argv)


def repeat(items, n):
    return [items[i % len(items)] for i in range(n)]


def timed(fn) -> float:
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    start = time.perf_counter()
    fn()
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return time.perf_counter() - start


def bench_mc(registry, args) -> list[dict]:
    model = registry.model_for(None)
    items = repeat(load_dataset(DATA / "mc_sample.jsonl").items, args.mc_questions)
    config = PromptConfig()

    def likelihood():  # tokenisation and prompt rendering included, as in a real run
        for s in range(0, len(items), args.batch_size):
            batch = items[s:s + args.batch_size]
            mc_likelihood_rows(model, batch, [build_messages(MULTIPLE_CHOICE, i, config) for i in batch], None)

    naive_items = items[:args.mc_naive_questions]
    settings = GenerationSettings(max_new_tokens=args.mc_new_tokens)

    def naive():
        for item in naive_items:
            mc_generate_rows(model, [item], [build_messages(MULTIPLE_CHOICE, item, config)], settings)

    likelihood_s, naive_s = timed(likelihood), timed(naive)
    fast, slow = len(items) / likelihood_s, len(naive_items) / naive_s
    return [{"case": "mc-likelihood", "questions_per_s": fast, "questions": len(items), "batch_size": args.batch_size},
            {"case": "mc-generate-1", "questions_per_s": slow, "questions": len(naive_items),
             "max_new_tokens": args.mc_new_tokens},
            {"case": "mc-ratio", "likelihood_vs_generate_one_by_one": fast / slow}]


def bench_qa(registry, args) -> list[dict]:
    model = registry.model_for(None)
    items = repeat(load_dataset(DATA / "qa_sample.jsonl").items, args.qa_items)
    config = PromptConfig()
    settings = GenerationSettings(max_new_tokens=args.qa_new_tokens, min_new_tokens=args.qa_new_tokens)
    prompts = [build_messages(FREE_FORM, i, config) for i in items]
    order = sorted(range(len(items)), key=lambda i: -len(registry.tokenizer(registry.render(prompts[i]))["input_ids"]))

    def batched():
        for s in range(0, len(order), args.batch_size):
            chunk = order[s:s + args.batch_size]
            qa_rows(model, [items[i] for i in chunk], [prompts[i] for i in chunk], settings)

    def one_by_one():
        for i in range(len(items)):
            qa_rows(model, [items[i]], [prompts[i]], settings)

    batched_s, single_s = timed(batched), timed(one_by_one)
    fast, slow = len(items) / batched_s, len(items) / single_s
    return [{"case": "qa-batched", "items_per_s": fast, "items": len(items), "batch_size": args.batch_size,
             "new_tokens": args.qa_new_tokens},
            {"case": "qa-one-by-one", "items_per_s": slow, "items": len(items), "new_tokens": args.qa_new_tokens},
            {"case": "qa-ratio", "batched_vs_one_by_one": fast / slow}]


def main(argv=None) -> list[dict]:
    args = parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        model = args.model
        if args.shape:
            from bench_chat import random_shape_model

            model = random_shape_model(Path(tmp) / "model")
        registry = ModelRegistry(model, Path(tmp) / "data", device=args.device)
        registry.generate(["warm-up"], settings=GenerationSettings(max_new_tokens=2))
        registry.next_token_logits(["warm-up"])  # first calls import peft and warm kernels: not what we measure
        qa_item_scores(["预热"], ["预热"])  # jieba loads its dictionary on first use (~1 s): not the batched path's cost
        device = str(registry.model.device)
        common = {"bench": "eval", "device": device, "model": args.shape or args.model,
                  "gpu": torch.cuda.get_device_name() if torch.cuda.is_available() else None,
                  "machine": platform.processor() or platform.machine(), "torch_threads": torch.get_num_threads()}
        lines = [common | row for row in bench_mc(registry, args) + bench_qa(registry, args)]
    for line in lines:
        figures = ", ".join(f"{k}={v:.2f}" if isinstance(v, float) else f"{k}={v}" for k, v in line.items()
                            if k not in common)
        print(f"{line['case']:15s} {figures}")
    emit_json(lines, args.json_out)
    return lines


if __name__ == "__main__":
    main()
