"""One prepared GPU check: every GPU figure this project claims and has never measured, in one command.

    python bench/gpu_check.py                  # on one H100/H200-class GPU: at most 8 minutes
    python bench/gpu_check.py --smoke          # the same code on the CPU with tiny shapes (tests/test_gpu_check.py)
    python bench/gpu_check.py --parts chat,eval --json-out bench/results.jsonl

Parts, each run by the existing benchmark's own code, in its own process with its own time box, so that a crash, an
out-of-memory or a hang in one leaves the others their figures:

  train   real training tokens/s: our packed path against the plain padded Trainer + peft path, Qwen2.5-0.5B shape,
          random weights, bf16 (bench/bench_train.py)
  qlora   one 4-bit QLoRA run of a few steps through the real training job (jobs/worker.py -> finetune/train.py), which must save an
          adapter; needs CUDA and bitsandbytes (on the CPU smoke: the same job in plain LoRA, reported as skipped)
  chat    bf16 chat with 1 and 4 panes against plain `generate` and peft: tokens/s per pane and time to first token
          (bench/bench_chat.py)
  eval    multiple-choice questions/s by likelihood against one `generate` per question, and batched free-form
          answers against one by one (bench/bench_eval.py)

Each part also reports its peak GPU memory. Prints one table; writes one JSON line per figure (bench/report.py),
appended to --json-out (default bench/gpu_check.jsonl; none with --smoke unless given).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

PARTS = ("train", "qlora", "chat", "eval")
# Seconds per part on the GPU, 7.5 minutes in all: measured figures need far less; the rest is room for model builds.
TIME_BOX = {"train": 150, "qlora": 90, "chat": 120, "eval": 90}
SMOKE_TIME_BOX = 240  # per part on a busy 2-core CPU

# The benchmarks' own arguments: the GPU run, and the smoke run's tiny shapes (the same code paths).
ARGS = {
    "train": (["--shape", "qwen2.5-0.5b", "--steps", "20", "--repeat", "1"],
              ["--shape", "small", "--steps", "1", "--warmup", "1", "--repeat", "1", "--pack-len", "128",
               "--mean-len", "48", "--batch-size", "2", "--rows", "1"]),
    "chat": (["--shape", "qwen2.5-0.5b", "--dtype", "bfloat16", "--new-tokens", "128", "--repeat", "1"],
             ["--model", "demo", "--dtype", "bfloat16", "--new-tokens", "4", "--repeat", "1"]),
    "eval": (["--shape", "qwen2.5-0.5b", "--mc-questions", "512", "--mc-naive-questions", "16", "--qa-items", "64",
              "--qa-new-tokens", "64", "--batch-size", "32"],
             ["--model", "demo", "--mc-questions", "4", "--mc-naive-questions", "2", "--mc-new-tokens", "2",
              "--qa-items", "2", "--qa-new-tokens", "2", "--batch-size", "2"]),
}


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--smoke", action="store_true", help="tiny shapes on the CPU, to check the script still runs")
    p.add_argument("--parts", default=",".join(PARTS), help=f"comma-separated, of {', '.join(PARTS)}")
    p.add_argument("--time-box", type=float, default=None, help="seconds per part, overriding the defaults")
    p.add_argument("--json-out", type=Path, default=None)
    p.add_argument("--part", choices=PARTS, help=argparse.SUPPRESS)  # internal: run one part in this process
    p.add_argument("--rows-out", type=Path, help=argparse.SUPPRESS)
    return p.parse_args(argv)


def row(part: str, figure: str, value, unit: str = "", ratio: float | None = None, peak_gib=None,
        status: str = "ok", **extra) -> dict:
    return {"bench": "gpu_check", "part": part, "figure": figure, "value": value, "unit": unit, "ratio": ratio,
            "peak_gib": peak_gib, "status": status, **extra}


def peak_gib() -> float | None:
    import torch

    return torch.cuda.max_memory_allocated() / 2**30 if torch.cuda.is_available() else None


# ---------------------------------------------------------------------------------------------------------------
# The parts, each in its own process


def part_train(smoke: bool, work: Path) -> list[dict]:
    import bench_train

    raw = work / "train.jsonl"
    bench_train.main(ARGS["train"][smoke] + ["--json-out", str(raw)])
    record = json.loads(raw.read_text(encoding="utf-8").splitlines()[-1])
    plain, ours = record["plain"], record["ours"]
    common = {"shape": record["shape"], "dtype": record["dtype"]}
    return [row("train", "plain Trainer + peft, padded: real tokens/s", plain["tokens_per_s"], "tokens/s",
                peak_gib=plain["peak_gib"], **common),
            row("train", f"ours, packed {record['rows_per_step']} x {record['pack_len']}: real tokens/s",
                ours["tokens_per_s"], "tokens/s", ratio=record["ratio"], peak_gib=ours["peak_gib"], **common)]


def part_qlora(smoke: bool, work: Path) -> list[dict]:
    """A few QLoRA steps by the real job: the adapter it saves must load. Without CUDA (the smoke run) the same job
    runs in plain LoRA so that this code cannot rot, and the row says the 4-bit part was skipped."""
    import torch

    from bench_chat import random_shape_model
    from finetune.config import TrainConfig
    from finetune.demo_model import resolve_model
    from jobs.files import create_job
    from jobs.worker import run

    skipped = None
    if not torch.cuda.is_available():
        skipped = "skipped: no CUDA"
    elif importlib.util.find_spec("bitsandbytes") is None:
        skipped = "skipped: bitsandbytes is not installed (pip install bitsandbytes)"
    model = resolve_model("demo") if smoke else random_shape_model(work / "model")
    out = work / "qlora-adapter"
    cfg = TrainConfig(model=model, data=str(HERE.parent / "data" / "train_sample.jsonl"), val_split=0,
                      max_steps=2 if smoke else 8, batch_size=2 if smoke else 8, cutoff_len=128 if smoke else 1024,
                      logging_steps=1, save_steps=0, sample_every=0, load_in_4bit=skipped is None,
                      output_dir=str(out))
    files = create_job(cfg, work / "runs")
    code = run(files.dir)
    status = files.read_status()
    if code != 0 or not (out / "adapter_model.safetensors").is_file():
        raise RuntimeError(f"the job ended {status.get('state')}: {status.get('error')}")
    from peft import PeftConfig

    PeftConfig.from_pretrained(out)  # what plain peft reads first
    figure = "QLoRA 4-bit job, adapter saved: real tokens/s" if skipped is None else \
        "LoRA job in QLoRA's place, adapter saved: tokens/s"
    return [row("qlora", figure, status.get("tokens_per_s"), "tokens/s", peak_gib=peak_gib(),
                status=skipped or "ok", steps=status.get("step"))]


def part_chat(smoke: bool, work: Path) -> list[dict]:
    import bench_chat

    line = bench_chat.main(ARGS["chat"][smoke])
    plain = line["rows"][0]["tokens_per_s_per_pane"]
    peak = peak_gib()
    return [row("chat", f"{r['path']}: tokens/s per pane", r["tokens_per_s_per_pane"],
                "tokens/s", ratio=r["tokens_per_s_per_pane"] / plain if plain else None, peak_gib=peak,
                ttft_s=r["ttft_s"], dtype=line["dtype"], model=line["model"]) for r in line["rows"]]


def part_eval(smoke: bool, work: Path) -> list[dict]:
    import bench_eval

    lines = {line["case"]: line for line in bench_eval.main(ARGS["eval"][smoke])}
    peak = peak_gib()
    mc, naive = lines["mc-likelihood"], lines["mc-generate-1"]
    qa, single = lines["qa-batched"], lines["qa-one-by-one"]
    return [row("eval", "multiple choice by likelihood: questions/s", mc["questions_per_s"], "questions/s",
                ratio=mc["questions_per_s"] / naive["questions_per_s"], peak_gib=peak),
            row("eval", "multiple choice, one generate each: questions/s", naive["questions_per_s"], "questions/s",
                peak_gib=peak),
            row("eval", f"free-form batched ({qa['batch_size']}): items/s", qa["items_per_s"], "items/s",
                ratio=qa["items_per_s"] / single["items_per_s"], peak_gib=peak),
            row("eval", "free-form one by one: items/s", single["items_per_s"], "items/s", peak_gib=peak)]


RUNNERS = {"train": part_train, "qlora": part_qlora, "chat": part_chat, "eval": part_eval}


def run_part_here(args) -> int:
    """The child: run one part, write its rows (or its error as a row) to --rows-out."""
    with tempfile.TemporaryDirectory(prefix=f"gpu-check-{args.part}-") as work:
        try:
            rows = RUNNERS[args.part](args.smoke, Path(work))
        except Exception as exc:  # noqa: BLE001 - the parent reports it in the table, and runs the next part
            import traceback

            traceback.print_exc()
            rows = [row(args.part, "-", None, status=f"failed: {type(exc).__name__}: {str(exc)[:200]}")]
    args.rows_out.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return 0


# ---------------------------------------------------------------------------------------------------------------
# The parent: one process per part, time-boxed; one table


def run_part(part: str, args, box: float, work: Path) -> list[dict]:
    rows_out, log = work / f"{part}.rows.jsonl", work / f"{part}.log"
    cmd = [sys.executable, str(Path(__file__).resolve()), "--part", part, "--rows-out", str(rows_out)]
    cmd += ["--smoke"] if args.smoke else []
    started = time.perf_counter()
    with open(log, "w", encoding="utf-8") as out:
        # Its own session: on timeout the whole group goes (a benchmark's own worker threads or processes too).
        child = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            child.wait(timeout=box)
        except subprocess.TimeoutExpired:
            os.killpg(child.pid, 9)
            child.wait()
            return [row(part, "-", None, status=f"timed out after {box:.0f} s", log_tail=_tail(log))]
    seconds = time.perf_counter() - started
    if not rows_out.is_file():
        return [row(part, "-", None, status=f"failed: exit code {child.returncode}", log_tail=_tail(log))]
    rows = [json.loads(line) for line in rows_out.read_text(encoding="utf-8").splitlines() if line.strip()]
    for r in rows:
        r["part_seconds"] = round(seconds, 1)
        if r["status"].startswith("failed"):
            r["log_tail"] = _tail(log)
    return rows


def _tail(path: Path, n: int = 15) -> str:
    return "\n".join(path.read_text(encoding="utf-8", errors="replace").splitlines()[-n:])


def print_table(rows: list[dict], header: str) -> None:
    print(header)
    print(f"{'part':6s} {'figure':52s} {'value':>10s} {'ratio':>7s} {'TTFT s':>7s} {'peak GiB':>9s}  status")
    for r in rows:
        value = f"{r['value']:.1f}" if isinstance(r["value"], (int, float)) else "-"
        ratio = f"{r['ratio']:.2f}x" if r["ratio"] else "-"
        peak = f"{r['peak_gib']:.2f}" if r["peak_gib"] is not None else "-"
        ttft = f"{r['ttft_s']:.3f}" if r.get("ttft_s") is not None else "-"
        print(f"{r['part']:6s} {r['figure'][:52]:52s} {value:>10s} {ratio:>7s} {ttft:>7s} {peak:>9s}  {r['status']}")
    for r in rows:
        if r.get("log_tail"):
            print(f"--- {r['part']}: {r['status']}; end of its log:\n{r['log_tail']}")


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.part:
        return run_part_here(args)
    import torch

    parts = [p.strip() for p in args.parts.split(",") if p.strip()]
    unknown = [p for p in parts if p not in PARTS]
    if unknown:
        print(f"--parts: unknown part {unknown[0]!r}; choose from {', '.join(PARTS)}", file=sys.stderr)
        return 2
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    if not gpu and not args.smoke:
        print("no CUDA GPU here: the figures would be the CPU's. Run with --smoke to check the script, or on a GPU.",
              file=sys.stderr)
        return 2
    rows = []
    with tempfile.TemporaryDirectory(prefix="gpu-check-") as work:
        for part in parts:
            box = args.time_box or (SMOKE_TIME_BOX if args.smoke else TIME_BOX[part])
            rows += run_part(part, args, box, Path(work))
    machine = gpu or "CPU (smoke: tiny shapes, not figures)"
    stamp = {"machine": machine, "smoke": args.smoke, "torch": torch.__version__, "time": time.time()}
    rows = [r | stamp for r in rows]
    print_table(rows, f"gpu_check on {machine}; torch {torch.__version__}")
    from bench.report import emit_json

    json_out = args.json_out or (None if args.smoke else HERE / "gpu_check.jsonl")
    emit_json(rows, json_out)
    return 0 if all(r["status"] == "ok" or r["status"].startswith("skipped") for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
