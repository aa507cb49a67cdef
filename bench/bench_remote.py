"""Free-form evaluation against a real OpenAI-compatible server: N requests in flight vs one at a time.

Starts `transformers serve` on the demo model (or uses --endpoint URL --model NAME), then runs
`evaluation.run.evaluate` on --items free-form items twice in the same run, with --concurrency N and with 1, and
prints the ratio. Answers are capped at --new-tokens. The server's own batching decides the gain: with
`--continuous-batching` (the default here) transformers serve decodes the requests in flight together, as vLLM and
SGLang do; without it each request gets its own `generate` call and requests in flight only compete for the cores.
Measured on a shared 2-core CPU, demo model, 64 items, 32 new tokens: concurrency 8 vs 1 = 3.5x with continuous
batching, 0.76x without.

    python bench/bench_remote.py                                   # transformers serve on the demo model, 64 items
    python bench/bench_remote.py --endpoint http://gpu-box:8000/v1 --model my-adapter --concurrency 16

Prints a table, the ratio, and one JSON line per case (appended to --json-out when given).
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))  # remote_fixtures: starting and stopping transformers serve

from bench.report import emit_json  # noqa: E402
from evaluation.run import EvalConfig, evaluate  # noqa: E402
from models.directory import ModelDirectory  # noqa: E402
from models.remote.endpoints import Endpoint  # noqa: E402
from models.remote.model import remote_name  # noqa: E402


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--endpoint", help="an OpenAI-compatible base URL; default: start transformers serve here")
    p.add_argument("--model", help="the served model's name (default: the demo model's directory)")
    p.add_argument("--items", type=int, default=64)
    p.add_argument("--new-tokens", type=int, default=32)
    p.add_argument("--concurrency", type=int, default=8)
    p.add_argument("--continuous-batching", action=argparse.BooleanOptionalAction, default=True,
                   help="start transformers serve with --continuous-batching, so that it batches the requests in "
                        "flight (default); --no-continuous-batching: one generate call per request")
    p.add_argument("--json-out", type=Path)
    return p.parse_args(argv)


def qa_file(out: Path, n: int) -> str:
    """n free-form items: the project's sample repeated with distinct ids (a resumed cell would skip work)."""
    import json

    rows = [json.loads(line) for line in (ROOT / "data" / "qa_sample.jsonl").read_text(encoding="utf-8").splitlines()
            if line.strip()]
    with out.open("w", encoding="utf-8") as f:
        for i in range(n):
            f.write(json.dumps({**rows[i % len(rows)], "id": f"bench-{i}"}, ensure_ascii=False) + "\n")
    return str(out)


def run(directory, name: str, data: str, out: Path, args, concurrency: int) -> float:
    config = EvalConfig(data=(data,), out_dir=str(out), models=(name,), batch_size=concurrency,
                        qa_max_new_tokens=args.new_tokens, concurrency=concurrency)
    started = time.perf_counter()
    evaluate(directory, config)
    return time.perf_counter() - started


def main(argv=None) -> list[dict]:
    args = parse_args(argv)
    process = None
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        url, served = args.endpoint, args.model
        if url is None:
            from remote_fixtures import start_transformers_serve

            from models.demo import demo_model_dir

            served = served or str(demo_model_dir())
            extra = ("--continuous-batching",) if args.continuous_batching else ()
            process, url = start_transformers_serve(Path(served), tmp / "hf-cache", extra=extra)
        try:
            directory = ModelDirectory(None, [Endpoint("bench", url, models=(served,), timeout_s=600, retries=1)])
            name, data = remote_name(served, "bench"), qa_file(tmp / "qa.jsonl", args.items)
            run(directory, name, qa_file(tmp / "warm.jsonl", 2), tmp / "warm", args, 1)  # load, first requests
            many = run(directory, name, data, tmp / "many", args, args.concurrency)
            one = run(directory, name, data, tmp / "one", args, 1)
        finally:
            if process is not None:
                from remote_fixtures import stop_process

                stop_process(process)
    server = "transformers serve" + (" --continuous-batching" if args.continuous_batching else "")
    common = {"bench": "remote", "server": server if args.endpoint is None else url,
              "items": args.items, "new_tokens": args.new_tokens, "machine": platform.processor() or platform.machine(),
              "cpus": os.cpu_count()}
    lines = [common | {"case": f"concurrency-{args.concurrency}", "items_per_s": args.items / many},
             common | {"case": "concurrency-1", "items_per_s": args.items / one},
             common | {"case": "ratio", f"concurrency_{args.concurrency}_vs_1": one / many}]
    for line in lines:
        figures = ", ".join(f"{k}={v:.2f}" for k, v in line.items() if isinstance(v, float))
        print(f"{line['case']:15s} {figures}")
    emit_json(lines, args.json_out)
    return lines


if __name__ == "__main__":
    main()
