"""Training throughput: real (non-padding) tokens/s of our path against a plain Trainer + peft run.

Compared in one run, on the same model (LoRA on all linear layers), the same conversations, the same rows per step:
  plain   Hugging Face Trainer + peft, each batch padded to its longest row, attention mask (the usual recipe)
  ours    finetune's path: the same Trainer + peft, conversations packed into rows of --pack-len tokens with
          position_ids restarting per conversation, no attention mask (block-diagonal attention, no padding)

    python bench/bench_train.py                              # CPU: a small random Qwen2-shaped model
    python bench/bench_train.py --shape qwen2.5-0.5b         # GPU: Qwen2.5-0.5B shape, random weights, bf16
    python bench/bench_train.py --json-out bench/results.jsonl
    python bench/bench_train.py --eval-every 20 [--model demo] [--steps 40]   # the cost of task metrics in training

The conversations are synthetic token ids with a seeded log-normal length distribution (mean ~--mean-len tokens,
~40% prompt that is not trained): throughput depends on lengths and shapes, not on what the tokens say. Prints a
table, the ratio against the baseline, and one JSON line (appended to --json-out when given).
"""

from __future__ import annotations

import argparse
import math
import platform
import random
import sys
import tempfile
import time
import types
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402

from bench.report import emit_json  # noqa: E402
from finetune.tokenization import (  # noqa: E402
    IGNORE_INDEX, Encoded, ListDataset, PackedCollator, PadCollator, as_features, pack,
)

SHAPES = {
    # name: (hidden, intermediate, layers, heads, kv heads, vocab)
    "small": (256, 704, 4, 4, 2, 8000),  # CPU-sized
    "qwen2.5-0.5b": (896, 4864, 24, 14, 2, 151936),
}


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--shape", choices=sorted(SHAPES), default=None, help="default: qwen2.5-0.5b on CUDA, else small")
    p.add_argument("--batch-size", type=int, default=8, help="conversations per step for plain")
    p.add_argument("--rows", type=int, default=None, help="packed rows per step for ours (default 4)")
    p.add_argument("--pack-len", type=int, default=None, help="tokens per packed row (default: 4096 GPU, 512 CPU)")
    p.add_argument("--mean-len", type=int, default=None, help="mean conversation length (default: 360 GPU, 200 CPU)")
    p.add_argument("--steps", type=int, default=None, help="timed steps per path (default: 30 GPU, 6 CPU)")
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--repeat", type=int, default=2, help="alternating runs per path; the best of each is reported")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json-out", type=Path)
    p.add_argument("--eval-every", type=int, default=None, metavar="N",
                   help="instead: the cost of task metrics during training: the same real run (--model, the bundled "
                        "samples) without evaluation and with the sample sets scored every N steps")
    p.add_argument("--model", default="demo", help="with --eval-every: the model trained (default: the demo model)")
    p.add_argument("--eval-limit", type=int, default=32)
    return p.parse_args(argv)


def eval_cost(args) -> int:
    """tokens/s of one real training job (finetune.train.run, bundled samples) without and with task metrics every
    N steps, in the same run; the evaluation's share of the run's time as the job itself reports it."""
    from finetune.config import TrainConfig
    from jobs.files import create_job, read_jsonl
    from jobs.worker import run

    data = Path(__file__).resolve().parent.parent / "data"
    steps = args.steps or 40
    runs: dict[str, list[dict]] = {}
    sets = [str(data / "mc_sample.jsonl"), str(data / "qa_sample.jsonl")]
    with tempfile.TemporaryDirectory() as out:
        # Alternated, best of each (--repeat): other load on a shared machine, and the first run's warm-up
        # (imports, caches), hit both alike.
        for _ in range(args.repeat):
            for name, eval_sets in (("no eval", []), (f"eval every {args.eval_every}", sets)):
                cfg = TrainConfig(model=args.model, data=str(data / "train_sample.jsonl"), max_steps=steps,
                                  val_split=0, save_steps=0, sample_every=0, logging_steps=5, eval_sets=eval_sets,
                                  eval_every=args.eval_every, eval_limit=args.eval_limit, seed=args.seed)
                files = create_job(cfg, Path(out) / "runs")
                started = time.perf_counter()
                if run(files.dir) != 0:
                    raise SystemExit(f"{name}: the job failed: {files.read_status().get('error')}")
                seconds = time.perf_counter() - started
                tokens = max((r.get("tokens_seen", 0) for r in read_jsonl(files.metrics)), default=0)
                status = files.read_status()
                runs.setdefault(name, []).append({
                    "tokens_per_s": tokens / seconds, "seconds": seconds, "tokens": tokens,
                    "eval_share": status.get("eval_share", 0.0),
                    "evaluations_skipped": status.get("evaluations_skipped", 0)})
    results = {name: max(r, key=lambda x: x["tokens_per_s"]) for name, r in runs.items()}
    base, evaluated = results.values()
    ratio = evaluated["tokens_per_s"] / base["tokens_per_s"]
    print(f"model {args.model}; {steps} steps; sets mc_sample + qa_sample, at most {args.eval_limit} items each")
    print(f"{'run':<16}{'tokens/s (wall)':>16}{'seconds':>10}{'eval share':>12}")
    for name, r in results.items():
        print(f"{name:<16}{r['tokens_per_s']:>16.0f}{r['seconds']:>10.1f}{r['eval_share']:>12.1%}")
    print(f"ratio with / without evaluation: {ratio:.2f}x")
    emit_json([{"bench": "train_eval_cost", "model": args.model, "steps": steps, "eval_every": args.eval_every,
                "eval_limit": args.eval_limit, **{k.replace(" ", "_"): v for k, v in results.items()},
                "ratio": ratio, "torch": torch.__version__, "time": time.time()}], args.json_out)
    return 0


def synthetic_rows(n: int, mean_len: int, max_len: int, vocab: int, seed: int) -> list[Encoded]:
    rng = random.Random(seed)
    sigma = 0.6
    mu = math.log(mean_len) - sigma**2 / 2  # so that the mean of the log-normal is mean_len
    rows = []
    for _ in range(n):
        length = max(16, min(max_len, int(rng.lognormvariate(mu, sigma))))
        ids = [rng.randrange(10, vocab) for _ in range(length)]
        prompt = int(length * 0.4)
        rows.append(Encoded(ids, [IGNORE_INDEX] * prompt + ids[prompt:]))
    return rows


def build_model(shape: str, device: str, dtype):
    from peft import LoraConfig, get_peft_model
    from transformers import Qwen2Config, Qwen2ForCausalLM

    hidden, inter, layers, heads, kv, vocab = SHAPES[shape]
    torch.manual_seed(0)
    config = Qwen2Config(vocab_size=vocab, hidden_size=hidden, intermediate_size=inter, num_hidden_layers=layers,
                         num_attention_heads=heads, num_key_value_heads=kv, max_position_embeddings=32768,
                         tie_word_embeddings=True, use_cache=False)
    model = Qwen2ForCausalLM(config).to(device=device, dtype=dtype)
    lora = LoraConfig(r=8, lora_alpha=16, lora_dropout=0.0, target_modules="all-linear", task_type="CAUSAL_LM")
    return get_peft_model(model, lora)


class Timer:
    """Trainer callback: wall time and real tokens between the end of warm-up and the last step."""

    def __new__(cls, warmup: int):
        from transformers import TrainerCallback

        class _Timer(TrainerCallback):
            def on_step_end(self, args, state, control, **kwargs):
                if torch.cuda.is_available():
                    torch.cuda.synchronize()
                if state.global_step == warmup:
                    self.t0, self.tok0 = time.perf_counter(), state.num_input_tokens_seen
                elif state.global_step == state.max_steps:
                    self.seconds = time.perf_counter() - self.t0
                    self.tokens = state.num_input_tokens_seen - self.tok0

        return _Timer()


def run_path(name: str, features: list[dict], collator, per_step: int, steps: int, args, shape, device, dtype):
    from transformers import Trainer, TrainingArguments

    model = build_model(shape, device, dtype)
    timer = Timer(args.warmup)
    with tempfile.TemporaryDirectory() as out:
        training_args = TrainingArguments(
            output_dir=out, per_device_train_batch_size=per_step, max_steps=args.warmup + steps,
            learning_rate=1e-4, bf16=dtype == torch.bfloat16, logging_steps=10_000, save_strategy="no",
            report_to="none", disable_tqdm=True, remove_unused_columns=False, seed=args.seed,
            include_num_input_tokens_seen="non_padding", dataloader_num_workers=0,
        )
        # Packed batches have no attention mask: Trainer then counts non-padding tokens by the processing class's
        # pad id. The pad id (0) never occurs in the synthetic ids (they start at 10), so both counts are exact.
        trainer = Trainer(model=model, args=training_args, train_dataset=ListDataset(features), data_collator=collator,
                          callbacks=[timer], processing_class=types.SimpleNamespace(pad_token_id=0))
        trainer.train()
    peak = torch.cuda.max_memory_allocated() / 2**30 if device == "cuda" else None
    del model, trainer
    if device == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    return {"path": name, "tokens_per_s": timer.tokens / timer.seconds, "seconds": timer.seconds,
            "tokens": timer.tokens, "per_step": per_step, "peak_gib": peak}


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.eval_every:
        return eval_cost(args)
    gpu = torch.cuda.is_available()
    device = "cuda" if gpu else "cpu"
    shape = args.shape or ("qwen2.5-0.5b" if gpu else "small")
    dtype = torch.bfloat16 if gpu and torch.cuda.is_bf16_supported() else torch.float32
    # On the CPU attention over long rows costs more than the padding it saves: shorter rows, more of them.
    rows_per_step = args.rows or 4
    pack_len = args.pack_len or (4096 if gpu else 512)
    mean_len = args.mean_len or (360 if gpu else 200)
    steps = args.steps or (30 if gpu else 6)
    if not gpu:
        torch.set_num_threads(max(1, torch.get_num_threads()))

    # Enough conversations for every step of both paths; ours consumes ~pack_len*rows/mean_len per step.
    n_conv = max(args.batch_size, math.ceil(rows_per_step * pack_len / mean_len)) * (args.warmup + steps + 2)
    rows = synthetic_rows(n_conv, mean_len, min(2048, pack_len), SHAPES[shape][5], args.seed)  # same rows, both
    packed = pack(rows, pack_len)
    random.Random(args.seed).shuffle(packed)
    runs = {"plain": [], "ours": []}
    for _ in range(args.repeat):  # alternated, best of each: other load on a shared machine hits both alike
        runs["plain"].append(run_path("plain", as_features(rows), PadCollator(0), args.batch_size, steps, args,
                                      shape, device, dtype))
        runs["ours"].append(run_path("ours", as_features(packed), PackedCollator(0), rows_per_step, steps, args,
                                     shape, device, dtype))
    plain, ours = (max(runs[k], key=lambda r: r["tokens_per_s"]) for k in ("plain", "ours"))

    ratio = ours["tokens_per_s"] / plain["tokens_per_s"]
    machine = torch.cuda.get_device_name(0) if gpu else f"{platform.processor() or platform.machine()} CPU"
    print(f"machine: {machine}; shape {shape}; dtype {str(dtype).split('.')[-1]}; LoRA r=8 all-linear; "
          f"mean length {mean_len}; plain batch {args.batch_size}; ours {rows_per_step} x {pack_len} tokens")
    print(f"{'path':<8}{'real tokens/s':>15}{'seconds':>10}{'tokens':>10}{'peak GiB':>10}")
    for r in (plain, ours):
        peak = f"{r['peak_gib']:.1f}" if r["peak_gib"] is not None else "-"
        print(f"{r['path']:<8}{r['tokens_per_s']:>15.0f}{r['seconds']:>10.2f}{r['tokens']:>10}{peak:>10}")
    print(f"ratio ours / plain: {ratio:.2f}x")
    record = {"bench": "train", "machine": machine, "shape": shape, "dtype": str(dtype), "mean_len": mean_len,
              "batch_size": args.batch_size, "rows_per_step": rows_per_step, "pack_len": pack_len, "steps": steps,
              "plain": plain, "ours": ours, "ratio": ratio, "torch": torch.__version__, "time": time.time()}
    emit_json([record], args.json_out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
