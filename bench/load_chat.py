"""Chat under load: N concurrent browser-like sessions chatting with the app at once, over HTTP.

Each session is a thread with its own gradio_client Client (its own session, its own conversation) that sends
prompts in a loop through the Chat tab's streamed `/chat_send` endpoint until the time is up, clearing its
conversation every few turns. Per request it records the time to the first streamed chunk of answer text and to the
final answer. Baseline, measured in the same run against the same server: one session alone.

    python bench/load_chat.py --sessions 20 --duration 60       # starts `python app.py` itself (demo model)
    python bench/load_chat.py --url http://127.0.0.1:7860/ --auth user:password --sessions 20

Prints p50/p95 latencies, errors, requests/s, the p50 ratio N sessions vs 1 session, and one JSON line (appended to
--json-out when given). Every error is counted and its first lines printed: none is retried or hidden.

    python bench/load_chat.py --sessions 20 --duration 60 --mixed

--mixed adds a third phase: the N sessions again while one more user scores a large predictions file
(--score-items free-form answers of --score-chars characters) and another previews a large training upload
(--preview-rows rows) on the Fine-tune tab, each in a loop until the phase ends. The chat p50/p95 with and without
them are printed side by side, with those two users' request times and errors. The preview needs a role that may
train: run against an app without logins (the local admin), or give --auth an admin.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.report import emit_json  # noqa: E402

CONNECT_TIMEOUT_S = 60.0
PROMPTS = ["高血压患者饮食要注意什么？", "感冒了需要吃抗生素吗？", "糖尿病有哪些典型症状？", "头痛应该怎么办？",
           "发烧到38.5度要去医院吗？", "What are the symptoms of a common cold?"]


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--url", help="a running app; default: start `python app.py` on a free port with a temp data dir")
    p.add_argument("--auth", help="user:password, where the app has logins")
    p.add_argument("--sessions", type=int, default=20)
    p.add_argument("--duration", type=float, default=60.0, help="seconds the N sessions keep sending")
    p.add_argument("--baseline-duration", type=float, default=20.0, help="seconds of the 1-session baseline")
    p.add_argument("--max-new-tokens", type=int, default=64)
    p.add_argument("--turns", type=int, default=3, help="turns per conversation before a session clears it")
    p.add_argument("--model", help="the model to chat with (default: the app's base model)")
    p.add_argument("--mixed", action="store_true", help="a third phase with one user scoring and one previewing")
    p.add_argument("--score-items", type=int, default=300, help="answers in the large predictions file (--mixed)")
    p.add_argument("--score-chars", type=int, default=5_000, help="characters per answer (--mixed)")
    p.add_argument("--preview-rows", type=int, default=20_000, help="rows of the large training upload (--mixed)")
    p.add_argument("--preview-model", default="demo", help="the model whose tokenizer the preview uses (--mixed)")
    p.add_argument("--json-out", type=Path)
    return p.parse_args(argv)


@dataclass
class Phase:
    sessions: int
    latencies: list[float] = field(default_factory=list)  # request -> final answer
    first_chunks: list[float] = field(default_factory=list)  # request -> first answer text on the wire
    connects: list[float] = field(default_factory=list)  # Client(url): the page config and API info, as on arrival
    errors: list[str] = field(default_factory=list)
    empty: int = 0  # finished with no answer text
    started: float = 0.0
    ended: float = 0.0
    app_cpu_s: float | None = None  # CPU seconds the app's process used during the phase (when this bench started it)
    client_cpu_s: float = 0.0  # CPU seconds of this process (the clients) during the phase
    lock: threading.Lock = field(default_factory=threading.Lock)


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile; NaN for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered) + 0.5) - 1))]


def answer_text(output) -> str:
    """The last assistant message of the first pane in a /chat_send output (prompt, status, panes..., table)."""
    pane = output[2]
    value = (pane.get("value") if isinstance(pane, dict) else pane) or []
    if not value or value[-1]["role"] != "assistant":
        return ""
    content = value[-1]["content"]
    return "".join(c.get("text", "") for c in content) if isinstance(content, list) else str(content)


def one_request(client, prompt: str, model: str, max_new: int, phase: Phase) -> None:
    start, first, seen = time.perf_counter(), None, 0
    try:
        job = client.submit(prompt, [model], "", max_new, 0.0, 1.0, 0, 1.0, 0, api_name="/chat_send")
        while not job.done():  # polling every 20 ms: iterating a Job spins at 1 ms, which would load the CPU
            outputs = job.outputs()
            if first is None and any(answer_text(o) for o in outputs[seen:]):
                first = time.perf_counter()
            seen = len(outputs)
            time.sleep(0.02)
        final = job.result()
        end = time.perf_counter()
    except Exception as exc:  # noqa: BLE001 - every failure is counted and shown
        with phase.lock:
            phase.errors.append(f"{type(exc).__name__}: {exc}"[:300])
        return
    with phase.lock:
        if not answer_text(final):
            phase.empty += 1
        phase.latencies.append(end - start)
        phase.first_chunks.append((first or end) - start)


def session(url: str, auth, model: str, args, phase: Phase, index: int, stop_at: float) -> None:
    from gradio_client import Client

    start = time.perf_counter()
    try:  # httpx gives up after 5 s by default; a browser opening the page waits longer, and so do we (timed)
        client = Client(url, auth=auth, verbose=False, httpx_kwargs={"timeout": CONNECT_TIMEOUT_S})
    except Exception as exc:  # noqa: BLE001
        with phase.lock:
            phase.errors.append(f"connect: {type(exc).__name__}: {exc}"[:300])
        return
    with phase.lock:
        phase.connects.append(time.perf_counter() - start)
    turn = 0
    while time.perf_counter() < stop_at:
        one_request(client, PROMPTS[(index + turn) % len(PROMPTS)], model, args.max_new_tokens, phase)
        turn += 1
        if turn % args.turns == 0:
            client.predict([model], api_name="/chat_clear")


def cpu_seconds(pid: int | None) -> float | None:
    """user + system CPU time of a process, from /proc (None where unknown)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, TypeError):
        return None


def run_phase(url: str, auth, model: str, args, sessions: int, duration: float, app_pid: int | None) -> Phase:
    phase = Phase(sessions)
    app_cpu, client_cpu = cpu_seconds(app_pid), time.process_time()
    phase.started = time.perf_counter()
    stop_at = phase.started + duration
    threads = [threading.Thread(target=session, args=(url, auth, model, args, phase, i, stop_at), daemon=True)
               for i in range(sessions)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()  # requests started before the deadline are finished and counted
    phase.ended = time.perf_counter()
    phase.client_cpu_s = time.process_time() - client_cpu
    if app_cpu is not None and cpu_seconds(app_pid) is not None:
        phase.app_cpu_s = cpu_seconds(app_pid) - app_cpu
    return phase


def summary(phase: Phase) -> dict:
    wall = phase.ended - phase.started
    return {"sessions": phase.sessions, "requests": len(phase.latencies), "errors": len(phase.errors),
            "empty_answers": phase.empty, "wall_s": round(wall, 2),
            "requests_per_s": round(len(phase.latencies) / wall, 3) if wall else 0.0,
            "p50_s": round(percentile(phase.latencies, 50), 3), "p95_s": round(percentile(phase.latencies, 95), 3),
            "first_chunk_p50_s": round(percentile(phase.first_chunks, 50), 3),
            "first_chunk_p95_s": round(percentile(phase.first_chunks, 95), 3),
            "connect_p50_s": round(percentile(phase.connects, 50), 3),
            "connect_max_s": round(max(phase.connects, default=float("nan")), 3),
            "app_cpu_s_per_request": round(phase.app_cpu_s / len(phase.latencies), 3)
            if phase.app_cpu_s is not None and phase.latencies else None,
            "client_cpu_s": round(phase.client_cpu_s, 1)}


@dataclass
class Background:
    """One more user sending one kind of heavy request in a loop while the chat sessions run (--mixed)."""
    name: str
    durations: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def large_files(work: Path, args) -> dict[str, Path]:
    """A free-form reference and predictions file to score, and a training file to preview; seeded."""
    import json
    import random

    rng = random.Random(20261130)
    rows = [json.loads(line) for line in (ROOT / "data" / "train_sample.jsonl").read_text("utf-8").splitlines()]
    sentences = [s + "。" for row in rows for s in row["output"].split("。") if s]

    def text(chars: int) -> str:
        parts = []
        while sum(map(len, parts)) < chars:
            parts.append(rng.choice(sentences))
        return "".join(parts)[:chars]

    def write(name: str, items: list[dict]) -> Path:
        path = work / name
        path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in items), encoding="utf-8")
        return path

    refs = [{"id": f"q{i}", "input": text(40), "output": text(300)} for i in range(args.score_items)]
    return {"ref": write("score_ref.jsonl", refs),
            "pred": write("score_pred.jsonl", [{"id": r["id"], "output": text(args.score_chars)} for r in refs]),
            # Distinct rows (a number in front of each instruction), so nothing is cached between them.
            "train": write("train_large.jsonl", [{**row, "instruction": f"{i} {row['instruction']}"}
                                                 for i, row in ((i, rows[i % len(rows)])
                                                                for i in range(args.preview_rows))])}


def background_loop(url: str, auth, out: Background, send, stop: threading.Event) -> None:
    from gradio_client import Client

    try:
        client = Client(url, auth=auth, verbose=False, httpx_kwargs={"timeout": 600})
    except Exception as exc:  # noqa: BLE001 - counted and shown
        out.errors.append(f"connect: {type(exc).__name__}: {exc}"[:300])
        return
    while not stop.is_set():
        start = time.perf_counter()
        try:
            send(client)
        except Exception as exc:  # noqa: BLE001 - counted and shown
            out.errors.append(f"{type(exc).__name__}: {exc}"[:300])
            time.sleep(1)  # a failing request is not retried in a tight loop
        else:
            out.durations.append(time.perf_counter() - start)


def mixed_phase(url: str, auth, model: str, args, app_pid: int | None, files: dict[str, Path]):
    """The N chat sessions while one user scores files[pred] and one previews files[train], over and over."""
    from gradio_client import handle_file

    def score(client):
        client.predict("none", handle_file(str(files["ref"])), handle_file(str(files["pred"])),
                       "auto", "", api_name="/score_submission")

    def preview(client):
        client.predict(args.preview_model, handle_file(str(files["train"])), "train_sample.jsonl", "auto", "",
                       1024, api_name="/finetune_preview")

    stop, users = threading.Event(), [Background("score"), Background("preview")]
    threads = [threading.Thread(target=background_loop, args=(url, auth, user, send, stop), daemon=True)
               for user, send in zip(users, (score, preview))]
    for th in threads:
        th.start()
    phase = run_phase(url, auth, model, args, args.sessions, args.duration, app_pid)
    stop.set()
    for th in threads:
        th.join()  # a request in flight at the end is finished and counted
    return phase, users


def background_summary(user: Background) -> dict:
    return {"requests": len(user.durations), "errors": len(user.errors),
            "p50_s": round(percentile(user.durations, 50), 3),
            "max_s": round(max(user.durations, default=float("nan")), 3)}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_app(data_dir: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    log = open(data_dir / "app.log", "w")
    proc = subprocess.Popen([sys.executable, "app.py", "--port", str(port), "--data-dir", str(data_dir / "data")],
                            cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.time() + 300  # the first start on a machine builds the demo model
    while time.time() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"the app exited with {proc.returncode}: {(data_dir / 'app.log').read_text()[-2000:]}")
        try:
            urllib.request.urlopen(url, timeout=2)
            return proc, url
        except OSError:
            time.sleep(1)
    proc.kill()
    raise SystemExit(f"the app did not answer at {url} within 300 s; log: {data_dir / 'app.log'}")


def main(argv=None) -> dict:
    args = parse_args(argv)
    auth = tuple(args.auth.split(":", 1)) if args.auth else None
    work = Path(tempfile.mkdtemp(prefix="load-chat-"))
    proc = None
    try:
        url = args.url
        if url is None:
            proc, url = start_app(work)
        return measure(args, url, auth, proc)
    finally:
        if proc is not None:
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
        shutil.rmtree(work, ignore_errors=True)


def measure(args, url: str, auth, proc: subprocess.Popen | None) -> dict:
    from gradio_client import Client

    client = Client(url, auth=auth, verbose=False)
    choices = client.predict([], api_name="/chat_models")[0]["choices"]
    model = args.model or (choices[0][0] if isinstance(choices[0], (list, tuple)) else choices[0])
    warm = Phase(1)
    one_request(client, PROMPTS[0], model, args.max_new_tokens, warm)  # loads the model; not counted
    if warm.errors:
        raise SystemExit(f"the warm-up request failed: {warm.errors[0]}")
    pid = proc.pid if proc is not None else None
    base = summary(run_phase(url, auth, model, args, 1, args.baseline_duration, pid))
    loaded = run_phase(url, auth, model, args, args.sessions, args.duration, pid)
    many = summary(loaded)
    mixed = None
    if args.mixed:
        work = Path(tempfile.mkdtemp(prefix="load-chat-mixed-"))
        try:
            phase, users = mixed_phase(url, auth, model, args, pid, large_files(work, args))
        finally:
            shutil.rmtree(work, ignore_errors=True)
        mixed = {**summary(phase), "background": {u.name: background_summary(u) for u in users}}
        loaded.errors += phase.errors + [f"{u.name}: {e}" for u in users for e in u.errors]
    footer = client.predict(api_name="/footer")
    return report(args, url if proc is None else "spawned app.py", model, base, many, loaded.errors, footer, mixed)


def report(args, where: str, model: str, base: dict, many: dict, errors: list[str], footer: str,
           mixed: dict | None = None) -> dict:
    print(f"server={where} model={model} max_new_tokens={args.max_new_tokens} turns={args.turns} "
          f"cpus={os.cpu_count()} machine={platform.processor() or platform.machine()} "
          f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}")
    print(f"{'sessions':>8s} {'requests':>8s} {'errors':>6s} {'req/s':>7s} {'p50 s':>7s} {'p95 s':>7s} "
          f"{'1st chunk p50':>13s} {'1st chunk p95':>13s} {'connect max s':>13s} {'app CPU s/req':>13s} "
          f"{'client CPU s':>12s}")
    for row in (base, many, *([mixed] if mixed else [])):
        print(f"{row['sessions']:8d} {row['requests']:8d} {row['errors']:6d} {row['requests_per_s']:7.2f} "
              f"{row['p50_s']:7.2f} {row['p95_s']:7.2f} {row['first_chunk_p50_s']:13.2f} "
              f"{row['first_chunk_p95_s']:13.2f} {row['connect_max_s']:13.2f} "
              f"{row['app_cpu_s_per_request'] or float('nan'):13.2f} "
              f"{row['client_cpu_s']:12.1f}")
    for error in errors[:5]:
        print(f"error: {error}")
    line = {"bench": "load_chat", "server": where, "model": model, "max_new_tokens": args.max_new_tokens,
            "duration_s": args.duration, "cpus": os.cpu_count(), "one_session": base, "n_sessions": many,
            "ratio_p50_n_vs_1": round(many["p50_s"] / base["p50_s"], 2) if base["p50_s"] else None,
            "ratio_requests_per_s_n_vs_1": round(many["requests_per_s"] / base["requests_per_s"], 2)
            if base["requests_per_s"] else None}
    print(f"p50 latency, {many['sessions']} sessions vs 1: {line['ratio_p50_n_vs_1']}x; "
          f"throughput: {line['ratio_requests_per_s_n_vs_1']}x; errors: {many['errors']}")
    if mixed:
        line["mixed"] = mixed
        line["ratio_p50_mixed_vs_n"] = round(mixed["p50_s"] / many["p50_s"], 2) if many["p50_s"] else None
        line["ratio_p95_mixed_vs_n"] = round(mixed["p95_s"] / many["p95_s"], 2) if many["p95_s"] else None
        line["errors_total"] = len(errors)
        bg = mixed["background"]
        print(f"{many['sessions']} sessions without / with one user scoring and one previewing: "
              f"p50 {many['p50_s']:.2f} / {mixed['p50_s']:.2f} s, p95 {many['p95_s']:.2f} / {mixed['p95_s']:.2f} s; "
              f"score requests {bg['score']['requests']} (p50 {bg['score']['p50_s']:.2f} s), preview requests "
              f"{bg['preview']['requests']} (p50 {bg['preview']['p50_s']:.2f} s); errors in all: {len(errors)}")
    print(f"footer at the end: {footer}")
    emit_json([line], args.json_out)
    return line


if __name__ == "__main__":
    main()
