"""Scoring under contention: how long a second user's small file waits while a first user's large file is scored.

    python bench/bench_score_wait.py [--answer-chars 2000000] [--heavy-items 300] [--json-out FILE]
    python bench/bench_score_wait.py --app-root ../main      # the same measurement against another checkout

Starts `python app.py` (demo model, no login) once per setting and drives the Score tab's `/score_submission`
endpoint with gradio_client, as two browser users would. Two large files, each against a small one:

  issue  a multiple-choice predictions file of about 4 MB whose first answer is 2,000,000 characters of "A、"
         (issue 11, item 7: this held the only score slot for 33 s)
  heavy  a legitimate large free-form file (--heavy-items answers of --heavy-chars characters each), which takes
         seconds to score however fast extraction is: what the Score tab's own concurrency is for

For each: the small file alone, then the large file and, 0.3 s after the server starts running it, the
small one. The "wait" is the small
request's latency while the large one runs. Baseline, in the same run: `--score-concurrency 1` (one slot, as before
the Score tab had its own limit); measured: the app's default. Prints the ratio baseline wait / measured wait.
Against a checkout without --score-concurrency (e.g. main before this change) only its own default runs.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.report import emit_json  # noqa: E402

DELAY_S = 0.3  # the second user sends this long after the first


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--app-root", type=Path, default=ROOT, help="the checkout whose app.py is started")
    p.add_argument("--answer-chars", type=int, default=2_000_000, help="length of the one long answer (issue)")
    p.add_argument("--heavy-items", type=int, default=300)
    p.add_argument("--heavy-chars", type=int, default=5_000, help="characters per answer of the heavy file")
    p.add_argument("--scenarios", default="issue,heavy")
    p.add_argument("--json-out", type=Path)
    return p.parse_args(argv)


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def make_files(work: Path, args) -> dict[str, dict[str, Path]]:
    """(reference, large predictions, small predictions) per scenario; seeded, so every run scores the same."""
    data = ROOT / "data"
    mc_rows = [json.loads(line) for line in (data / "mc_sample_predictions.jsonl").read_text("utf-8").splitlines()]
    mc_rows[0]["output"] = ("A、" * (args.answer_chars // 2 + 1))[:args.answer_chars]
    # Free-form: sentences of the bundled training answers, shuffled into answers of the wanted length.
    rng = random.Random(20261130)
    sentences = [s for line in (data / "train_sample.jsonl").read_text("utf-8").splitlines()
                 for s in json.loads(line)["output"].split("。") if s]

    def text(chars: int) -> str:
        parts, n = [], 0
        while n < chars:
            parts.append(rng.choice(sentences) + "。")
            n += len(parts[-1])
        return "".join(parts)[:chars]

    refs = [{"id": f"q{i}", "input": text(40), "output": text(300)} for i in range(args.heavy_items)]
    preds = [{"id": r["id"], "output": text(args.heavy_chars)} for r in refs]
    return {
        "issue": {"ref": data / "mc_sample.jsonl", "large": write_jsonl(work / "mc_large.jsonl", mc_rows),
                  "small": data / "mc_sample_predictions.jsonl"},
        "heavy": {"ref": write_jsonl(work / "qa_ref.jsonl", refs), "large": write_jsonl(work / "qa_large.jsonl", preds),
                  "small_ref": data / "qa_sample_competition.jsonl", "small": data / "qa_sample_predictions.jsonl"},
    }


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_app(app_root: Path, data_dir: Path, flags: list[str]) -> tuple[subprocess.Popen, str]:
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    data_dir.mkdir(parents=True, exist_ok=True)
    log = open(data_dir / "app.log", "w")
    env = {**os.environ, "PYTHONPATH": str(app_root)}
    proc = subprocess.Popen([sys.executable, "app.py", "--port", str(port), "--data-dir", str(data_dir), *flags],
                            cwd=app_root, stdout=log, stderr=subprocess.STDOUT, env=env)
    deadline = time.time() + 300  # the first start on a machine builds the demo model
    while time.time() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"the app exited with {proc.returncode}: {(data_dir / 'app.log').read_text()[-2000:]}")
        try:
            urllib.request.urlopen(url + "healthz", timeout=2)
            return proc, url
        except OSError:
            time.sleep(1)
    proc.kill()
    raise SystemExit(f"the app did not answer at {url} within 300 s; log: {data_dir / 'app.log'}")


def client_for(url: str):
    from gradio_client import Client

    return Client(url, verbose=False, httpx_kwargs={"timeout": 600})


def submit(client, ref: Path, pred: Path):
    from gradio_client import handle_file

    return client.submit("none", handle_file(str(ref)), handle_file(str(pred)), "auto", "",
                         api_name="/score_submission")


def score(url: str, ref: Path, pred: Path) -> float:
    """Seconds for one /score_submission request from a fresh client (its own session, as a second browser)."""
    client = client_for(url)
    start = time.perf_counter()
    submit(client, ref, pred).result()
    return time.perf_counter() - start


def contended(url: str, files: dict[str, Path]) -> dict:
    """The large file; once the server runs it (upload done), the small one DELAY_S later; each one's latency."""
    from gradio_client.utils import Status

    first, second = client_for(url), client_for(url)
    start = time.perf_counter()
    large = submit(first, files["ref"], files["large"])
    while large.status().code != Status.PROCESSING and not large.done():
        time.sleep(0.02)
    time.sleep(DELAY_S)
    sent = time.perf_counter()
    submit(second, files.get("small_ref", files["ref"]), files["small"]).result()
    small_wait = time.perf_counter() - sent
    large.result()
    return {"large_s": time.perf_counter() - start, "small_wait_s": small_wait}


def measure_setting(args, files, flags: list[str], work: Path) -> dict:
    proc, url = start_app(args.app_root, work / f"data-{len(list(work.iterdir()))}", flags)
    try:
        rows = {}
        for name in args.scenarios.split(","):
            f = files[name]
            # Warm-up, two at once: each scoring worker process (safeio.worker) imports the scorer and loads
            # jieba's dictionary on its first request; a cold worker would be measured instead of the waiting.
            warm = [submit(client_for(url), f.get("small_ref", f["ref"]), f["small"]) for _ in range(2)]
            [job.result() for job in warm]
            alone = score(url, f.get("small_ref", f["ref"]), f["small"])
            rows[name] = {"small_alone_s": round(alone, 3),
                          **{k: round(v, 3) for k, v in contended(url, f).items()}}
        return rows
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()


def main(argv=None) -> list[dict]:
    args = parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="bench-score-wait-"))
    try:
        files = make_files(work, args)
        help_text = subprocess.run([sys.executable, "app.py", "--help"], cwd=args.app_root, capture_output=True,
                                   text=True, env={**os.environ, "PYTHONPATH": str(args.app_root)}).stdout
        settings = {"default": []}
        if "--score-concurrency" in help_text:
            settings = {"score-concurrency 1 (baseline)": ["--score-concurrency", "1"], "default": []}
        results = {label: measure_setting(args, files, flags, work) for label, flags in settings.items()}
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return report(args, results)


def report(args, results: dict[str, dict]) -> list[dict]:
    print(f"app root: {args.app_root}  cpus={os.cpu_count()}  issue answer: {args.answer_chars:,} chars  "
          f"heavy: {args.heavy_items} x {args.heavy_chars:,} chars")
    print(f"{'setting':32s} {'scenario':8s} {'small alone s':>13s} {'large s':>8s} {'small wait s':>12s}")
    for label, rows in results.items():
        for name, row in rows.items():
            print(f"{label:32s} {name:8s} {row['small_alone_s']:13.2f} {row['large_s']:8.2f} "
                  f"{row['small_wait_s']:12.2f}")
    lines = []
    base = results.get("score-concurrency 1 (baseline)")
    for name, row in results["default"].items():
        line = {"bench": "score_wait", "scenario": name, "app_root": str(args.app_root), "cpus": os.cpu_count(),
                "answer_chars": args.answer_chars, "heavy_items": args.heavy_items, "heavy_chars": args.heavy_chars,
                "measured": row}
        if base:
            line["baseline"] = base[name]
            line["ratio_wait_baseline_vs_measured"] = (round(base[name]["small_wait_s"] / row["small_wait_s"], 2)
                                                       if row["small_wait_s"] else None)
            print(f"{name}: the small file waited {base[name]['small_wait_s']:.2f} s with one score slot, "
                  f"{row['small_wait_s']:.2f} s with the Score tab's own limit: "
                  f"{line['ratio_wait_baseline_vs_measured']}x")
        lines.append(line)
    emit_json(lines, args.json_out)
    return lines


if __name__ == "__main__":
    main()
