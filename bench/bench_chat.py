"""Chat decoding speed: time to first token and tokens/s per pane, for 1 and 4 panes (base + 3 adapters).

Compared in one run, on the same prompt, every answer forced to the same length (min_new_tokens = max_new_tokens):
  plain        transformers `generate` on the bare base model, batch 1: the baseline
  peft-seq     through peft with the adapters attached, one pane after another (what a naive UI does)
  peft-mixed   one batch, peft's `generate(..., adapter_names=[...])`
  ours         the registry's path: one batch, models/local/batched_lora.py, models/local/decode.py's greedy loop with
               models/local/fast_step.py's decoding step, streamed
  (and the same with `generate` instead of that loop, and with the model's full forward instead of the fast step,
   to show what each brings)

    python bench/bench_chat.py                         # demo model, 256 new tokens, on this machine's device
    python bench/bench_chat.py --model Qwen/Qwen2.5-0.5B-Instruct --json-out bench/results.jsonl
    python bench/bench_chat.py --shape qwen2.5-0.5b    # random weights in that shape, no download

Prints a table, the ratios against the baseline, and one JSON line (appended to --json-out when given).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402

from chat.registry import ModelRegistry  # noqa: E402
from chat.settings import GenerationSettings  # noqa: E402
from bench.report import emit_json  # noqa: E402

PROMPT = [{"role": "system", "content": "你是一名专业、严谨的医学助手。"},
          {"role": "user", "content": "高血压患者在饮食上需要注意什么？请详细说明。"}]
TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", default="demo", help='base model reference (default "demo")')
    p.add_argument("--shape", choices=["qwen2.5-0.5b"], help="build a random-weight model of this shape instead")
    p.add_argument("--new-tokens", type=int, default=256)
    p.add_argument("--rank", type=int, default=8, help="LoRA rank of the benchmark adapters")
    p.add_argument("--device", default=None)
    p.add_argument("--dtype", default="float32", choices=["float32", "bfloat16", "float16"],
                   help="every path's model dtype (a GPU serves bf16; bench/gpu_check.py asks for it)")
    p.add_argument("--repeat", type=int, default=3, help="rounds; each row reports its best (shared machines are noisy)")
    p.add_argument("--json-out", type=Path)
    return p.parse_args(argv)


def random_shape_model(out: Path) -> str:
    """Qwen2.5-0.5B's shape with random weights, and the demo tokenizer (ids past its vocabulary decode to '')."""
    from transformers import AutoTokenizer, Qwen2Config, Qwen2ForCausalLM

    from finetune.demo_model import demo_model_dir

    torch.manual_seed(0)
    config = Qwen2Config(vocab_size=151936, hidden_size=896, intermediate_size=4864, num_hidden_layers=24,
                         num_attention_heads=14, num_key_value_heads=2, max_position_embeddings=32768,
                         tie_word_embeddings=True)  # min_new_tokens keeps every answer at full length
    Qwen2ForCausalLM(config).save_pretrained(out)
    AutoTokenizer.from_pretrained(demo_model_dir()).save_pretrained(out)
    return str(out)


def make_adapters(base_path: str, base_ref: str, out: Path, n: int, rank: int) -> list[str]:
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    names = []
    for i in range(n):
        model = get_peft_model(AutoModelForCausalLM.from_pretrained(base_path),
                               LoraConfig(r=rank, lora_alpha=2 * rank, target_modules=TARGETS))
        generator = torch.Generator().manual_seed(i)
        with torch.no_grad():
            for name, p in model.named_parameters():
                if "lora_" in name:
                    p.copy_(torch.randn(p.shape, generator=generator) * 0.02)
        model.save_pretrained(out / f"bench-{i}")
        config = json.loads((out / f"bench-{i}" / "adapter_config.json").read_text())
        config["base_model_name_or_path"] = base_ref
        (out / f"bench-{i}" / "adapter_config.json").write_text(json.dumps(config))
        names.append(f"bench-{i}")
    return names


class Clock:
    """A streamer that notes when the first new token arrives."""

    def __init__(self):
        self.start, self.first, self.calls = time.perf_counter(), None, 0

    def put(self, value):
        self.calls += 1
        if self.calls == 2 and self.first is None:  # the first call is the prompt
            self.first = time.perf_counter()

    def end(self):
        pass


def timed_generate(model, inputs, settings, **extra) -> dict:
    clock = Clock()
    model.generate(**inputs, streamer=clock, **settings.generate_kwargs(), **extra)
    end = time.perf_counter()
    n = settings.max_new_tokens
    return {"ttft_s": clock.first - clock.start, "total_s": end - clock.start,
            "tokens_per_s": (n - 1) / (end - clock.first)}


def load_plain(path, device, dtype="float32"):
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(path, dtype=getattr(torch, dtype)).to(device).eval()


def load_peft(path, adapters_dir, names, device, dtype="float32"):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(path, dtype=getattr(torch, dtype))
    model = PeftModel.from_pretrained(base, adapters_dir / names[0],
                                      adapter_name=names[0])
    for name in names[1:]:
        model.load_adapter(adapters_dir / name, adapter_name=name)
    return model.to(device).eval()


def peft_one(model, name, inputs, settings) -> dict:
    model.set_adapter(name)
    return timed_generate(model, inputs, settings)


def peft_one_by_one(model, names, inputs, settings) -> dict:
    """Base + 3 adapters one after another; a pane's time to first token includes the panes before it."""
    panes, start = [], time.perf_counter()
    for pane in [None] + names[:3]:
        if pane is None:
            with model.disable_adapter():
                r = timed_generate(model, inputs, settings)
        else:
            r = peft_one(model, pane, inputs, settings)
        r["ttft_s"] = time.perf_counter() - start - r["total_s"] + r["ttft_s"]
        panes.append(r)
    return {"panes": panes, "total_s": time.perf_counter() - start}


def in_thread(run, settings) -> dict:
    """Run one measurement in a fresh thread, as the registry generates: torch's CPU threading differs between
    the main thread and others (on a busy 2-core machine by 2-4x), so every path gets the same conditions."""
    out: dict = {}
    worker = threading.Thread(target=lambda: out.update(run(settings)))
    worker.start()
    worker.join()
    return out


def registry_run(registry, panes, settings) -> dict:
    start = time.perf_counter()
    for state in registry.stream([(n, PROMPT) for n in panes], settings):
        pass
    return {"ttft_s": state.first_token_s, "tokens_per_s": state.tokens_per_s(), "total_s": time.perf_counter() - start}


def main(argv=None) -> dict:
    args = parse_args(argv)
    from chat.registry import pick_device_dtype

    device, _ = pick_device_dtype(args.device, args.dtype)
    work = Path(tempfile.mkdtemp(prefix="bench-chat-"))
    try:
        return measure(args, device, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)  # the random 0.5B-shape model alone is 2 GB


def measure(args, device, work: Path) -> dict:
    from finetune.demo_model import resolve_model

    path = random_shape_model(work / "model") if args.shape else resolve_model(args.model)
    ref = path if args.shape else args.model
    adapters = work / "data" / "adapters"
    names = make_adapters(path, ref, adapters, 3, args.rank)
    four = [None] + names[:3]
    settings = GenerationSettings(max_new_tokens=args.new_tokens, min_new_tokens=args.new_tokens)
    ours = ModelRegistry(ref, work / "data", device=device, dtype=args.dtype)
    peft_mixed = ModelRegistry(ref, work / "data", device=device, dtype=args.dtype, batched_lora=False)
    ours_generate = ModelRegistry(ref, work / "data", device=device, dtype=args.dtype, lean_decode=False)
    ours_forward = ModelRegistry(ref, work / "data", device=device, dtype=args.dtype, fast_step=False)
    inputs = ours.tokenizer(ours.render(PROMPT), return_tensors="pt", add_special_tokens=False).to(device)
    plain, peft = load_plain(path, device, args.dtype), load_peft(path, adapters, names, device, args.dtype)
    paths = {
        "plain": lambda s: timed_generate(plain, inputs, s),
        "peft_one": lambda s: peft_one(peft, names[0], inputs, s),
        "peft_four": lambda s: peft_one_by_one(peft, names, inputs, s),
        "peft_mixed": lambda s: registry_run(peft_mixed, four, s),
        "ours_one": lambda s: registry_run(ours, [names[0]], s),
        "ours_four": lambda s: registry_run(ours, four, s),
        "ours_four_generate": lambda s: registry_run(ours_generate, four, s),
        "ours_four_forward": lambda s: registry_run(ours_forward, four, s),
    }
    warm = GenerationSettings(max_new_tokens=4)
    for run in paths.values():
        in_thread(run, warm)
    # Rounds interleave the paths, so that load from other processes hits them all alike; best round per path.
    runs = {key: [] for key in paths}
    for _ in range(args.repeat):
        for key, run in paths.items():
            runs[key].append(in_thread(run, settings))
    return report(args, device, {k: min(v, key=lambda r: r["total_s"]) for k, v in runs.items()})


def report(args, device, r) -> dict:
    plain = r["plain"]["tokens_per_s"]
    ours4 = min(r["ours_four"]["tokens_per_s"])
    rows = [
        ("plain generate, 1 pane", r["plain"]["ttft_s"], plain, r["plain"]["total_s"]),
        ("peft, 1 adapter", r["peft_one"]["ttft_s"], r["peft_one"]["tokens_per_s"], r["peft_one"]["total_s"]),
        ("peft, 4 panes one by one", max(p["ttft_s"] for p in r["peft_four"]["panes"]),
         args.new_tokens / r["peft_four"]["total_s"], r["peft_four"]["total_s"]),
        ("peft mixed batch, 4 panes", r["peft_mixed"]["ttft_s"], min(r["peft_mixed"]["tokens_per_s"]),
         r["peft_mixed"]["total_s"]),
        ("ours, 1 pane (adapter)", r["ours_one"]["ttft_s"], r["ours_one"]["tokens_per_s"][0], r["ours_one"]["total_s"]),
        ("ours, 4 panes (base + 3)", r["ours_four"]["ttft_s"], ours4, r["ours_four"]["total_s"]),
        ("ours, 4 panes, via generate", r["ours_four_generate"]["ttft_s"], min(r["ours_four_generate"]["tokens_per_s"]),
         r["ours_four_generate"]["total_s"]),
        ("ours, 4 panes, full forward", r["ours_four_forward"]["ttft_s"], min(r["ours_four_forward"]["tokens_per_s"]),
         r["ours_four_forward"]["total_s"]),
    ]
    print(f"device={device} dtype={args.dtype} model={args.shape or args.model} new_tokens={args.new_tokens} rank={args.rank} "
          f"best_of={args.repeat} "
          f"torch_threads={torch.get_num_threads()} cpus={os.cpu_count()} machine={platform.processor() or platform.machine()}")
    print(f"{'path':32s} {'TTFT (worst pane) s':>20s} {'tokens/s per pane':>18s} {'total s':>9s}")
    for name, ttft, tps, total in rows:
        print(f"{name:32s} {ttft:20.3f} {tps:18.1f} {total:9.2f}")
    line = {
        "bench": "chat", "device": device, "dtype": args.dtype, "model": args.shape or args.model, "new_tokens": args.new_tokens,
        "rows": [dict(zip(("path", "ttft_s", "tokens_per_s_per_pane", "total_s"), row)) for row in rows],
        "ratio_ours4_per_pane_vs_plain": ours4 / plain,
        "ratio_ours4_per_pane_vs_peft": ours4 / r["peft_one"]["tokens_per_s"],
        "speedup_ours4_vs_peft_one_by_one": r["peft_four"]["total_s"] / r["ours_four"]["total_s"],
    }
    print(f"ours 4 panes, per pane vs plain generate: {line['ratio_ours4_per_pane_vs_plain']:.2f}x; "
          f"vs peft with one adapter: {line['ratio_ours4_per_pane_vs_peft']:.2f}x; "
          f"4 answers vs peft one by one: {line['speedup_ours4_vs_peft_one_by_one']:.2f}x faster")
    emit_json([line], args.json_out)
    return line


if __name__ == "__main__":
    main()
